import { FairLane } from "./fair-lane.js";

/**
 * A bounded FIFO between a socket's 'message' events (push) and a Bind's pull-based receive
 * function. When full, new datagrams are dropped and counted: UDP may lose packets, and a
 * consumer that falls behind must not make memory grow without bound.
 *
 * A waiting receiver is woken once per turn of the event loop (setImmediate), with everything
 * that arrived in that turn: node:dgram emits one event per datagram, and handing each over
 * alone would make every batch a batch of one.
 *
 * Handshake messages may be queued apart (see {@link pushHandshake}), in two lanes shared fairly
 * among source addresses: one for messages whose mac2 proved the sender's address (taken
 * first), one for the rest. Batches interleave them with the plain FIFO: a flood of handshake
 * messages cannot keep transport data out, nor a flood of anything from one address the
 * handshakes of another.
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
  /** Handshake messages whose mac2 was valid (the protected lane). */
  private readonly proven: FairLane<T>;
  /** Other handshake messages. */
  private readonly handshakes: FairLane<T>;
  /** Alternates the plain FIFO and the handshake lane within a batch. */
  private plainTurn = false;

  constructor(
    readonly capacity: number,
    readonly batchSize: number,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`queue capacity must be a positive integer, got ${capacity}`);
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batch size must be a positive integer, got ${batchSize}`);
    this.ring = new Array<T | undefined>(capacity);
    // An address gets 1/32 of a lane: a single source fills at most that, 32 fill it all.
    const perSource = Math.max(1, Math.floor(capacity / 32));
    this.handshakes = new FairLane<T>(capacity, perSource);
    this.proven = new FairLane<T>(Math.max(1, Math.floor(capacity / 4)), perSource);
  }

  get length(): number {
    return this.count + this.handshakes.length + this.proven.length;
  }

  /** True when a handshake message from `source` would be taken into its lane now. */
  hasHandshakeRoom(source: string, proven: boolean): boolean {
    return !this.closedFlag && (proven ? this.proven : this.handshakes).hasRoom(source);
  }

  /**
   * Adds a handshake message from `source` (an address) to the protected lane (`proven`: its
   * mac2 was valid) or the plain handshake lane; false (a counted drop) when the source's share
   * or the lane is full. Ignored after close.
   */
  pushHandshake(item: T, source: string, proven: boolean): boolean {
    if (this.closedFlag) return false;
    if (!(proven ? this.proven : this.handshakes).push(source, item)) {
      this.dropped++;
      return false;
    }
    this.accepted++;
    this.wake();
    return true;
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
    this.wake();
    return true;
  }

  private wake(): void {
    if (this.waiters.length > 0 && !this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    while (this.waiters.length > 0 && this.length > 0) this.waiters.shift()!(this.take());
  }

  /** Resolves with 1..batchSize items, or null once closed. */
  next(): Promise<T[] | null> {
    if (this.closedFlag) return Promise.resolve(null);
    if (this.length > 0) return Promise.resolve(this.take());
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Discards queued items and resolves every pending and later {@link next} with null. */
  close(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.ring.fill(undefined);
    this.count = 0;
    this.handshakes.clear();
    this.proven.clear();
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w(null);
  }

  private take(): T[] {
    const n = Math.min(this.length, this.batchSize);
    const out = new Array<T>(n);
    let i = 0;
    while (i < n && this.proven.length > 0) out[i++] = this.proven.shift()!;
    while (i < n) {
      this.plainTurn = !this.plainTurn;
      if ((this.plainTurn || this.handshakes.length === 0) && this.count > 0) {
        out[i++] = this.ring[this.head] as T;
        this.ring[this.head] = undefined;
        this.head = (this.head + 1) % this.capacity;
        this.count--;
      } else {
        out[i++] = this.handshakes.shift()!;
      }
    }
    return out;
  }
}
