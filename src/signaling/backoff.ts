/**
 * Reconnect delays: exponential from a minimum to a maximum, with "equal jitter" (half the delay
 * fixed, half random) so that many clients cut off by the same outage do not return in lock-step.
 */

export interface BackoffOptions {
  /** Delay before the first retry, before jitter. Default 1000 ms. */
  minMs?: number;
  /** Upper bound before jitter. Default 30000 ms. */
  maxMs?: number;
  /** Source of randomness in [0, 1); default Math.random. */
  random?: () => number;
}

export const DEFAULT_MIN_BACKOFF_MS = 1000;
export const DEFAULT_MAX_BACKOFF_MS = 30_000;

/** Delay before retry number `attempt` (0 for the first retry after a failure). */
export function backoffDelay(attempt: number, opts: BackoffOptions = {}): number {
  const min = opts.minMs ?? DEFAULT_MIN_BACKOFF_MS;
  const max = Math.max(opts.maxMs ?? DEFAULT_MAX_BACKOFF_MS, min);
  const random = opts.random ?? Math.random;
  // 2^attempt overflows to Infinity long before it matters; the cap handles that.
  const base = Math.min(max, min * 2 ** Math.max(0, Math.floor(attempt)));
  const r = Math.min(Math.max(random(), 0), 1);
  return Math.round(base / 2 + (base / 2) * r);
}
