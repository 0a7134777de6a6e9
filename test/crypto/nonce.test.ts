import { describe, expect, it } from "vitest";
import { CryptoInputError, counterNonce } from "../../src/crypto/index.js";
import { toHex } from "./vectors.js";

describe("counterNonce", () => {
  it("is 4 zero bytes then the counter as 64-bit little endian", () => {
    expect(toHex(counterNonce(0))).toBe("000000000000000000000000");
    expect(toHex(counterNonce(1))).toBe("000000000100000000000000");
    expect(toHex(counterNonce(0x01020304))).toBe("000000000403020100000000");
    expect(toHex(counterNonce(0xffffffff))).toBe("00000000ffffffff00000000");
    expect(toHex(counterNonce(0x1_0000_0000))).toBe("000000000000000001000000");
    expect(toHex(counterNonce(Number.MAX_SAFE_INTEGER))).toBe("00000000ffffffffffff1f00");
  });

  it("agrees with DataView for random counters", () => {
    for (let i = 0; i < 1000; i++) {
      const c = Math.floor(Math.random() * Number.MAX_SAFE_INTEGER);
      const ref = new Uint8Array(12);
      new DataView(ref.buffer).setBigUint64(4, BigInt(c), true);
      expect(toHex(counterNonce(c))).toBe(toHex(ref));
    }
  });

  it("writes into a given buffer, clearing its first four bytes", () => {
    const out = new Uint8Array(12).fill(0xee);
    expect(counterNonce(2, out)).toBe(out);
    expect(toHex(out)).toBe("000000000200000000000000");
  });

  it("refuses counters it cannot represent and wrong buffers", () => {
    for (const c of [-1, 1.5, Number.NaN, Infinity, 2 ** 53]) {
      expect(() => counterNonce(c), String(c)).toThrow(CryptoInputError);
    }
    expect(() => counterNonce(1, new Uint8Array(8))).toThrow(CryptoInputError);
  });
});
