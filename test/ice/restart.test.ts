/**
 * Recovery: a path that dies is restarted (and traffic follows the new one), a peer whose
 * signaling is quiet is retried, and bad signaling input is dropped without harm.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { PeerAgent } from "../../src/ice/agent.js";
import type { IceSession } from "../../src/ice/session.js";
import type { SignalingMessage } from "../../src/signaling/types.js";
import { waitFor } from "../../src/testbed/wait.js";
import { agentPair, exchange, LOOPBACK, waitConnected, type AgentPair } from "./helpers.js";

let pair: AgentPair | null = null;
afterEach(async () => {
  await pair?.close();
  pair = null;
});

const FAST = { ...LOOPBACK, backoff: { minMs: 100, maxMs: 800 }, connectTimeoutMs: 3000, consentTimeoutMs: 8000 };

/** The session (lane) carrying the agent's traffic (private; reached into to break its path as a network would). */
function sessionOf(agent: PeerAgent): IceSession {
  const s = (agent as unknown as { active: IceSession | null }).active;
  if (s === null) throw new Error("no session");
  return s;
}

describe("ICE restarts", () => {
  it("restarts when the selected path dies and traffic flows on the new one", async () => {
    pair = agentPair(FAST);
    const { a, b } = pair;
    a.start();
    b.start();
    await waitConnected([a, b]);
    const gen0 = a.status().generation;
    const oldPort = a.status().selectedPair!.local.port;

    // Close the socket under the selected pair: consent checks stop getting answers on both sides.
    // With no traffic, only the consent deadline notices.
    const t0 = performance.now();
    await sessionOf(a).conn.nominated!.protocol.close();

    await waitFor(() => a.status().generation > gen0 && a.state === "connected" && b.state === "connected" && a.status().selectedPair?.local.port !== oldPort, {
      what: "a new path",
      timeoutMs: 20_000,
      intervalMs: 20,
    });
    const recoveredMs = performance.now() - t0;
    console.log(`ice restart (idle path): connected again after ${recoveredMs.toFixed(0)} ms`);

    const sa = a.status();
    expect(sa.restarts).toBeGreaterThanOrEqual(1);
    expect(sa.generation).toBeGreaterThan(gen0);
    expect(b.status().generation).toBe(sa.generation); // the controlled side follows the controlling one's generation
    expect(sa.lastError).toBeNull();
    expect(sa.selectedPair!.local.port).not.toBe(oldPort); // a fresh session has fresh sockets
    const got = await exchange(a, b, [Uint8Array.of(7, 7)]);
    expect(got.map((d) => [...d])).toEqual([[7, 7]]);
    const back = await exchange(b, a, [Uint8Array.of(8)]);
    expect(back.length).toBe(1);
  }, 40_000);

  it("with traffic flowing, a dead path is abandoned within seconds and traffic moves to a new one", async () => {
    // Consent alone would take 30 s here: the recovery below comes from the liveness probe.
    pair = agentPair({ ...FAST, consentTimeoutMs: 30_000 });
    const { a, b } = pair;
    a.start();
    b.start();
    await waitConnected([a, b]);
    const oldPort = a.status().selectedPair!.local.port;
    let lastAtB = 0;
    let longestGap = 0;
    b.onData(() => {
      const now = performance.now();
      if (lastAtB > 0) longestGap = Math.max(longestGap, now - lastAtB);
      lastAtB = now;
    });
    a.onData(() => undefined);
    // 20 datagrams/s from a to b, answered by b, like pings.
    b.onData((d) => b.send(d));
    const pinger = setInterval(() => a.send(Uint8Array.of(1, 2, 3)), 50);
    try {
      await new Promise((r) => setTimeout(r, 300));
      const t0 = performance.now();
      await sessionOf(a).conn.nominated!.protocol.close();
      await waitFor(() => a.status().selectedPair !== null && a.status().selectedPair!.local.port !== oldPort && performance.now() - lastAtB < 100, {
        what: "traffic on a new path",
        timeoutMs: 15_000,
        intervalMs: 20,
      });
      const recoveredMs = performance.now() - t0;
      console.log(`ice fail-over with traffic (loopback): traffic on a new path ${recoveredMs.toFixed(0)} ms after the cut; longest gap at b ${longestGap.toFixed(0)} ms`);
      // Generous (the figure is printed above); without the liveness probe it would take the 30 s consent deadline.
      expect(recoveredMs).toBeLessThan(15_000);
    } finally {
      clearInterval(pinger);
    }
  }, 40_000);

  it("a peer asking for a restart gets one; a stale request only gets the credentials again", async () => {
    pair = agentPair(FAST);
    const { a, b, hub } = pair;
    a.start();
    b.start();
    await waitConnected([a, b]);
    const gen = a.status().generation;

    // An old request (an earlier generation) must not tear down a working path.
    if (gen > 0) a.receive({ type: "restart", generation: gen - 1 });
    a.receive({ type: "restart", generation: gen });
    await waitFor(() => a.status().generation === gen + 1 && a.state === "connected" && b.state === "connected", {
      what: "the requested restart",
      timeoutMs: 10_000,
      intervalMs: 20,
    });
    await new Promise((r) => setTimeout(r, 300)); // repeats are rate-limited
    const stale = hub.log.length;
    a.receive({ type: "restart", generation: gen }); // now older than the current generation
    await new Promise((r) => setTimeout(r, 300));
    expect(a.status().generation).toBe(gen + 1);
    expect(a.state).toBe("connected");
    expect(hub.log.slice(stale).some((r) => r.msg.type === "credentials")).toBe(true);
  }, 30_000);

  it("reconnects to a peer that was restarted (a new process with the same key), either side", async () => {
    pair = agentPair(FAST);
    pair.a.start();
    pair.b.start();
    await waitConnected([pair.a, pair.b]);
    // The controlled side comes back: its hello makes the controlling side restart at once.
    const t0 = performance.now();
    const b2 = await pair.replace("b");
    b2.start();
    await waitConnected([pair.a, b2]);
    const bMs = performance.now() - t0;
    expect(pair.a.status().restarts).toBeGreaterThanOrEqual(1);
    // The controlling side comes back: its fresh credentials make the controlled side follow.
    const t1 = performance.now();
    const a2 = await pair.replace("a");
    a2.start();
    await waitFor(() => a2.state === "connected" && b2.state === "connected" && b2.status().restarts >= 1, { what: "reconnect", timeoutMs: 10_000 });
    const aMs = performance.now() - t1;
    console.log(`ice peer restart: controlled side back in ${bMs.toFixed(0)} ms, controlling side back in ${aMs.toFixed(0)} ms`);
    expect((await exchange(a2, b2, [Uint8Array.of(1)])).length).toBe(1);
    expect((await exchange(b2, a2, [Uint8Array.of(2)])).length).toBe(1);
  }, 30_000);

  it("keeps retrying a peer whose signaling is quiet, and connects once it is back", async () => {
    pair = agentPair(FAST);
    const { a, b, hub } = pair;
    let open = false;
    hub.filter = () => open;
    a.start();
    b.start();
    await new Promise((r) => setTimeout(r, 1500));
    expect(a.state).toBe("new");
    const offers = hub.log.filter((r) => r.msg.type === "credentials").length;
    const asks = hub.log.filter((r) => r.msg.type === "restart").length;
    expect(offers).toBeGreaterThanOrEqual(3); // the first offer and repeats
    expect(asks).toBeGreaterThanOrEqual(3); // the controlled side keeps asking
    open = true;
    await waitConnected([a, b], 10_000);
    expect(a.status().restarts).toBe(0); // repeats are not restarts: same session, same sockets
  }, 20_000);

  it("recovers when an answer is lost", async () => {
    pair = agentPair(FAST);
    const { a, b, hub } = pair;
    let dropped = 0;
    hub.filter = (_from, _to, msg) => {
      if (msg.type === "credentials" && dropped === 0 && hub.log.some((r) => r.msg.type === "credentials" && r.delivered)) {
        dropped++;
        return false; // the controlled side's first answer
      }
      return true;
    };
    a.start();
    b.start();
    await waitConnected([a, b], 10_000);
    expect(dropped).toBe(1);
  }, 20_000);

  it("ignores malformed and stale signaling without throwing", async () => {
    pair = agentPair(FAST);
    const { a, b } = pair;
    a.start();
    b.start();
    const junk: unknown[] = [
      null,
      { type: "credentials", generation: -1, ufrag: "x", pwd: "y" },
      { type: "credentials", generation: Number.NaN, ufrag: "x", pwd: "y" },
      { type: "credentials", generation: 0, ufrag: "", pwd: "y" },
      { type: "credentials", generation: 0, ufrag: "x".repeat(10_000), pwd: "y" },
      { type: "candidate", generation: 0, candidate: "candidate:1 1 udp 2130706431 printer.local 9 typ host" },
      { type: "candidate", generation: 0, candidate: "candidate:1 1 tcp 2130706431 127.0.0.1 9 typ host" },
      { type: "candidate", generation: 0, candidate: "garbage" },
      { type: "candidate", generation: 0, candidate: 42 },
      { type: "candidate", generation: 99, candidate: "candidate:1 1 udp 1 127.0.0.1 9 typ host" },
      { type: "what", generation: 0 },
      { type: "restart", generation: 1e300 },
    ];
    for (const m of junk) {
      expect(() => a.receive(m as SignalingMessage)).not.toThrow();
      expect(() => b.receive(m as SignalingMessage)).not.toThrow();
    }
    await waitConnected([a, b], 10_000);
    expect(a.signalsIgnored + b.signalsIgnored).toBeGreaterThan(10);
    const got = await exchange(a, b, [Uint8Array.of(1)]);
    expect(got.length).toBe(1);
  }, 20_000);
});
