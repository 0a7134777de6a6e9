/**
 * Paths through a real coturn on 127.0.0.1: the direct and relay lanes run side by side, traffic
 * takes the best connected one, a dead direct path fails over to the warm relay while traffic
 * flows, several TURN servers are used in order of what works, and allocations are released on
 * close.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { IcePath, PeerAgent } from "../../src/ice/agent.js";
import type { IceAgentConfig } from "../../src/ice/config.js";
import type { IceSession } from "../../src/ice/session.js";
import { parseIceServers } from "../../src/ice/servers.js";
import { waitFor } from "../../src/testbed/wait.js";
import { agentPair, exchange, LOOPBACK, waitConnected, type AgentPair } from "./helpers.js";
import { startLoopbackTurn, TURN_PASSWORD, TURN_USER, turnserverAvailable, type LoopbackTurn } from "./coturn.js";

const haveTurn = turnserverAvailable();

/** The lane carrying the agent's traffic (private; reached into to break it as a network would). */
function activeLane(agent: PeerAgent): IceSession {
  const s = (agent as unknown as { active: IceSession | null }).active;
  if (s === null) throw new Error("no path");
  return s;
}

describe.skipIf(!haveTurn)("ICE paths: relay beside direct", () => {
  let turn: LoopbackTurn;
  let pair: AgentPair | null = null;

  beforeAll(async () => {
    turn = await startLoopbackTurn({ tls: false });
  });
  afterAll(async () => {
    await turn?.stop();
  });
  afterEach(async () => {
    await pair?.close();
    pair = null;
  });

  const withTurn = (urls: string[], extra: Partial<IceAgentConfig> = {}): IceAgentConfig => ({
    ...LOOPBACK,
    servers: parseIceServers(urls.map((u) => ({ urls: u, username: TURN_USER, credential: TURN_PASSWORD }))),
    backoff: { minMs: 100, maxMs: 800 },
    connectTimeoutMs: 3000,
    ...extra,
  });

  it("runs a relay lane beside the direct one, takes the direct path, and fails over while traffic flows", async () => {
    pair = agentPair(withTurn([`turn:127.0.0.1:${turn.port}`]));
    const { a, b } = pair;
    const paths: (IcePath | null)[] = [];
    a.onPathChange((p) => paths.push(p));
    a.start();
    b.start();
    await waitConnected([a, b], 15_000);
    await waitFor(() => a.status().path?.lane === "direct" && b.status().path?.lane === "direct", { what: "the direct path", timeoutMs: 10_000, intervalMs: 20 });
    // The relay lane is gathered and connected too (warm): its candidate is offered.
    expect(a.status().localCandidates.map((c) => c.type)).toContain("relay");
    expect(paths.length).toBeGreaterThanOrEqual(1);
    expect(paths.at(-1)?.lane).toBe("direct");

    let lastAtB = 0;
    let longestGap = 0;
    b.onData((d) => {
      const now = performance.now();
      if (lastAtB > 0) longestGap = Math.max(longestGap, now - lastAtB);
      lastAtB = now;
      b.send(d);
    });
    const pinger = setInterval(() => a.send(Uint8Array.of(5)), 50);
    try {
      await new Promise((r) => setTimeout(r, 300));
      const t0 = performance.now();
      const dead = activeLane(a);
      expect(dead.lane).toBe("direct");
      await dead.conn.nominated!.protocol.close();
      // The warm relay carries copies while the cut path is probed, and a new generation starts at
      // once: traffic moves to the relay, or straight to the new generation's first lane.
      const before = paths.length;
      await waitFor(() => paths.slice(before).some((p) => p !== null && (p.lane === "relay" || p.generation > dead.generation)) && performance.now() - lastAtB < 100, {
        what: "traffic over a new path",
        timeoutMs: 15_000,
        intervalMs: 20,
      });
      const failoverMs = performance.now() - t0;
      // And back to a direct path: the restart in the background finds one.
      await waitFor(() => a.status().path?.lane === "direct" && a.status().generation > dead.generation && performance.now() - lastAtB < 100, {
        what: "a direct path again",
        timeoutMs: 20_000,
        intervalMs: 20,
      });
      console.log(
        `ice fail-over (loopback): traffic on a new path (${paths.slice(before).map((p) => p?.lane ?? "none").join(" -> ")}) ${failoverMs.toFixed(0)} ms after the cut; ` +
          `direct again after ${(performance.now() - t0).toFixed(0)} ms; longest gap at b ${longestGap.toFixed(0)} ms; path changes ${a.status().pathChanges}`,
      );
    } finally {
      clearInterval(pinger);
    }
    const got = await exchange(a, b, [Uint8Array.of(1, 2)]);
    expect(got.length).toBeGreaterThanOrEqual(1);
  }, 60_000);

  it("with a dead TURN server listed first, the next one carries the relay path", async () => {
    // Nothing listens on port 9 of 127.0.0.1 (discard): its relay lane never gets an allocation.
    pair = agentPair(withTurn([`turn:127.0.0.1:9`, `turn:127.0.0.1:${turn.port}`], { candidateTypes: ["relay"], gatherTimeoutMs: 500 }));
    const { a, b } = pair;
    a.start();
    b.start();
    await waitConnected([a, b], 15_000);
    const path = a.status().path!;
    expect(path.lane).toBe("relay");
    expect(path.relay?.port).toBe(turn.port);
    const got = await exchange(a, b, [Uint8Array.of(3)]);
    expect(got.map((d) => [...d])).toEqual([[3]]);
  }, 30_000);

  it("releases its TURN allocations on close (Refresh with lifetime 0)", async () => {
    pair = agentPair(withTurn([`turn:127.0.0.1:${turn.port}`], { candidateTypes: ["relay"] }));
    const { a, b } = pair;
    a.start();
    b.start();
    await waitConnected([a, b], 15_000);
    const lanes = [a, b].flatMap((ag) => (ag as unknown as { gen: { lanes: IceSession[] } }).gen.lanes);
    expect(lanes.map((l) => l.lane)).toEqual(["relay", "relay"]);
    await pair.close();
    pair = null;
    // Counted only on coturn's success response to the Refresh with LIFETIME 0.
    expect(lanes.map((l) => l.allocationsReleased)).toEqual([1, 1]);
  }, 30_000);
});
