// Every pair of backends must interoperate: keys, DH results and AEAD boxes are interchangeable.
import { describe, expect, it } from "vitest";
import { backendNames, getBackend } from "../../src/crypto/index.js";
import { toHex } from "./vectors.js";

const names = backendNames();
const pairs = names.flatMap((a) => names.filter((b) => b !== a).map((b) => [a, b] as const));

describe("backend registry", () => {
  it("has at least the node and stablelib backends to compare", () => {
    expect(names).toEqual(expect.arrayContaining(["node", "stablelib"]));
    expect(pairs.length).toBeGreaterThanOrEqual(2);
  });
});

describe.each(pairs)("%s with %s", (nameA, nameB) => {
  const a = getBackend(nameA);
  const b = getBackend(nameB);

  it("derives the same public key and agrees on DH", () => {
    for (let i = 0; i < 4; i++) {
      const privA = a.generatePrivateKey();
      const privB = b.generatePrivateKey();
      expect(toHex(b.publicKey(privA))).toBe(toHex(a.publicKey(privA)));
      const sharedA = a.dh(privA, b.publicKey(privB));
      const sharedB = b.dh(privB, a.publicKey(privA));
      expect(toHex(sharedA)).toBe(toHex(sharedB));
    }
  });

  it("opens what the other sealed, and hashes alike", () => {
    const key = a.generatePrivateKey();
    const data = Uint8Array.from({ length: 1420 }, (_, i) => i & 0xff);
    const ad = Uint8Array.of(4, 0, 0, 0);
    const n12 = Uint8Array.from({ length: 12 }, (_, i) => i);
    const n24 = Uint8Array.from({ length: 24 }, (_, i) => 100 + i);
    expect(b.aeadOpen(key, n12, a.aeadSeal(key, n12, data, ad), ad)).toEqual(data);
    expect(b.xaeadOpen(key, n24, a.xaeadSeal(key, n24, data, ad), ad)).toEqual(data);
    expect(toHex(b.hash(key, data))).toBe(toHex(a.hash(key, data)));
    expect(toHex(b.hmac(key, data))).toBe(toHex(a.hmac(key, data)));
    expect(toHex(b.mac(key, data))).toBe(toHex(a.mac(key, data)));
  });
});
