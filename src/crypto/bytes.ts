/**
 * Byte helpers for secret material: comparisons that do not leak where inputs differ, and
 * explicit wiping so keys do not linger in buffers the garbage collector may keep for a while.
 */

/**
 * True when `a` and `b` hold the same bytes. A length mismatch returns false at once (lengths are
 * public); for equal lengths every byte is examined, so timing does not reveal the first difference.
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/** Overwrites `buf` with zeros. */
export function wipe(buf: Uint8Array): void {
  buf.fill(0);
}

/** True when every byte is zero, examining all bytes regardless of content. */
export function isZero(buf: Uint8Array): boolean {
  let acc = 0;
  for (let i = 0; i < buf.length; i++) acc |= buf[i];
  return acc === 0;
}

/** The concatenation of `parts` in a fresh buffer (no copy-avoidance tricks: callers may wipe it). */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}
