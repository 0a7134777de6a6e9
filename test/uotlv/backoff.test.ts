import { describe, expect, it } from "vitest";
import { Backoff } from "../../src/uotlv/backoff.js";

describe("reconnect back-off", () => {
  it("waits 1, 2, 4, 8, then 10 s for ever while attempts fail quickly", () => {
    const b = new Backoff();
    const waits = Array.from({ length: 8 }, () => b.next(50));
    expect(waits).toEqual([1000, 2000, 4000, 8000, 10000, 10000, 10000, 10000]);
  });

  it("starts over after a connection that lived more than 10 s", () => {
    const b = new Backoff();
    b.next(10);
    b.next(10);
    expect(b.next(10)).toBe(4000);
    expect(b.next(10_001)).toBe(1000);
    expect(b.next(10_000)).toBe(2000); // exactly 10 s does not count as working
  });

  it("takes other delays and refuses none", () => {
    const b = new Backoff([5, 7], 100);
    expect([b.next(0), b.next(0), b.next(0)]).toEqual([5, 7, 7]);
    b.reset();
    expect(b.next(0)).toBe(5);
    expect(() => new Backoff([])).toThrow(RangeError);
  });
});
