/**
 * Shared pieces of the signaling tests: a throw-away certificate authority (openssl), free
 * loopback ports, and a node that pairs a transport with a sealed channel and records what arrives.
 */
import { makeTestPki as makePki, type TestPki } from "../helpers/pki.js";
import net from "node:net";
import { getBackend } from "../../src/crypto/index.js";
import { SealedChannel } from "../../src/signaling/channel.js";
import type { SignalingMessage, SignalingTransport } from "../../src/signaling/types.js";

export const backend = getBackend("node");

export type { TestPki } from "../helpers/pki.js";

/** A CA and a server certificate for 127.0.0.1 and localhost, signed by it. */
export function makeTestPki(): TestPki {
  return makePki({ dns: ["localhost"], ips: ["127.0.0.1"] });
}

/** `count` TCP ports free on 127.0.0.1 right now (bound to port 0, then released). */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () => new Promise<net.Server>((resolve, reject) => {
      const s = net.createServer();
      s.once("error", reject);
      s.listen(0, "127.0.0.1", () => resolve(s));
    })),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

export interface ChannelNode {
  priv: Uint8Array;
  pub: Uint8Array;
  channel: SealedChannel;
  got: { from: Uint8Array; msg: SignalingMessage }[];
}

/** A sealed channel over `makeTransport(privateKey)` (not started yet). */
export function channelNode(makeTransport: (priv: Uint8Array) => SignalingTransport): ChannelNode {
  const priv = backend.generatePrivateKey();
  const channel = new SealedChannel({ privateKey: priv, transport: makeTransport(priv) });
  const n: ChannelNode = { priv, pub: channel.publicKey, channel, got: [] };
  channel.on("message", (from, msg) => n.got.push({ from, msg }));
  return n;
}

/** Makes two nodes each other's only peer. */
export function introduce(a: ChannelNode, b: ChannelNode): void {
  a.channel.setPeers([b.pub]);
  b.channel.setPeers([a.pub]);
}

export const restart = (generation: number): SignalingMessage => ({ type: "restart", generation });

/** Generations of the restart messages a node received, in order. */
export const generations = (n: ChannelNode): number[] => n.got.map((g) => g.msg.generation);
