/**
 * HMAC (RFC 2104) over BLAKE2s-256 in pure JS, for backends without a native HMAC-BLAKE2s.
 * BLAKE2s has a 64-byte block, so keys longer than that are hashed first, as HMAC prescribes.
 */
import { BLAKE2s } from "@stablelib/blake2s";
import { wipe } from "./bytes.js";

const BLOCK = 64;

export function hmacBlake2s(key: Uint8Array, data: readonly Uint8Array[]): Uint8Array {
  const block = new Uint8Array(BLOCK);
  if (key.length > BLOCK) {
    const hk = new BLAKE2s(32).update(key).digest();
    block.set(hk);
    wipe(hk);
  } else {
    block.set(key);
  }
  const pad = new Uint8Array(BLOCK);
  for (let i = 0; i < BLOCK; i++) pad[i] = block[i] ^ 0x36;
  const inner = new BLAKE2s(32).update(pad);
  for (const part of data) inner.update(part);
  const innerDigest = inner.digest();
  for (let i = 0; i < BLOCK; i++) pad[i] = block[i] ^ 0x5c;
  const out = new BLAKE2s(32).update(pad).update(innerDigest).digest();
  wipe(block);
  wipe(pad);
  wipe(innerDigest);
  inner.clean();
  return out;
}
