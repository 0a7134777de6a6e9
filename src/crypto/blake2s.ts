/**
 * BLAKE2s (RFC 7693) with any digest length from 1 to 32 bytes and an optional key of up to
 * 32 bytes. node:crypto only offers the unkeyed 32-byte variant, while WireGuard's MAC1/MAC2 need a
 * keyed 16-byte digest, so this pure-JS path backs every backend's `mac` and gives tests a way to
 * check keyed and short digests against published answers.
 */
import { BLAKE2s } from "@stablelib/blake2s";
import { CryptoInputError } from "./backend.js";

export const BLAKE2S_MAX_KEY_LENGTH = 32;
export const BLAKE2S_MAX_OUTPUT_LENGTH = 32;

export interface Blake2sOptions {
  /** Key of 0..32 bytes; an empty or absent key means the unkeyed hash. */
  key?: Uint8Array;
  /** Digest length in bytes, 1..32 (default 32). */
  outLen?: number;
}

/** BLAKE2s of the concatenation of `data` (a single buffer or several). */
export function blake2s(data: Uint8Array | readonly Uint8Array[], options: Blake2sOptions = {}): Uint8Array {
  const outLen = options.outLen ?? BLAKE2S_MAX_OUTPUT_LENGTH;
  if (!Number.isInteger(outLen) || outLen < 1 || outLen > BLAKE2S_MAX_OUTPUT_LENGTH) {
    throw new CryptoInputError(`BLAKE2s output length must be 1..32 bytes, got ${outLen}`);
  }
  const key = options.key;
  if (key !== undefined && key.length > BLAKE2S_MAX_KEY_LENGTH) {
    throw new CryptoInputError(`BLAKE2s key must be at most 32 bytes, got ${key.length}`);
  }
  const h = key !== undefined && key.length > 0 ? new BLAKE2s(outLen, { key }) : new BLAKE2s(outLen);
  if (data instanceof Uint8Array) {
    h.update(data);
  } else {
    for (const part of data) h.update(part);
  }
  const out = h.digest();
  // The hasher keeps a padded copy of the key; clear it.
  h.clean();
  return out;
}

/** WireGuard's MAC: keyed BLAKE2s with a 16-byte digest. */
export function blake2sMac(key: Uint8Array, data: readonly Uint8Array[]): Uint8Array {
  return blake2s(data, { key, outLen: 16 });
}
