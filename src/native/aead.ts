/**
 * Types of the addon's ChaCha20-Poly1305 functions (native/src/crypto_binding.cc), which run on
 * the calling thread through the OpenSSL libcrypto that Node exports.
 */
export interface NativeAeadFunctions {
  /** ciphertext || tag. Key 32 bytes, nonce 12 bytes (checked: TypeError otherwise). */
  aeadSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, ad?: Uint8Array): Uint8Array;
  /** The plaintext, or null when the tag does not verify or `sealed` is shorter than a tag. */
  aeadOpen(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, ad?: Uint8Array): Uint8Array | null;
  /**
   * Seals the packets of `input` (back to back, lengths in `sizes`) with WireGuard's counter
   * nonces from `firstCounter` on, writing ciphertext || tag back to back into `output`.
   * Returns how many were sealed (fewer when `output` is too small).
   */
  aeadSealBatch(key: Uint8Array, firstCounter: number, input: Uint8Array, sizes: Uint32Array, output: Uint8Array): number;
}
