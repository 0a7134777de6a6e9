import { describe, expect, it } from "vitest";
import {
  TAI64N_LENGTH,
  after,
  compare,
  fromMillis,
  toMillis,
  whiten,
  whitenedFromMillis,
} from "../../src/tai64n/index.js";

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString("hex");
}

describe("TAI64N", () => {
  it("encodes the epoch as 2^62 + 10 seconds and zero nanoseconds", () => {
    expect(hex(fromMillis(0))).toBe("400000000000000a" + "00000000");
  });

  it("encodes seconds and nanoseconds big-endian", () => {
    // 2021-01-01T00:00:00.123Z: 1609459200 s = 0x5fee6600, 123 ms = 123000000 ns = 0x07567cc0.
    const stamp = fromMillis(Date.UTC(2021, 0, 1, 0, 0, 0, 123));
    expect(stamp.length).toBe(TAI64N_LENGTH);
    expect(hex(stamp)).toBe("400000005fee660a" + "0754d4c0");
    expect(toMillis(stamp)).toBe(Date.UTC(2021, 0, 1, 0, 0, 0, 123));
  });

  it("handles times before 1970 and fractional milliseconds", () => {
    expect(hex(fromMillis(-1))).toBe("4000000000000009" + "3b8b87c0"); // -1 s + 999 ms
    expect(hex(fromMillis(1.9))).toBe(hex(fromMillis(1)));
    expect(() => fromMillis(Number.NaN)).toThrow(RangeError);
    expect(() => fromMillis(1e20)).toThrow(RangeError);
  });

  it("whitening rounds nanoseconds down to a multiple of 2^24", () => {
    const ms = Date.UTC(2024, 5, 1, 12, 0, 0, 999);
    const w = whiten(fromMillis(ms));
    const nanos = new DataView(w.buffer).getUint32(8);
    expect(nanos % 2 ** 24).toBe(0);
    expect(nanos).toBe(Math.floor(999_000_000 / 2 ** 24) * 2 ** 24);
    expect(hex(w.subarray(0, 8))).toBe(hex(fromMillis(ms).subarray(0, 8)));
    expect(hex(whitenedFromMillis(ms))).toBe(hex(w));
    // 16 ms fall inside one whitening step; 17 ms after its start do not.
    expect(compare(whitenedFromMillis(Date.UTC(2024, 0, 1)), whitenedFromMillis(Date.UTC(2024, 0, 1) + 16))).toBe(0);
    expect(after(whitenedFromMillis(Date.UTC(2024, 0, 1) + 17), whitenedFromMillis(Date.UTC(2024, 0, 1)))).toBe(true);
  });

  it("whitened stamps 20 ms apart (the fastest handshake rate) still order strictly", () => {
    const base = Date.UTC(2024, 0, 1);
    for (let t = base; t < base + 3000; t += 7) {
      expect(after(whitenedFromMillis(t + 20), whitenedFromMillis(t)), `t=${t}`).toBe(true);
    }
  });

  it("compares byte-wise, so later seconds beat larger nanoseconds", () => {
    const a = fromMillis(1000); // 1 s, 0 ns
    const b = fromMillis(999); // 0 s, 999 ms
    expect(compare(a, b)).toBe(1);
    expect(compare(b, a)).toBe(-1);
    expect(compare(a, fromMillis(1000))).toBe(0);
    expect(after(a, b)).toBe(true);
    expect(after(b, a)).toBe(false);
    expect(after(a, a)).toBe(false);
  });

  it("refuses buffers that are not 12 bytes", () => {
    expect(() => compare(new Uint8Array(11), fromMillis(0))).toThrow(RangeError);
    expect(() => after(fromMillis(0), new Uint8Array(13))).toThrow(RangeError);
    expect(() => whiten(new Uint8Array(0))).toThrow(RangeError);
  });
});
