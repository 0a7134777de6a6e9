/**
 * The stack's packet side as a `Tun`: what a WireGuard device reads from it are the packets the
 * stack sends, what the device writes into it the stack receives.
 *
 * 1. The stack queues its outbound packets natively and wakes JavaScript once per batch.
 * 2. read() takes the whole queue as one Buffer plus sizes and hands out views, batchSize at a time.
 * 3. write() passes the device's batch to the stack in one call.
 */
import { EventEmitter } from "node:events";
import type { Tun } from "../tun/tun.js";
import type { NativeStack } from "./addon.js";

export class StackPort implements Tun {
  readonly events = new EventEmitter();
  #pending: Uint8Array[] = [];
  #waiter: ((packets: Uint8Array[] | null) => void) | null = null;
  #closed = false;

  constructor(
    readonly name: string,
    private readonly native: NativeStack,
    private readonly mtuValue: number,
    private readonly batch: number,
    /** The capability a device looks for: the stack this packet side belongs to. */
    readonly stack: { close(): Promise<void> },
  ) {
    queueMicrotask(() => {
      this.events.emit("mtu", this.mtuValue);
      this.events.emit("up");
    });
  }

  mtu(): number {
    return this.mtuValue;
  }

  batchSize(): number {
    return this.batch;
  }

  /** Called when the stack says packets are waiting. */
  wake(): void {
    if (this.#closed) return;
    const got = this.native.takePackets();
    if (got !== null) {
      let off = 0;
      for (const size of got.sizes) {
        this.#pending.push(got.data.subarray(off, off + size));
        off += size;
      }
    }
    if (this.#waiter !== null && this.#pending.length > 0) {
      const w = this.#waiter;
      this.#waiter = null;
      w(this.#take());
    }
  }

  #take(): Uint8Array[] {
    if (this.#pending.length <= this.batch) {
      const all = this.#pending;
      this.#pending = [];
      return all;
    }
    return this.#pending.splice(0, this.batch);
  }

  read(): Promise<Uint8Array[] | null> {
    if (this.#pending.length > 0) return Promise.resolve(this.#take());
    if (this.#closed) return Promise.resolve(null);
    return new Promise((resolve) => (this.#waiter = resolve));
  }

  write(packets: Uint8Array[]): Promise<void> {
    if (!this.#closed && packets.length > 0) this.native.input(packets);
    return Promise.resolve();
  }

  /** Ends pending reads; the stack itself is closed by its owner. */
  detach(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#pending = [];
    const w = this.#waiter;
    this.#waiter = null;
    w?.(null);
    this.events.emit("down");
  }

  async close(): Promise<void> {
    this.detach();
    await this.stack.close();
  }
}
