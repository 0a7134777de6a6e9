/**
 * Noise's SymmetricState (Noise spec section 5.2) as WireGuard uses it: BLAKE2s for HASH,
 * HKDF over HMAC-BLAKE2s (the whitepaper's KDF_n) for key mixing, ChaCha20-Poly1305 for AEAD.
 *
 * Every handshake key is used to seal exactly one message, so the nonce is always zero and no
 * CipherState counter is kept.
 */
import type { CryptoBackend } from "../crypto/backend.js";
import { kdf1, kdf2, kdf3, wipe } from "../crypto/index.js";
import { CONSTRUCTION } from "./constants.js";

const ZERO_NONCE = new Uint8Array(12);
const EMPTY = new Uint8Array(0);

export class SymmetricState {
  constructor(
    private readonly backend: CryptoBackend,
    /** The chaining key. */
    public ck: Uint8Array,
    /** The handshake hash. */
    public h: Uint8Array,
  ) {}

  /**
   * The state after InitializeSymmetric(CONSTRUCTION) and MixHash(prologue). The protocol name is
   * longer than 32 bytes, so both ck and h start as its hash. WireGuard's prologue is IDENTIFIER.
   */
  static initialize(backend: CryptoBackend, prologue: Uint8Array): SymmetricState {
    const ck = backend.hash(CONSTRUCTION);
    return new SymmetricState(backend, ck, backend.hash(ck, prologue));
  }

  clone(): SymmetricState {
    return new SymmetricState(this.backend, this.ck.slice(), this.h.slice());
  }

  mixHash(data: Uint8Array): void {
    this.h = this.backend.hash(this.h, data);
  }

  /** MixKey for an ephemeral public key in a PSK handshake: only the chaining key changes. */
  mixChain(input: Uint8Array): void {
    const next = kdf1(this.backend, this.ck, input);
    wipe(this.ck);
    this.ck = next;
  }

  /** MixKey: advances the chaining key and returns a fresh one-message AEAD key. */
  mixKey(input: Uint8Array): Uint8Array {
    const [ck, k] = kdf2(this.backend, this.ck, input);
    wipe(this.ck);
    this.ck = ck;
    return k;
  }

  /** MixKeyAndHash (the psk token): advances ck, mixes the second output into h, returns the key. */
  mixKeyAndHash(input: Uint8Array): Uint8Array {
    const [ck, tau, k] = kdf3(this.backend, this.ck, input);
    wipe(this.ck);
    this.ck = ck;
    this.mixHash(tau);
    wipe(tau);
    return k;
  }

  /** Seals `plaintext` under `key` with h as associated data, then mixes the ciphertext into h. */
  encryptAndHash(key: Uint8Array, plaintext: Uint8Array): Uint8Array {
    const sealed = this.backend.aeadSeal(key, ZERO_NONCE, plaintext, this.h);
    this.mixHash(sealed);
    return sealed;
  }

  /** The inverse of {@link encryptAndHash}; null (and h unchanged) when authentication fails. */
  decryptAndHash(key: Uint8Array, sealed: Uint8Array): Uint8Array | null {
    const plaintext = this.backend.aeadOpen(key, ZERO_NONCE, sealed, this.h);
    if (plaintext === null) return null;
    this.mixHash(sealed);
    return plaintext;
  }

  /** Split: the initiator's sending key first, then the responder's. */
  split(): [Uint8Array, Uint8Array] {
    return kdf2(this.backend, this.ck, EMPTY);
  }

  wipe(): void {
    wipe(this.ck);
    wipe(this.h);
  }
}
