/**
 * A bounded FIFO between a socket's 'message' events (push) and a Bind's pull-based receive
 * function. When full, new datagrams are dropped and counted: UDP may lose packets, and a
 * consumer that falls behind must not make memory grow without bound.
 *
 * A waiting receiver is woken once per turn of the event loop (setImmediate), with everything
 * that arrived in that turn: node:dgram emits one event per datagram, and handing each over
 * alone would make every batch a batch of one.
 */
export class ReceiveQueue<T> {
  private readonly ring: (T | undefined)[];
  private head = 0;
  private count = 0;
  private waiters: Array<(batch: T[] | null) => void> = [];
  private closedFlag = false;
  private flushScheduled = false;
  /** Items refused because the queue was full. */
  dropped = 0;
  /** Items accepted. */
  accepted = 0;

  constructor(
    readonly capacity: number,
    readonly batchSize: number,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`queue capacity must be a positive integer, got ${capacity}`);
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batch size must be a positive integer, got ${batchSize}`);
    this.ring = new Array<T | undefined>(capacity);
  }

  get length(): number {
    return this.count;
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** Adds an item; returns false (and counts a drop) when full. Ignored after close. */
  push(item: T): boolean {
    if (this.closedFlag) return false;
    if (this.count === this.capacity) {
      this.dropped++;
      return false;
    }
    this.ring[(this.head + this.count) % this.capacity] = item;
    this.count++;
    this.accepted++;
    if (this.waiters.length > 0 && !this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
    return true;
  }

  private flush(): void {
    this.flushScheduled = false;
    while (this.waiters.length > 0 && this.count > 0) this.waiters.shift()!(this.take());
  }

  /** Resolves with 1..batchSize items, or null once closed. */
  next(): Promise<T[] | null> {
    if (this.closedFlag) return Promise.resolve(null);
    if (this.count > 0) return Promise.resolve(this.take());
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Discards queued items and resolves every pending and later {@link next} with null. */
  close(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.ring.fill(undefined);
    this.count = 0;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w(null);
  }

  private take(): T[] {
    const n = Math.min(this.count, this.batchSize);
    const out = new Array<T>(n);
    for (let i = 0; i < n; i++) {
      out[i] = this.ring[this.head] as T;
      this.ring[this.head] = undefined;
      this.head = (this.head + 1) % this.capacity;
    }
    this.count -= n;
    return out;
  }
}
