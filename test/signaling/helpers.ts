/**
 * Shared pieces of the signaling tests: a throw-away certificate authority (openssl), free
 * loopback ports, and a node that pairs a transport with a sealed channel and records what arrives.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getBackend } from "../../src/crypto/index.js";
import { SealedChannel } from "../../src/signaling/channel.js";
import type { SignalingMessage, SignalingTransport } from "../../src/signaling/types.js";

export const backend = getBackend("node");

export interface TestPki {
  dir: string;
  caFile: string;
  certFile: string;
  keyFile: string;
  ca: string;
  cert: string;
  key: string;
  remove(): void;
}

/** A CA and a server certificate for 127.0.0.1 and localhost, signed by it. */
export function makeTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), "tswgt-sigpki-"));
  const f = (n: string): string => join(dir, n);
  const ossl = (args: string[]): void => void execFileSync("openssl", args, { stdio: ["ignore", "ignore", "pipe"] });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  ossl(["req", "-x509", ...ec, "-keyout", f("ca.key"), "-out", f("ca.pem"), "-days", "2", "-subj", "/CN=tswg signaling test CA",
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
  ossl(["req", ...ec, "-keyout", f("server.key"), "-out", f("server.csr"), "-subj", "/CN=tswg signaling test"]);
  writeFileSync(f("ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n");
  ossl(["x509", "-req", "-in", f("server.csr"), "-CA", f("ca.pem"), "-CAkey", f("ca.key"), "-CAcreateserial",
    "-out", f("server.pem"), "-days", "2", "-extfile", f("ext.cnf")]);
  return {
    dir,
    caFile: f("ca.pem"),
    certFile: f("server.pem"),
    keyFile: f("server.key"),
    ca: readFileSync(f("ca.pem"), "utf8"),
    cert: readFileSync(f("server.pem"), "utf8"),
    key: readFileSync(f("server.key"), "utf8"),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
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
