import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { REPLAY_WINDOW_SIZE, ReplayFilter } from "../../src/replay/index.js";

// WireGuard's REJECT_AFTER_MESSAGES, 2^64 - 2^13 - 1, rounds to 2^64 as a JS number.
const REJECT_AFTER = 2 ** 64 - 2 ** 13 - 1;

describe("ReplayFilter", () => {
  it("has a window of at least 2048 counters", () => {
    expect(REPLAY_WINDOW_SIZE).toBeGreaterThanOrEqual(2048);
  });

  it("accepts counters in order, starting at zero, once each", () => {
    const f = new ReplayFilter();
    for (let c = 0; c < 20_000; c++) expect(f.check(c, REJECT_AFTER), `counter ${c}`).toBe(true);
    for (let c = 19_990; c < 20_000; c++) expect(f.check(c, REJECT_AFTER), `replay ${c}`).toBe(false);
  });

  it("accepts out-of-order counters within the window and refuses their replays", () => {
    const f = new ReplayFilter();
    expect(f.check(100, REJECT_AFTER)).toBe(true);
    expect(f.check(99, REJECT_AFTER)).toBe(true);
    expect(f.check(0, REJECT_AFTER)).toBe(true);
    expect(f.check(50, REJECT_AFTER)).toBe(true);
    expect(f.check(50, REJECT_AFTER)).toBe(false);
    expect(f.check(0, REJECT_AFTER)).toBe(false);
    expect(f.check(100, REJECT_AFTER)).toBe(false);
    expect(f.check(101, REJECT_AFTER)).toBe(true);
  });

  it("refuses counters that have fallen behind the window, and accepts the oldest one inside", () => {
    const f = new ReplayFilter();
    const top = 3 * REPLAY_WINDOW_SIZE + 17;
    expect(f.check(top, REJECT_AFTER)).toBe(true);
    expect(f.check(top - REPLAY_WINDOW_SIZE - 1, REJECT_AFTER)).toBe(false);
    expect(f.check(top - REPLAY_WINDOW_SIZE, REJECT_AFTER)).toBe(true);
    expect(f.check(top - REPLAY_WINDOW_SIZE, REJECT_AFTER)).toBe(false);
    expect(f.check(0, REJECT_AFTER)).toBe(false);
  });

  it("clears stale bits when the window slides far ahead", () => {
    const f = new ReplayFilter();
    for (let c = 0; c < 64; c++) f.check(c, REJECT_AFTER);
    // Jump by exactly the ring's period: these counters map onto the same words as 0..63.
    const jump = REPLAY_WINDOW_SIZE + 32;
    expect(f.check(jump + 63, REJECT_AFTER)).toBe(true);
    for (let c = jump; c < jump + 63; c++) expect(f.check(c, REJECT_AFTER), `counter ${c}`).toBe(true);
    // A jump of a huge distance, then the counters just below it.
    const far = 2 ** 50;
    expect(f.check(far, REJECT_AFTER)).toBe(true);
    for (let c = far - 40; c < far; c++) expect(f.check(c, REJECT_AFTER), `counter ${c}`).toBe(true);
    expect(f.check(jump + 63, REJECT_AFTER)).toBe(false);
  });

  it("refuses counters at or beyond the limit without recording them", () => {
    const f = new ReplayFilter();
    expect(f.check(10, 10)).toBe(false);
    expect(f.check(11, 10)).toBe(false);
    expect(f.check(9, 10)).toBe(true);
    expect(f.check(9, 10)).toBe(false);
    // The refused 10 did not move the window.
    expect(f.check(10, 11)).toBe(true);
  });

  it("refuses counters that are not exact non-negative integers below 2^53", () => {
    const f = new ReplayFilter();
    for (const c of [-1, 0.5, Number.NaN, Infinity, 2 ** 53, 2 ** 63, 2 ** 64 - 1]) {
      expect(f.check(c, REJECT_AFTER), String(c)).toBe(false);
    }
    expect(f.check(2 ** 53 - 1, REJECT_AFTER)).toBe(true);
    expect(f.check(2 ** 53 - 2, REJECT_AFTER)).toBe(true);
  });

  it("forgets everything on reset", () => {
    const f = new ReplayFilter();
    expect(f.check(3, REJECT_AFTER)).toBe(true);
    expect(f.check(20_000, REJECT_AFTER)).toBe(true);
    expect(f.check(1, REJECT_AFTER)).toBe(false); // behind the window
    f.reset();
    expect(f.check(1, REJECT_AFTER)).toBe(true);
    expect(f.check(3, REJECT_AFTER)).toBe(true);
    expect(f.check(20_000, REJECT_AFTER)).toBe(true);
  });

  // Counters near each other with occasional jumps exercise both window edges; long runs of small
  // forward steps make the ring wrap onto words that hold old bits.
  const jumpy = fc.array(
    fc.oneof(
      fc.integer({ min: -200, max: 200 }),
      fc.integer({ min: -REPLAY_WINDOW_SIZE - 64, max: REPLAY_WINDOW_SIZE + 64 }),
    ),
    { maxLength: 400 },
  );
  const creeping = fc.array(fc.integer({ min: -30, max: 40 }), { minLength: 2000, maxLength: 4000 });

  it.each([
    ["jumpy", jumpy],
    ["creeping", creeping],
  ])("agrees with a model that remembers every counter (%s)", (_label, steps) => {
    fc.assert(
      fc.property(steps, (list) => {
        const f = new ReplayFilter();
        const seen = new Set<number>();
        let highest = 0;
        let cursor = 0;
        for (const s of list) {
          cursor = Math.max(0, cursor + s);
          const expected = !seen.has(cursor) && (cursor > highest || highest - cursor <= REPLAY_WINDOW_SIZE);
          expect(f.check(cursor, REJECT_AFTER), `counter ${cursor}`).toBe(expected);
          if (expected) {
            seen.add(cursor);
            highest = Math.max(highest, cursor);
          }
        }
      }),
      // Shrinking arrays of thousands of steps takes minutes; the first counterexample will do.
      { numRuns: 60, endOnFailure: true },
    );
  });
});
