/**
 * The "native" backend: ChaCha20-Poly1305 through the addon, which calls the OpenSSL libcrypto
 * that Node itself exports with no per-call cipher object (several times faster per packet than
 * node:crypto's createCipheriv); everything else as the "node" backend does it. Registered
 * only when the addon loads, so the registry (and the tests that iterate it) stay valid
 * without a build.
 */
import { loadNative } from "../native/load.js";
import type { NativeAeadFunctions } from "../native/aead.js";
import type { CryptoBackend } from "./backend.js";
import { NodeBackend } from "./node.js";
import { AEAD_NONCE_LENGTH, KEY_LENGTH, requireLength } from "./sizes.js";

export class NativeBackend implements CryptoBackend {
  readonly name = "native";
  private readonly base = new NodeBackend();

  constructor(private readonly aead: NativeAeadFunctions) {}

  generatePrivateKey(): Uint8Array {
    return this.base.generatePrivateKey();
  }

  publicKey(privateKey: Uint8Array): Uint8Array {
    return this.base.publicKey(privateKey);
  }

  dh(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
    return this.base.dh(privateKey, publicKey);
  }

  aeadSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, ad?: Uint8Array): Uint8Array {
    requireLength("ChaCha20-Poly1305 key", key, KEY_LENGTH);
    requireLength("ChaCha20-Poly1305 nonce", nonce, AEAD_NONCE_LENGTH);
    return this.aead.aeadSeal(key, nonce, plaintext, ad);
  }

  aeadOpen(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, ad?: Uint8Array): Uint8Array | null {
    requireLength("ChaCha20-Poly1305 key", key, KEY_LENGTH);
    requireLength("ChaCha20-Poly1305 nonce", nonce, AEAD_NONCE_LENGTH);
    return this.aead.aeadOpen(key, nonce, sealed, ad);
  }

  xaeadSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, ad?: Uint8Array): Uint8Array {
    return this.base.xaeadSeal(key, nonce, plaintext, ad);
  }

  xaeadOpen(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, ad?: Uint8Array): Uint8Array | null {
    return this.base.xaeadOpen(key, nonce, sealed, ad);
  }

  hash(...data: Uint8Array[]): Uint8Array {
    return this.base.hash(...data);
  }

  mac(key: Uint8Array, ...data: Uint8Array[]): Uint8Array {
    return this.base.mac(key, ...data);
  }

  hmac(key: Uint8Array, ...data: Uint8Array[]): Uint8Array {
    return this.base.hmac(key, ...data);
  }
}

/** A factory for the native backend, or null when the addon (or its AEAD) is unavailable. */
export function nativeBackendFactory(): (() => CryptoBackend) | null {
  const { addon } = loadNative();
  if (addon === null || typeof addon.aeadSeal !== "function" || typeof addon.aeadOpen !== "function") return null;
  return () => new NativeBackend(addon);
}
