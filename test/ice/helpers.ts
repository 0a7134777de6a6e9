/** Shared set-up for the ICE tests: keys, loopback-only agent settings, agent pairs. */
import { randomBytes } from "node:crypto";
import { PeerAgent } from "../../src/ice/agent.js";
import type { IceAgentConfig } from "../../src/ice/config.js";
import { compareKeys } from "../../src/ice/role.js";
import { waitFor } from "../../src/testbed/wait.js";
import { MemoryHub } from "./memory-channel.js";

/** Two distinct random keys, the larger (controlling) one first. */
export function keyPair(): [Uint8Array, Uint8Array] {
  for (;;) {
    const a = new Uint8Array(randomBytes(32));
    const b = new Uint8Array(randomBytes(32));
    const c = compareKeys(a, b);
    if (c > 0) return [a, b];
    if (c < 0) return [b, a];
  }
}

/** Host candidates on 127.0.0.1 only: no interface of this machine is offered, no server contacted. */
export const LOOPBACK: IceAgentConfig = {
  hostAddresses: ["127.0.0.1"],
  networkInterfaces: () => ({}),
  ipv6: false,
};

export interface AgentPair {
  hub: MemoryHub;
  /** The controlling agent. */
  a: PeerAgent;
  /** The controlled agent. */
  b: PeerAgent;
  /** Closes one side and puts a fresh agent with the same key in its place (a restarted process); not started. */
  replace(side: "a" | "b"): Promise<PeerAgent>;
  close(): Promise<void>;
}

/** Two agents wired through an in-memory channel; not started. */
export function agentPair(cfgA: IceAgentConfig = LOOPBACK, cfgB: IceAgentConfig = cfgA): AgentPair {
  const [ka, kb] = keyPair();
  const hub = new MemoryHub();
  const make = (cfg: IceAgentConfig, self: Uint8Array, peer: Uint8Array): PeerAgent => {
    const ch = hub.channel(self);
    ch.setPeers([peer]);
    const agent = new PeerAgent({ ...cfg, localKey: self, peerKey: peer, channel: ch });
    ch.on("message", (_from, msg) => agent.receive(msg));
    return agent;
  };
  const pair: AgentPair = {
    hub,
    a: make(cfgA, ka, kb),
    b: make(cfgB, kb, ka),
    replace: async (side) => {
      await pair[side].close();
      pair[side] = side === "a" ? make(cfgA, ka, kb) : make(cfgB, kb, ka);
      return pair[side];
    },
    close: async () => {
      await Promise.all([pair.a.close(), pair.b.close()]);
    },
  };
  return pair;
}

export async function waitConnected(agents: PeerAgent[], timeoutMs = 10_000): Promise<void> {
  try {
    await waitFor(() => agents.every((x) => x.state === "connected"), { what: "ICE agents to connect", timeoutMs, intervalMs: 10 });
  } catch (e) {
    const detail = agents.map((x) => `${x.role} ${x.state} (${x.status().lastError ?? "no error"})`).join("; ");
    throw new Error(`${(e as Error).message}: ${detail}`);
  }
}

/** Sends `count` datagrams from `from` and resolves with those `to` received within the time. */
export async function exchange(from: PeerAgent, to: PeerAgent, payloads: Uint8Array[], timeoutMs = 3000): Promise<Uint8Array[]> {
  const got: Uint8Array[] = [];
  const off = to.onData((d) => got.push(Uint8Array.from(d)));
  try {
    for (const p of payloads) from.send(p);
    await waitFor(() => got.length >= payloads.length, { what: "datagrams to arrive", timeoutMs, intervalMs: 10 }).catch(() => undefined);
    return got;
  } finally {
    off();
  }
}
