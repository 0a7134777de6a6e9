/**
 * The "stablelib" backend: every primitive in pure JS through @stablelib. Slow at X25519 (about
 * 0.8 k DH/s) but independent of the OpenSSL build, which makes it a reference to test the other
 * backends against and a fallback where node:crypto lacks a primitive.
 */
import { randomFillSync } from "node:crypto";
import { BLAKE2s } from "@stablelib/blake2s";
import { ChaCha20Poly1305 } from "@stablelib/chacha20poly1305";
import { scalarMult, scalarMultBase } from "@stablelib/x25519";
import { XChaCha20Poly1305 } from "@stablelib/xchacha20poly1305";
import { ZeroSharedSecretError, type CryptoBackend } from "./backend.js";
import { blake2sMac } from "./blake2s.js";
import { isZero } from "./bytes.js";
import { hmacBlake2s } from "./hmac.js";
import { AEAD_NONCE_LENGTH, KEY_LENGTH, XAEAD_NONCE_LENGTH, clampPrivateKey, requireLength } from "./sizes.js";

interface Aead {
  seal(nonce: Uint8Array, plaintext: Uint8Array, ad?: Uint8Array): Uint8Array;
  open(nonce: Uint8Array, sealed: Uint8Array, ad?: Uint8Array): Uint8Array | null;
  clean(): unknown;
}

function withAead<T>(aead: Aead, use: (a: Aead) => T): T {
  try {
    return use(aead);
  } finally {
    // The instances hold a copy of the key.
    aead.clean();
  }
}

export class StablelibBackend implements CryptoBackend {
  readonly name = "stablelib";

  generatePrivateKey(): Uint8Array {
    return clampPrivateKey(randomFillSync(new Uint8Array(KEY_LENGTH)));
  }

  publicKey(privateKey: Uint8Array): Uint8Array {
    requireLength("X25519 private key", privateKey, KEY_LENGTH);
    return scalarMultBase(privateKey);
  }

  dh(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
    requireLength("X25519 private key", privateKey, KEY_LENGTH);
    requireLength("X25519 public key", publicKey, KEY_LENGTH);
    const shared = scalarMult(privateKey, publicKey);
    if (isZero(shared)) throw new ZeroSharedSecretError();
    return shared;
  }

  aeadSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, ad?: Uint8Array): Uint8Array {
    requireLength("ChaCha20-Poly1305 key", key, KEY_LENGTH);
    // @stablelib also accepts 8- and 16-byte nonces; WireGuard and RFC 8439 use only 12.
    requireLength("ChaCha20-Poly1305 nonce", nonce, AEAD_NONCE_LENGTH);
    return withAead(new ChaCha20Poly1305(key), (a) => a.seal(nonce, plaintext, ad));
  }

  aeadOpen(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, ad?: Uint8Array): Uint8Array | null {
    requireLength("ChaCha20-Poly1305 key", key, KEY_LENGTH);
    requireLength("ChaCha20-Poly1305 nonce", nonce, AEAD_NONCE_LENGTH);
    return withAead(new ChaCha20Poly1305(key), (a) => a.open(nonce, sealed, ad));
  }

  xaeadSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, ad?: Uint8Array): Uint8Array {
    requireLength("XChaCha20-Poly1305 key", key, KEY_LENGTH);
    requireLength("XChaCha20-Poly1305 nonce", nonce, XAEAD_NONCE_LENGTH);
    return withAead(new XChaCha20Poly1305(key), (a) => a.seal(nonce, plaintext, ad));
  }

  xaeadOpen(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, ad?: Uint8Array): Uint8Array | null {
    requireLength("XChaCha20-Poly1305 key", key, KEY_LENGTH);
    requireLength("XChaCha20-Poly1305 nonce", nonce, XAEAD_NONCE_LENGTH);
    return withAead(new XChaCha20Poly1305(key), (a) => a.open(nonce, sealed, ad));
  }

  hash(...data: Uint8Array[]): Uint8Array {
    const h = new BLAKE2s(32);
    for (const part of data) h.update(part);
    return h.digest();
  }

  mac(key: Uint8Array, ...data: Uint8Array[]): Uint8Array {
    return blake2sMac(key, data);
  }

  hmac(key: Uint8Array, ...data: Uint8Array[]): Uint8Array {
    return hmacBlake2s(key, data);
  }
}

export function createStablelibBackend(): CryptoBackend {
  return new StablelibBackend();
}
