import { describe, expect, it } from "vitest";
import { RateLimiter } from "../../src/ratelimiter/index.js";

class FakeClock {
  constructor(public t = 1_000_000) {}
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

function countAllowed(rl: RateLimiter, source: string, attempts: number): number {
  let n = 0;
  for (let i = 0; i < attempts; i++) if (rl.allow(source)) n++;
  return n;
}

describe("RateLimiter", () => {
  it("allows a burst of 5 from a new source, then refuses", () => {
    const clock = new FakeClock();
    const rl = new RateLimiter(clock);
    expect(countAllowed(rl, "192.0.2.1", 100)).toBe(5);
  });

  it("refills at 20 packets per second", () => {
    const clock = new FakeClock();
    const rl = new RateLimiter(clock);
    countAllowed(rl, "192.0.2.1", 5);
    clock.advance(49);
    expect(rl.allow("192.0.2.1")).toBe(false);
    clock.advance(1);
    expect(rl.allow("192.0.2.1")).toBe(true);
    expect(rl.allow("192.0.2.1")).toBe(false);
    // Over 10 s of steady pressure, 20 per second get through.
    let allowed = 0;
    for (let ms = 0; ms < 10_000; ms += 5) {
      clock.advance(5);
      if (rl.allow("192.0.2.1")) allowed++;
    }
    expect(allowed).toBe(200);
  });

  it("caps the refill at the burst size", () => {
    const clock = new FakeClock();
    const rl = new RateLimiter(clock, { gcIntervalMs: 60_000 });
    countAllowed(rl, "192.0.2.1", 5);
    clock.advance(30_000);
    expect(countAllowed(rl, "192.0.2.1", 50)).toBe(5);
  });

  it("keeps sources apart", () => {
    const clock = new FakeClock();
    const rl = new RateLimiter(clock);
    expect(countAllowed(rl, "192.0.2.1", 10)).toBe(5);
    expect(countAllowed(rl, "2001:db8::1", 10)).toBe(5);
    expect(countAllowed(rl, "192.0.2.2", 10)).toBe(5);
    expect(rl.size).toBe(3);
  });

  it("drops entries idle for more than a second at the next sweep", () => {
    const clock = new FakeClock();
    const rl = new RateLimiter(clock);
    countAllowed(rl, "192.0.2.1", 10);
    clock.advance(600);
    countAllowed(rl, "192.0.2.2", 1);
    expect(rl.size).toBe(2);
    clock.advance(500); // .1 idle 1100 ms, .2 idle 500 ms; a sweep is due
    rl.allow("192.0.2.3");
    expect(rl.size).toBe(2);
    clock.advance(1001);
    rl.allow("192.0.2.3");
    expect(rl.size).toBe(1);
  });

  it("refuses new sources when the table is full, until entries expire", () => {
    const clock = new FakeClock();
    const rl = new RateLimiter(clock, { maxEntries: 3 });
    for (const s of ["a", "b", "c"]) expect(rl.allow(s)).toBe(true);
    expect(rl.allow("d")).toBe(false);
    expect(rl.size).toBe(3);
    // Known sources keep their buckets.
    expect(rl.allow("a")).toBe(true);
    clock.advance(1001);
    expect(rl.allow("d")).toBe(true);
    expect(rl.size).toBe(1);
  });

  it("survives a clock stepping backwards without granting credit", () => {
    const clock = new FakeClock();
    const rl = new RateLimiter(clock);
    countAllowed(rl, "x", 5);
    clock.advance(-10_000);
    expect(rl.allow("x")).toBe(false);
    clock.advance(50);
    expect(rl.allow("x")).toBe(true);
  });

  it("honours other rates and refuses nonsensical options", () => {
    const clock = new FakeClock();
    const rl = new RateLimiter(clock, { packetsPerSecond: 3, burst: 1 });
    expect(countAllowed(rl, "x", 5)).toBe(1);
    clock.advance(333);
    expect(rl.allow("x")).toBe(false);
    clock.advance(1);
    expect(rl.allow("x")).toBe(true);
    clock.advance(1000 / 3);
    expect(rl.allow("x")).toBe(true);
    expect(() => new RateLimiter(clock, { packetsPerSecond: 0 })).toThrow(RangeError);
    expect(() => new RateLimiter(clock, { burst: 0 })).toThrow(RangeError);
    expect(() => new RateLimiter(clock, { maxEntries: 0 })).toThrow(RangeError);
  });

  it("forgets every source on reset", () => {
    const clock = new FakeClock();
    const rl = new RateLimiter(clock);
    countAllowed(rl, "x", 5);
    rl.reset();
    expect(rl.size).toBe(0);
    expect(countAllowed(rl, "x", 10)).toBe(5);
  });
});
