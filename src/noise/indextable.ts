/**
 * Receiver indices: each handshake and keypair a device takes part in gets a random 32-bit index,
 * unique within the device, that the peer puts in front of every message addressed to it. Random
 * (not sequential) so that indices reveal nothing about how many sessions a device has had.
 */
import { cryptoRandom, type RandomBytes } from "./cookie.js";

export class IndexTable<T> {
  private readonly entries = new Map<number, T>();

  constructor(private readonly random: RandomBytes = cryptoRandom) {}

  get size(): number {
    return this.entries.size;
  }

  /** Registers `value` under a fresh non-zero index that is not in use, and returns the index. */
  allocate(value: T): number {
    for (;;) {
      const b = this.random(4);
      const index = (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0;
      if (index !== 0 && !this.entries.has(index)) {
        this.entries.set(index, value);
        return index;
      }
    }
  }

  get(index: number): T | undefined {
    return this.entries.get(index);
  }

  /** Points an index that is in use at a new value (a handshake's index passing to its keypair). */
  replace(index: number, value: T): void {
    if (!this.entries.has(index)) throw new Error(`index ${index} is not allocated`);
    this.entries.set(index, value);
  }

  /** Frees an index; freeing 0 or an unknown index does nothing. */
  delete(index: number): void {
    this.entries.delete(index);
  }

  clear(): void {
    this.entries.clear();
  }
}
