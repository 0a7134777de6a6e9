import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compareKeys, iceRole } from "../../src/ice/role.js";

describe("ICE role from public keys", () => {
  it("the larger key controls", () => {
    const lo = new Uint8Array(32).fill(1);
    const hi = new Uint8Array(32).fill(1);
    hi[31] = 2;
    expect(iceRole(hi, lo)).toBe("controlling");
    expect(iceRole(lo, hi)).toBe("controlled");
    const first = new Uint8Array(32);
    first[0] = 0xff;
    expect(iceRole(first, hi)).toBe("controlling"); // the first differing byte decides
  });

  it("exactly one side of every pair controls", () => {
    const key = fc.uint8Array({ minLength: 32, maxLength: 32 });
    fc.assert(
      fc.property(key, key, (a, b) => {
        fc.pre(compareKeys(a, b) !== 0);
        const ra = iceRole(a, b);
        const rb = iceRole(b, a);
        expect(ra).not.toBe(rb);
        expect(ra === "controlling").toBe(Buffer.compare(Buffer.from(a), Buffer.from(b)) > 0);
      }),
    );
  });

  it("equal keys are an error", () => {
    const k = new Uint8Array(32).fill(9);
    expect(() => iceRole(k, Uint8Array.from(k))).toThrow(/equal/);
  });
});
