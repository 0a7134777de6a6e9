/**
 * One complete rekey cycle (REKEY_AFTER_TIME = 120 s) under steady traffic, against
 * wireguard-go and against tswg, both pairs at once to keep the wall time near 140 s.
 * The session must be replaced by a new handshake while pings keep flowing.
 */
import { afterAll, describe, expect, it } from "vitest";
import { netnsUnavailableReason, TestBed } from "../helpers/netns.js";
import { startSimplePair, type Impl, type WgNode } from "./nodes.js";

const skip = await netnsUnavailableReason();

async function rekeyCycle(bed: TestBed, peerImpl: Impl, nodes: WgNode[]): Promise<{ first: number; last: number; lost: number; sent: number }> {
  const { a, na, keysB: kb } = await startSimplePair(bed, peerImpl, nodes);
  const first = (await na.peerDump()).get(kb.publicKey)!.latestHandshake;
  // 135 s of pings, 2 per second: tswg initiated, so it rekeys when it sends after 120 s.
  const r = await a.exec(["ping", "-q", "-i", "0.5", "-c", "270", "-W", "2", "10.77.0.2"], { check: false, timeoutMs: 200_000 });
  const m = /(\d+) packets transmitted, (\d+) received/.exec(r.stdout);
  const last = (await na.peerDump()).get(kb.publicKey)!.latestHandshake;
  return { first, last, sent: Number(m?.[1] ?? 0), lost: Number(m?.[1] ?? 0) - Number(m?.[2] ?? 0) };
}

describe.skipIf(skip !== null)("rekey cycle", () => {
  const beds: TestBed[] = [];
  const nodes: WgNode[] = [];
  afterAll(async () => {
    for (const n of nodes) await n.stop().catch(() => {});
    for (const b of beds) await b.cleanup();
  });

  it("a new handshake replaces the session after 120 s with traffic flowing (wireguard-go and tswg peers)", async () => {
    const results = await Promise.all(
      (["wireguard-go", "tswg"] as const).map(async (impl) => {
        const bed = await TestBed.create("rekey");
        beds.push(bed);
        return { impl, ...(await rekeyCycle(bed, impl, nodes)) };
      }),
    );
    for (const r of results) {
      console.log(`rekey with ${r.impl}: handshakes at ${r.first} and ${r.last} (+${r.last - r.first} s), ${r.lost}/${r.sent} pings lost`);
      expect(r.sent).toBe(270);
      expect(r.last - r.first).toBeGreaterThanOrEqual(120);
      expect(r.last - r.first).toBeLessThan(140);
      // A rekey must not interrupt traffic: allow a stray loss, not an outage.
      expect(r.lost).toBeLessThanOrEqual(2);
    }
  }, 240_000);
});
