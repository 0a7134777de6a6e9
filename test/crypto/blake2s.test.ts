// BLAKE2s: the reference known answers, and RFC 7693 Appendix E's self-test.
import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { CryptoInputError, backendNames, blake2s, getBackend, type CryptoBackend } from "../../src/crypto/index.js";
import { hex, loadVectors, toHex, type Blake2Kat } from "./vectors.js";

const kat = loadVectors<Blake2Kat[]>("blake2s-kat.json");
const unkeyed = kat.filter((k) => k.hash === "blake2s" && k.key === "");
const keyed = kat.filter((k) => k.hash === "blake2s" && k.key !== "");

describe("blake2s-kat.json", () => {
  it("holds 256 unkeyed and 256 keyed BLAKE2s-256 answers", () => {
    expect(kat.length).toBe(512);
    expect(unkeyed.length).toBe(256);
    expect(keyed.length).toBe(256);
  });

  it("keyed BLAKE2s-256 matches every keyed answer", () => {
    for (const k of keyed) {
      expect(toHex(blake2s(hex(k.in), { key: hex(k.key) })), `in ${k.in.length / 2} bytes`).toBe(k.out);
    }
  });

  it("unkeyed BLAKE2s-256 matches every unkeyed answer, whole or split", () => {
    for (const k of unkeyed) {
      const input = hex(k.in);
      expect(toHex(blake2s(input))).toBe(k.out);
      const cut = input.length >> 1;
      expect(toHex(blake2s([input.subarray(0, cut), input.subarray(cut)]))).toBe(k.out);
    }
  });

  it("refuses out-of-range keys and output lengths", () => {
    expect(() => blake2s(new Uint8Array(1), { key: new Uint8Array(33) })).toThrow(CryptoInputError);
    for (const outLen of [0, 33, 1.5]) {
      expect(() => blake2s(new Uint8Array(1), { outLen })).toThrow(CryptoInputError);
    }
  });
});

// RFC 7693 Appendix E: a Fibonacci-style byte generator seeds inputs and keys.
function selftestSeq(len: number, seed: number): Uint8Array {
  const out = new Uint8Array(len);
  let a = Math.imul(0xdead4bad, seed) >>> 0;
  let b = 1;
  for (let i = 0; i < len; i++) {
    const t = (a + b) >>> 0;
    a = b;
    b = t;
    out[i] = t >>> 24;
  }
  return out;
}

const SELFTEST_RESULT = "6a411f08ce25adcdfb02aba641451cec53c598b24f4fc787fbdc88797f4c1dfe";

/**
 * Runs the self-test: for digest lengths 16, 20, 28, 32 and six input lengths, an unkeyed and a
 * keyed hash (key length = digest length) are fed into one BLAKE2s-256 whose final value is known.
 */
function selftest(backend: CryptoBackend): string {
  const hashes: Uint8Array[] = [];
  for (const outLen of [16, 20, 28, 32]) {
    for (const inLen of [0, 3, 64, 65, 255, 1024]) {
      const input = selftestSeq(inLen, inLen);
      const key = selftestSeq(outLen, outLen);
      if (outLen === 16) {
        // The 16-byte digests are exactly WireGuard's MAC; an empty key means unkeyed.
        hashes.push(backend.mac(new Uint8Array(0), input));
        hashes.push(backend.mac(key, input));
      } else {
        hashes.push(blake2s(input, { outLen }));
        hashes.push(blake2s(input, { key, outLen }));
      }
    }
  }
  return toHex(backend.hash(...hashes));
}

describe.each(backendNames())("backend %s: BLAKE2s", (name) => {
  const backend = getBackend(name);

  it("hash matches every unkeyed known answer", () => {
    for (const k of unkeyed) expect(toHex(backend.hash(hex(k.in)))).toBe(k.out);
  });

  it("hash of several parts equals the hash of their concatenation", () => {
    const whole = hex(unkeyed[200]!.in);
    expect(toHex(backend.hash(whole.subarray(0, 7), whole.subarray(7, 64), whole.subarray(64)))).toBe(unkeyed[200]!.out);
    expect(toHex(backend.hash())).toBe(unkeyed[0]!.out);
  });

  it("passes RFC 7693 Appendix E's self-test with mac for the 16-byte digests", () => {
    expect(selftest(backend)).toBe(SELFTEST_RESULT);
  });

  it("mac is keyed BLAKE2s-128 and checks its key", () => {
    const key = new Uint8Array(32).fill(1);
    const data = Uint8Array.of(1, 2, 3, 4);
    const m = backend.mac(key, data.subarray(0, 1), data.subarray(1));
    expect(m.length).toBe(16);
    expect(toHex(m)).toBe(toHex(blake2s(data, { key, outLen: 16 })));
    // Keyed 16-byte output is not a truncation of the 32-byte digest.
    expect(toHex(m)).not.toBe(toHex(blake2s(data, { key })).slice(0, 32));
    expect(() => backend.mac(new Uint8Array(33), data)).toThrow(CryptoInputError);
  });

  it("hmac agrees with node:crypto's HMAC-BLAKE2s for short and long keys", () => {
    for (const keyLen of [0, 1, 32, 64, 65, 200]) {
      const key = selftestSeq(keyLen, keyLen + 1);
      const data = selftestSeq(100, 3);
      // Independent reference: OpenSSL's HMAC over BLAKE2s-256.
      const expected = createHmac("blake2s256", key).update(data).digest("hex");
      expect(toHex(backend.hmac(key, data.subarray(0, 10), data.subarray(10))), `key ${keyLen}`).toBe(expected);
    }
  });
});
