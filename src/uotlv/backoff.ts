/**
 * Waits between reconnection attempts: 1, 2, 4, 8, then 10 s for ever, back to the start after
 * a connection that lived long enough to count as working. Pure: the caller measures time.
 */
import { RECONNECT_DELAYS_MS, RECONNECT_RESET_AFTER_MS } from "./constants.js";

export class Backoff {
  private failures = 0;

  constructor(
    private readonly delaysMs: readonly number[] = RECONNECT_DELAYS_MS,
    private readonly resetAfterMs: number = RECONNECT_RESET_AFTER_MS,
  ) {
    if (delaysMs.length === 0 || delaysMs.some((d) => !(d >= 0))) throw new RangeError("back-off needs at least one non-negative delay");
  }

  /**
   * The wait before the next attempt, given how long the last attempt lived (from the start of
   * connecting until it failed or the connection ended).
   */
  next(livedMs: number): number {
    if (livedMs > this.resetAfterMs) this.failures = 0;
    const delay = this.delaysMs[Math.min(this.failures, this.delaysMs.length - 1)]!;
    this.failures++;
    return delay;
  }

  /** Starts over at the first delay. */
  reset(): void {
    this.failures = 0;
  }
}
