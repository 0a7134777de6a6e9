/**
 * A token bucket per source address, applied to handshake messages while the device is under load
 * (after the cookie check, so sources are not spoofed). The figures are wireguard-go's: 20 packets
 * per second per source, bursts of 5, idle entries dropped after about a second.
 *
 * Time comes from an injected clock and no timer is started: garbage collection runs inside
 * {@link RateLimiter.allow} once a second has passed since the last sweep, so an idle limiter
 * costs nothing and tests control time completely.
 */

/** A source of monotonic time in milliseconds. */
export interface Clock {
  now(): number;
}

export interface RateLimiterOptions {
  /** Sustained packets per second per source (default 20). */
  packetsPerSecond?: number;
  /** Packets a source may send at once after being quiet (default 5). */
  burst?: number;
  /** Entries idle for longer than this are dropped, and sweeps run this often (default 1000 ms). */
  gcIntervalMs?: number;
  /**
   * Most sources tracked at once (default 65536). When the table is full even after a sweep, new
   * sources are refused until entries expire, rather than evicting others (which would let a
   * crowd of sources reset everyone's buckets).
   */
  maxEntries?: number;
}

interface Bucket {
  /** Accumulated allowance, in milliseconds of credit. */
  tokens: number;
  lastTime: number;
}

export const DEFAULT_PACKETS_PER_SECOND = 20;
export const DEFAULT_BURST = 5;
export const DEFAULT_GC_INTERVAL_MS = 1000;
export const DEFAULT_MAX_ENTRIES = 65536;

export class RateLimiter {
  private readonly table = new Map<string, Bucket>();
  private readonly packetCost: number;
  private readonly maxTokens: number;
  private readonly gcIntervalMs: number;
  private readonly maxEntries: number;
  private lastSweep: number;

  constructor(
    private readonly clock: Clock,
    options: RateLimiterOptions = {},
  ) {
    const pps = options.packetsPerSecond ?? DEFAULT_PACKETS_PER_SECOND;
    const burst = options.burst ?? DEFAULT_BURST;
    this.gcIntervalMs = options.gcIntervalMs ?? DEFAULT_GC_INTERVAL_MS;
    this.maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
    if (!(pps > 0) || !Number.isFinite(pps)) throw new RangeError("packetsPerSecond must be a positive number");
    if (!Number.isInteger(burst) || burst < 1) throw new RangeError("burst must be a positive integer");
    if (!(this.gcIntervalMs > 0)) throw new RangeError("gcIntervalMs must be positive");
    if (!Number.isInteger(this.maxEntries) || this.maxEntries < 1) {
      throw new RangeError("maxEntries must be a positive integer");
    }
    this.packetCost = 1000 / pps;
    this.maxTokens = this.packetCost * burst;
    this.lastSweep = clock.now();
  }

  /** Number of sources currently tracked. */
  get size(): number {
    return this.table.size;
  }

  /** Whether a packet from `source` (an address string) may be processed now; spends a token if so. */
  allow(source: string): boolean {
    const now = this.clock.now();
    if (now - this.lastSweep >= this.gcIntervalMs) this.sweep(now);

    const bucket = this.table.get(source);
    if (bucket === undefined) {
      if (this.table.size >= this.maxEntries) {
        this.sweep(now);
        if (this.table.size >= this.maxEntries) return false;
      }
      // A new source starts with a full bucket and spends one packet's worth at once.
      this.table.set(source, { tokens: this.maxTokens - this.packetCost, lastTime: now });
      return true;
    }

    // A clock that steps backwards earns no credit rather than negative credit.
    const elapsed = Math.max(0, now - bucket.lastTime);
    bucket.tokens = Math.min(this.maxTokens, bucket.tokens + elapsed);
    bucket.lastTime = now;
    // Comparing with a small tolerance keeps float rounding (e.g. 1000/3 ms per packet) from
    // denying a packet whose full cost has in fact been earned.
    if (bucket.tokens + 1e-9 >= this.packetCost) {
      bucket.tokens = Math.max(0, bucket.tokens - this.packetCost);
      return true;
    }
    return false;
  }

  /** Forgets every source. */
  reset(): void {
    this.table.clear();
    this.lastSweep = this.clock.now();
  }

  private sweep(now: number): void {
    for (const [source, bucket] of this.table) {
      if (now - bucket.lastTime > this.gcIntervalMs) this.table.delete(source);
    }
    this.lastSweep = now;
  }
}
