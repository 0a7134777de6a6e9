/**
 * The cryptographic primitives WireGuard needs, and nothing more.
 *
 * Every backend (the portable one built on node:crypto and @stablelib, a pure-@stablelib one,
 * and later the native addon) implements this interface and must pass the same vector tests.
 * All keys are raw bytes: 32-byte X25519 keys, 32-byte AEAD keys.
 */
export interface CryptoBackend {
  /** Short name shown in logs and `tswg show`, e.g. "node", "stablelib", "native". */
  readonly name: string;

  /** A fresh, clamped X25519 private key from a CSPRNG. */
  generatePrivateKey(): Uint8Array;
  /** The X25519 public key of a private key. */
  publicKey(privateKey: Uint8Array): Uint8Array;
  /**
   * X25519(privateKey, publicKey). Throws {@link ZeroSharedSecretError} when the result is all
   * zeros (a low-order public key), as WireGuard requires; throws {@link CryptoInputError} on
   * keys of the wrong length.
   */
  dh(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array;

  /** ChaCha20-Poly1305 (RFC 8439) with a 12-byte nonce: returns ciphertext || 16-byte tag. */
  aeadSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, ad?: Uint8Array): Uint8Array;
  /**
   * Opens ciphertext || tag; returns null when authentication fails or `sealed` is shorter than a
   * tag. Wrong key or nonce sizes throw {@link CryptoInputError} (a caller bug, not bad input).
   */
  aeadOpen(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, ad?: Uint8Array): Uint8Array | null;

  /** XChaCha20-Poly1305 with a 24-byte nonce (cookie replies). */
  xaeadSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, ad?: Uint8Array): Uint8Array;
  xaeadOpen(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, ad?: Uint8Array): Uint8Array | null;

  /** BLAKE2s-256 of the concatenation of the inputs. */
  hash(...data: Uint8Array[]): Uint8Array;
  /**
   * Keyed BLAKE2s with a 16-byte output (WireGuard's MAC1/MAC2), over the concatenated inputs.
   * WireGuard's keys are 32 bytes; any key of 0..32 bytes is accepted (empty means unkeyed).
   */
  mac(key: Uint8Array, ...data: Uint8Array[]): Uint8Array;
  /** HMAC-BLAKE2s (32-byte output) over the concatenated inputs. */
  hmac(key: Uint8Array, ...data: Uint8Array[]): Uint8Array;
}

/** X25519 produced the all-zero shared secret: the peer sent a low-order point. */
export class ZeroSharedSecretError extends Error {
  constructor() {
    super("X25519 produced an all-zero shared secret");
    this.name = "ZeroSharedSecretError";
  }
}

/** A key, nonce or tag of the wrong size was handed to a primitive. */
export class CryptoInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CryptoInputError";
  }
}
