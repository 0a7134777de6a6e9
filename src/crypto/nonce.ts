/** Nonces for WireGuard transport data: 4 zero bytes followed by the 64-bit little-endian counter. */
import { CryptoInputError } from "./backend.js";
import { AEAD_NONCE_LENGTH } from "./sizes.js";

const TWO_POW_32 = 0x1_0000_0000;

/**
 * Writes the transport nonce for `counter` into `out` (12 bytes, allocated when absent) and returns it.
 * Counters are JS numbers, so only values up to 2^53 - 1 are representable; larger ones are refused.
 */
export function counterNonce(counter: number, out: Uint8Array = new Uint8Array(AEAD_NONCE_LENGTH)): Uint8Array {
  if (!Number.isSafeInteger(counter) || counter < 0) {
    throw new CryptoInputError(`nonce counter must be a non-negative safe integer, got ${counter}`);
  }
  if (out.length !== AEAD_NONCE_LENGTH) {
    throw new CryptoInputError(`nonce buffer must be ${AEAD_NONCE_LENGTH} bytes, got ${out.length}`);
  }
  const lo = counter % TWO_POW_32;
  const hi = (counter - lo) / TWO_POW_32;
  out[0] = 0;
  out[1] = 0;
  out[2] = 0;
  out[3] = 0;
  out[4] = lo & 0xff;
  out[5] = (lo >>> 8) & 0xff;
  out[6] = (lo >>> 16) & 0xff;
  out[7] = lo >>> 24;
  out[8] = hi & 0xff;
  out[9] = (hi >>> 8) & 0xff;
  out[10] = (hi >>> 16) & 0xff;
  out[11] = hi >>> 24;
  return out;
}
