/**
 * Replay protection for one sender's envelopes. Every envelope carries a counter made of a
 * timestamp (ms since the epoch) and a sequence number that together only grow at the sender.
 *
 * Signaling backends may reorder messages a little (a hub with several routes, a client that
 * reconnects), and dropping a reordered ICE candidate would hurt, so instead of demanding strictly
 * increasing counters this accepts any counter not seen before whose timestamp is within
 * `windowMs` of the newest accepted one. Older counters, and repeats, are replays.
 *
 * Memory is bounded: at most `maxEntries` counters are remembered; when that many arrive within
 * one window the oldest are forgotten and everything up to them is refused from then on.
 */

export interface Counter {
  /** Milliseconds since the Unix epoch at the sender (48 bits on the wire). */
  timestampMs: number;
  /** Distinguishes envelopes sealed within the same millisecond (16 bits on the wire). */
  sequence: number;
}

export function compareCounters(a: Counter, b: Counter): number {
  return a.timestampMs !== b.timestampMs ? a.timestampMs - b.timestampMs : a.sequence - b.sequence;
}

const keyOf = (c: Counter): string => `${c.timestampMs}:${c.sequence}`;

export class ReplayWindow {
  private newest: Counter | null = null;
  /** Everything at or below this counter is refused (set when entries are evicted for space). */
  private evictedUpTo: Counter | null = null;
  private readonly seen = new Map<string, Counter>();

  constructor(
    readonly windowMs: number,
    readonly maxEntries = 256,
  ) {
    if (!(windowMs >= 0)) throw new RangeError("windowMs must be >= 0");
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new RangeError("maxEntries must be a positive integer");
  }

  /** Whether `c` would be accepted now; changes nothing. */
  check(c: Counter): boolean {
    if (this.evictedUpTo !== null && compareCounters(c, this.evictedUpTo) <= 0) return false;
    if (this.newest !== null && c.timestampMs < this.newest.timestampMs - this.windowMs) return false;
    return !this.seen.has(keyOf(c));
  }

  /** Accepts and records `c` if {@link check} allows it; returns whether it did. */
  accept(c: Counter): boolean {
    if (!this.check(c)) return false;
    const copy = { timestampMs: c.timestampMs, sequence: c.sequence };
    this.seen.set(keyOf(copy), copy);
    if (this.newest === null || compareCounters(copy, this.newest) > 0) this.newest = copy;
    this.prune();
    return true;
  }

  /** Counters currently remembered (for tests and stats). */
  get size(): number {
    return this.seen.size;
  }

  private prune(): void {
    const newest = this.newest;
    if (newest === null) return;
    const oldestAllowed = newest.timestampMs - this.windowMs;
    // Entries older than the window are refused by the time rule anyway; no need to keep them.
    for (const [k, c] of this.seen) if (c.timestampMs < oldestAllowed) this.seen.delete(k);
    if (this.seen.size <= this.maxEntries) return;
    const sorted = [...this.seen.values()].sort(compareCounters);
    const excess = sorted.slice(0, sorted.length - this.maxEntries);
    for (const c of excess) this.seen.delete(keyOf(c));
    const last = excess[excess.length - 1]!;
    if (this.evictedUpTo === null || compareCounters(last, this.evictedUpTo) > 0) this.evictedUpTo = last;
  }
}
