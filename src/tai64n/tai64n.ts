/**
 * TAI64N timestamps as carried in WireGuard handshake initiations: 8 bytes of big-endian seconds
 * with the TAI64 offset 2^62 (plus the 10 s by which TAI led UTC in 1972, as wireguard-go does), then
 * 4 bytes of big-endian nanoseconds. Responders only compare them, to refuse replayed initiations.
 */

export const TAI64N_LENGTH = 12;

const TAI64_BASE = (1n << 62n) + 10n;
/** Nanoseconds are rounded down to a multiple of 2^24 ns (about 16.8 ms) when whitened. */
export const WHITENER_MASK = 0x00ff_ffff;
const MAX_DATE_MS = 8.64e15;

/** The timestamp of a wall-clock time given in milliseconds since the Unix epoch. */
export function fromMillis(ms: number): Uint8Array {
  // The range of JS Dates; it keeps the seconds field far from overflowing 64 bits.
  if (!Number.isFinite(ms) || Math.abs(ms) > MAX_DATE_MS) {
    throw new RangeError(`timestamp must be a finite number of milliseconds within the Date range, got ${ms}`);
  }
  const whole = Math.floor(ms);
  const seconds = Math.floor(whole / 1000);
  const nanos = (whole - seconds * 1000) * 1_000_000;
  const out = new Uint8Array(TAI64N_LENGTH);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, TAI64_BASE + BigInt(seconds));
  view.setUint32(8, nanos);
  return out;
}

/**
 * A copy of `stamp` with the nanoseconds rounded down to a multiple of 2^24 ns. Initiations carry
 * this coarser value so that they do not reveal the sender's clock precisely; ordering between
 * handshakes, which are at least 20 ms apart, is kept.
 */
export function whiten(stamp: Uint8Array): Uint8Array {
  requireStamp(stamp);
  const out = Uint8Array.from(stamp);
  const view = new DataView(out.buffer);
  view.setUint32(8, (view.getUint32(8) & ~WHITENER_MASK) >>> 0);
  return out;
}

/** The whitened timestamp of `ms`: what a handshake initiation should carry. */
export function whitenedFromMillis(ms: number): Uint8Array {
  return whiten(fromMillis(ms));
}

/** Milliseconds since the Unix epoch (nanoseconds truncated), for logs and tests. */
export function toMillis(stamp: Uint8Array): number {
  requireStamp(stamp);
  const view = new DataView(stamp.buffer, stamp.byteOffset, stamp.byteLength);
  const seconds = Number(view.getBigUint64(0) - TAI64_BASE);
  return seconds * 1000 + Math.floor(view.getUint32(8) / 1_000_000);
}

/** Byte-wise order of two timestamps: negative, zero or positive as `a` is earlier, equal or later. */
export function compare(a: Uint8Array, b: Uint8Array): number {
  requireStamp(a);
  requireStamp(b);
  for (let i = 0; i < TAI64N_LENGTH; i++) {
    if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  }
  return 0;
}

/** True when `a` is strictly later than `b`. */
export function after(a: Uint8Array, b: Uint8Array): boolean {
  return compare(a, b) > 0;
}

function requireStamp(stamp: Uint8Array): void {
  if (!(stamp instanceof Uint8Array) || stamp.length !== TAI64N_LENGTH) {
    throw new RangeError(`a TAI64N timestamp is ${TAI64N_LENGTH} bytes`);
  }
}
