import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { concatBytes, constantTimeEqual, isZero, wipe } from "../../src/crypto/index.js";

describe("byte helpers", () => {
  it("constantTimeEqual agrees with plain comparison", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), fc.uint8Array({ maxLength: 40 }), (a, b) => {
        const same = a.length === b.length && a.every((x, i) => x === b[i]);
        expect(constantTimeEqual(a, b)).toBe(same);
        expect(constantTimeEqual(a, Uint8Array.from(a))).toBe(true);
      }),
    );
  });

  it("constantTimeEqual spots a difference in any position, and differing lengths", () => {
    const a = new Uint8Array(32).fill(5);
    for (let i = 0; i < 32; i++) {
      const b = Uint8Array.from(a);
      b[i] ^= 1;
      expect(constantTimeEqual(a, b)).toBe(false);
    }
    expect(constantTimeEqual(a, a.subarray(1))).toBe(false);
    expect(constantTimeEqual(new Uint8Array(0), new Uint8Array(0))).toBe(true);
  });

  it("wipe zeroes and isZero detects any set bit", () => {
    const buf = Uint8Array.from({ length: 64 }, (_, i) => i + 1);
    expect(isZero(buf)).toBe(false);
    wipe(buf);
    expect(isZero(buf)).toBe(true);
    buf[63] = 0x80;
    expect(isZero(buf)).toBe(false);
    expect(isZero(new Uint8Array(0))).toBe(true);
  });

  it("concatBytes joins in order", () => {
    expect(concatBytes(Uint8Array.of(1), new Uint8Array(0), Uint8Array.of(2, 3))).toEqual(Uint8Array.of(1, 2, 3));
  });
});
