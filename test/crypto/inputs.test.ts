// Size checks and output hygiene common to every backend.
import { describe, expect, it } from "vitest";
import { CryptoInputError, backendNames, getBackend } from "../../src/crypto/index.js";

describe.each(backendNames())("backend %s: inputs", (name) => {
  const backend = getBackend(name);

  it("rejects X25519 keys of the wrong length with CryptoInputError", () => {
    const good = backend.generatePrivateKey();
    const pub = backend.publicKey(good);
    for (const len of [0, 31, 33, 64]) {
      expect(() => backend.publicKey(new Uint8Array(len))).toThrow(CryptoInputError);
      expect(() => backend.dh(new Uint8Array(len), pub)).toThrow(CryptoInputError);
      expect(() => backend.dh(good, new Uint8Array(len))).toThrow(CryptoInputError);
    }
  });

  it("rejects 8- and 16-byte ChaCha20-Poly1305 nonces, which some libraries accept", () => {
    const key = new Uint8Array(32);
    for (const len of [8, 16]) {
      expect(() => backend.aeadSeal(key, new Uint8Array(len), new Uint8Array(1))).toThrow(CryptoInputError);
      expect(() => backend.aeadOpen(key, new Uint8Array(len), new Uint8Array(17))).toThrow(CryptoInputError);
    }
  });

  it("returns fresh buffers that do not alias inputs or each other", () => {
    const priv = backend.generatePrivateKey();
    const p1 = backend.publicKey(priv);
    p1.fill(0);
    expect(backend.publicKey(priv).some((x) => x !== 0)).toBe(true);
    const sealed = backend.aeadSeal(new Uint8Array(32), new Uint8Array(12), Uint8Array.of(1, 2, 3));
    const opened = backend.aeadOpen(new Uint8Array(32), new Uint8Array(12), sealed);
    expect(opened).toEqual(Uint8Array.of(1, 2, 3));
    opened!.fill(0);
    expect(backend.aeadOpen(new Uint8Array(32), new Uint8Array(12), sealed)).toEqual(Uint8Array.of(1, 2, 3));
  });

  it("generates distinct private keys", () => {
    const keys = new Set(Array.from({ length: 16 }, () => Buffer.from(backend.generatePrivateKey()).toString("hex")));
    expect(keys.size).toBe(16);
  });
});
