// KDF1/2/3 checked against an independent HKDF chain computed with node:crypto.
import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { backendNames, getBackend, kdf1, kdf2, kdf3, type HmacProvider } from "../../src/crypto/index.js";
import { toHex } from "./vectors.js";

function hmacHex(key: Uint8Array | Buffer, ...data: Uint8Array[]): Buffer {
  const h = createHmac("blake2s256", key);
  for (const d of data) h.update(d);
  return h.digest();
}

function reference(key: Uint8Array, input: Uint8Array): string[] {
  const t0 = hmacHex(key, input);
  const t1 = hmacHex(t0, Uint8Array.of(1));
  const t2 = hmacHex(t0, t1, Uint8Array.of(2));
  const t3 = hmacHex(t0, t2, Uint8Array.of(3));
  return [t1, t2, t3].map((b) => b.toString("hex"));
}

describe.each(backendNames())("backend %s: KDF", (name) => {
  const backend = getBackend(name);
  const key = Uint8Array.from({ length: 32 }, (_, i) => i * 7);
  const inputs = [new Uint8Array(0), Uint8Array.of(0x42), Uint8Array.from({ length: 32 }, (_, i) => 255 - i)];

  it("kdf1, kdf2 and kdf3 return the prefixes of the same chain", () => {
    for (const input of inputs) {
      const [r1, r2, r3] = reference(key, input);
      expect(toHex(kdf1(backend, key, input))).toBe(r1);
      expect(kdf2(backend, key, input).map(toHex)).toEqual([r1, r2]);
      expect(kdf3(backend, key, input).map(toHex)).toEqual([r1, r2, r3]);
    }
  });

  it("outputs are distinct 32-byte values", () => {
    const [a, b, c] = kdf3(backend, key, inputs[1]!);
    expect(new Set([a, b, c].map(toHex)).size).toBe(3);
    for (const t of [a, b, c]) expect(t.length).toBe(32);
  });
});

describe("KDF hygiene", () => {
  it("wipes the pseudo-random key T0 and only T0", () => {
    const outputs: Uint8Array[] = [];
    const spy: HmacProvider = {
      hmac: (k, ...d) => {
        const out = getBackend("node").hmac(k, ...d);
        outputs.push(out);
        return out;
      },
    };
    const [t1, t2] = kdf2(spy, new Uint8Array(32), Uint8Array.of(9));
    expect(outputs.length).toBe(3);
    expect(outputs[0]!.every((x) => x === 0)).toBe(true);
    expect(t1.some((x) => x !== 0)).toBe(true);
    expect(t2.some((x) => x !== 0)).toBe(true);
  });
});
