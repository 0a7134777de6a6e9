/**
 * A bounded queue shared fairly among sources: each source (an IP address) has its own FIFO of
 * at most `perSource` items, and items are taken round-robin over the sources that have any.
 * One address sending as fast as it can then holds at most `perSource` places and gets one
 * turn in each round, so it cannot keep another address's messages out or behind it.
 */
export class FairLane<T> {
  private readonly bySource = new Map<string, T[]>();
  /** Sources with queued items, in turn order (a ring; never more than `capacity` of them). */
  private readonly turns: (string | undefined)[];
  private turnHead = 0;
  private turnCount = 0;
  private count = 0;

  constructor(
    readonly capacity: number,
    readonly perSource: number,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`lane capacity must be a positive integer, got ${capacity}`);
    if (!Number.isInteger(perSource) || perSource < 1) throw new RangeError(`per-source share must be a positive integer, got ${perSource}`);
    this.turns = new Array<string | undefined>(capacity);
  }

  get length(): number {
    return this.count;
  }

  /** True when an item from `source` would be taken now (checked before costly work on it). */
  hasRoom(source: string): boolean {
    return this.count < this.capacity && (this.bySource.get(source)?.length ?? 0) < this.perSource;
  }

  /** Adds an item; false when the lane or the source's share is full. */
  push(source: string, item: T): boolean {
    if (this.count >= this.capacity) return false;
    const q = this.bySource.get(source);
    if (q === undefined) {
      this.bySource.set(source, [item]);
      this.turns[(this.turnHead + this.turnCount) % this.capacity] = source;
      this.turnCount++;
    } else {
      if (q.length >= this.perSource) return false;
      q.push(item);
    }
    this.count++;
    return true;
  }

  /** The next item in round-robin order over the sources, or undefined when empty. */
  shift(): T | undefined {
    if (this.turnCount === 0) return undefined;
    const source = this.turns[this.turnHead]!;
    this.turns[this.turnHead] = undefined;
    this.turnHead = (this.turnHead + 1) % this.capacity;
    this.turnCount--;
    const q = this.bySource.get(source)!;
    const item = q.shift()!;
    this.count--;
    if (q.length === 0) {
      this.bySource.delete(source);
    } else {
      // Back to the end of the round.
      this.turns[(this.turnHead + this.turnCount) % this.capacity] = source;
      this.turnCount++;
    }
    return item;
  }

  clear(): void {
    this.bySource.clear();
    this.turns.fill(undefined);
    this.turnHead = this.turnCount = this.count = 0;
  }
}
