/** The per-sender replay window: new counters pass once, old or repeated ones never, memory stays bounded. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ReplayWindow } from "../../src/signaling/replay-window.js";

const c = (timestampMs: number, sequence = 0) => ({ timestampMs, sequence });

describe("ReplayWindow", () => {
  it("accepts increasing counters once each", () => {
    const w = new ReplayWindow(1000);
    expect(w.accept(c(100))).toBe(true);
    expect(w.accept(c(100))).toBe(false);
    expect(w.accept(c(100, 1))).toBe(true);
    expect(w.accept(c(101))).toBe(true);
    expect(w.check(c(101))).toBe(false);
  });

  it("accepts late arrivals inside the window only", () => {
    const w = new ReplayWindow(1000);
    expect(w.accept(c(5000))).toBe(true);
    expect(w.accept(c(4000))).toBe(true); // exactly at the edge
    expect(w.accept(c(3999))).toBe(false);
    expect(w.accept(c(4500, 7))).toBe(true);
    expect(w.accept(c(4500, 7))).toBe(false);
  });

  it("stays bounded and refuses what it had to forget", () => {
    const w = new ReplayWindow(1_000_000, 8);
    for (let i = 0; i < 20; i++) expect(w.accept(c(1000, i))).toBe(true);
    expect(w.size).toBe(8);
    expect(w.accept(c(1000, 5))).toBe(false); // forgotten, so refused
    expect(w.accept(c(1000, 11))).toBe(false); // evicted: at or below the forgotten ones
    expect(w.accept(c(1000, 12))).toBe(false); // still remembered
    expect(w.accept(c(1000, 20))).toBe(true);
  });

  it("never accepts the same counter twice, whatever the order", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 50 }), fc.integer({ min: 0, max: 3 })), { maxLength: 200 }), (xs) => {
        const w = new ReplayWindow(20, 16);
        const accepted = new Set<string>();
        for (const [t, s] of xs) {
          if (w.accept(c(t, s))) {
            const k = `${t}:${s}`;
            expect(accepted.has(k)).toBe(false);
            accepted.add(k);
          }
        }
      }),
    );
  });
});
