/**
 * Relays and server-reflexive candidates through a real coturn on 127.0.0.1.
 */
import dgram from "node:dgram";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import type { PeerAgent } from "../../src/ice/agent.js";
import type { IceAgentConfig } from "../../src/ice/config.js";
import { parseIceServers } from "../../src/ice/servers.js";
import { agentPair, exchange, LOOPBACK, waitConnected, type AgentPair } from "./helpers.js";
import { opensslAvailable, startLoopbackTurn, TURN_PASSWORD, TURN_USER, turnserverAvailable, type LoopbackTurn } from "./coturn.js";

const haveTurn = turnserverAvailable();

/** Sends paced datagrams and reports how many arrived and how fast. */
async function measure(from: PeerAgent, to: PeerAgent, label: string): Promise<number> {
  const n = 2000;
  let got = 0;
  let lastAt = 0;
  const off = to.onData(() => {
    got++;
    lastAt = performance.now();
  });
  const payload = new Uint8Array(1200);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    from.send(payload);
    if (i % 16 === 15) await new Promise((r) => setImmediate(r));
  }
  await new Promise((r) => setTimeout(r, 300));
  off();
  const secs = Math.max(lastAt - t0, 1) / 1000;
  console.log(`${label}: ${got}/${n} datagrams of 1200 B arrived, ${Math.round(got / secs)} datagrams/s`);
  return got;
}

describe.skipIf(!haveTurn)("ICE through coturn on loopback", () => {
  let turn: LoopbackTurn;
  let pair: AgentPair | null = null;

  beforeAll(async () => {
    turn = await startLoopbackTurn({ tls: opensslAvailable() });
  });
  afterAll(async () => {
    await turn?.stop();
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    await pair?.close();
    pair = null;
  });

  const relayOnly = (url: string, extra: Partial<IceAgentConfig> = {}): IceAgentConfig => ({
    ...LOOPBACK,
    servers: parseIceServers([{ urls: url, username: TURN_USER, credential: TURN_PASSWORD }]),
    candidateTypes: ["relay"],
    ...extra,
  });

  it("relay only (TURN over UDP): relay candidates are selected and traffic flows", async () => {
    pair = agentPair(relayOnly(`turn:127.0.0.1:${turn.port}`));
    const { a, b } = pair;
    const t0 = performance.now();
    a.start();
    b.start();
    await waitConnected([a, b], 15_000);
    console.log(`ice relay (udp): connected in ${(performance.now() - t0).toFixed(0)} ms`);
    for (const ag of [a, b]) {
      const st = ag.status();
      expect(st.localCandidates.map((c) => c.type)).toEqual(["relay"]);
      expect(st.selectedPair?.local.type).toBe("relay");
      expect(st.selectedPair?.remote.type).toBe("relay");
    }
    // The relayed address is coturn's, not the agent's own socket.
    expect(a.status().selectedPair!.remote.port).toBe(b.status().selectedPair!.local.port);
    const got = await exchange(a, b, [Uint8Array.of(1), Uint8Array.of(2), Uint8Array.of(3)]);
    expect(got.map((d) => d[0])).toEqual([1, 2, 3]);
    const back = await exchange(b, a, [Uint8Array.of(9)]);
    expect(back.map((d) => d[0])).toEqual([9]);
    expect(await measure(a, b, "ice relay (udp)")).toBeGreaterThan(0);
  }, 30_000);

  it("relay over TCP on one side, UDP on the other", async () => {
    pair = agentPair(relayOnly(`turn:127.0.0.1:${turn.port}?transport=tcp`), relayOnly(`turn:127.0.0.1:${turn.port}`));
    const { a, b } = pair;
    a.start();
    b.start();
    await waitConnected([a, b], 15_000);
    expect(a.status().selectedPair?.local.type).toBe("relay");
    const got = await exchange(a, b, [Uint8Array.of(5)]);
    expect(got.length).toBe(1);
    const back = await exchange(b, a, [Uint8Array.of(6)]);
    expect(back.length).toBe(1);
  }, 30_000);

  it.skipIf(!opensslAvailable())("relay over TLS (turns:)", async () => {
    const tls = relayOnly(`turns:127.0.0.1:${turn.tlsPort}`, { turnTls: { ca: turn.certPem! } });
    pair = agentPair(tls, relayOnly(`turn:127.0.0.1:${turn.port}`));
    const { a, b } = pair;
    a.start();
    b.start();
    await waitConnected([a, b], 15_000);
    expect(a.status().selectedPair?.local.type).toBe("relay");
    const got = await exchange(a, b, [Uint8Array.of(5)]);
    expect(got.length).toBe(1);
  }, 30_000);

  it("server-reflexive candidates come from the configured STUN server only", async () => {
    const destinations = new Set<string>();
    const orig = dgram.Socket.prototype.send;
    vi.spyOn(dgram.Socket.prototype, "send").mockImplementation(function (this: dgram.Socket, ...args: unknown[]) {
      destinations.add(`${String(args.find((x, i) => i > 0 && typeof x === "string"))}:${String(args.find((x, i) => i > 0 && typeof x === "number"))}`);
      return (orig as (...a: unknown[]) => void).apply(this, args);
    } as typeof orig);
    const cfg: IceAgentConfig = { ...LOOPBACK, servers: parseIceServers(`stun:127.0.0.1:${turn.port}`), candidateTypes: ["srflx"] };
    pair = agentPair(cfg);
    const { a, b } = pair;
    a.start();
    b.start();
    await waitConnected([a, b], 15_000);
    expect(a.status().localCandidates.map((c) => c.type)).toEqual(["srflx"]);
    expect(a.status().remoteCandidates.map((c) => c.type)).toEqual(["srflx"]);
    const got = await exchange(a, b, [Uint8Array.of(1)]);
    expect(got.length).toBe(1);
    expect([...destinations].every((d) => d.startsWith("127.0.0.1:"))).toBe(true);
    expect(destinations.has(`127.0.0.1:${turn.port}`)).toBe(true);
  }, 30_000);

  it("an agent with host and relay candidates reaches a relay-only peer through its relay", async () => {
    const both: IceAgentConfig = {
      ...LOOPBACK,
      servers: parseIceServers([{ urls: `turn:127.0.0.1:${turn.port}`, username: TURN_USER, credential: TURN_PASSWORD }]),
      candidateTypes: ["host", "relay"],
    };
    pair = agentPair(both, relayOnly(`turn:127.0.0.1:${turn.port}`));
    const { a, b } = pair;
    a.start();
    b.start();
    await waitConnected([a, b], 15_000);
    expect(a.status().localCandidates.map((c) => c.type).sort()).toEqual(["host", "relay"]);
    expect(a.status().selectedPair?.remote.type).toBe("relay");
    expect(b.status().selectedPair?.local.type).toBe("relay");
    const got = await exchange(a, b, [Uint8Array.of(4)]);
    expect(got.length).toBe(1);
    const back = await exchange(b, a, [Uint8Array.of(5)]);
    expect(back.length).toBe(1);
  }, 30_000);
});
