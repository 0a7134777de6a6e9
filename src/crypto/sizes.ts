/** Sizes of WireGuard's primitives, and the checks every backend applies before using them. */
import { CryptoInputError } from "./backend.js";

export const KEY_LENGTH = 32;
export const AEAD_NONCE_LENGTH = 12;
export const XAEAD_NONCE_LENGTH = 24;
export const AEAD_TAG_LENGTH = 16;
export const MAC_LENGTH = 16;
export const HASH_LENGTH = 32;

export function requireLength(what: string, buf: Uint8Array, length: number): void {
  if (!(buf instanceof Uint8Array)) throw new CryptoInputError(`${what} must be a Uint8Array`);
  if (buf.length !== length) {
    throw new CryptoInputError(`${what} must be ${length} bytes, got ${buf.length}`);
  }
}

/** Clamps an X25519 scalar in place (RFC 7748 section 5). */
export function clampPrivateKey(key: Uint8Array): Uint8Array {
  key[0] &= 248;
  key[31] &= 127;
  key[31] |= 64;
  return key;
}
