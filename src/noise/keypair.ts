/**
 * Session keypairs and a peer's three keypair slots (whitepaper section 5.4.6 and 6.1).
 *
 * A handshake yields one keypair. The initiator may use it at once: the response proved the
 * responder has it. The responder has no such proof until data arrives under it, so its new
 * keypair waits in `next` and moves to `current` on the first packet received with it. The
 * keypair it replaces stays as `previous` so packets still in flight can be decrypted.
 */
import { wipe } from "../crypto/index.js";
import { ReplayFilter } from "../replay/index.js";

/**
 * Where a keypair's send counter lives. By default in the keypair itself; a data path that
 * seals outside JavaScript (the native one) keeps it there and substitutes a cell that reads
 * and advances its copy, so both sides draw from one sequence and never reuse a nonce.
 */
export interface SendCounter {
  /** The counter the next message will use. */
  peek(): number;
  /** Takes the counter for a message: returns it and advances. */
  take(): number;
  /** Sets the next counter (used to retire a keypair for sending by setting the limit). */
  set(value: number): void;
}

class LocalCounter implements SendCounter {
  private value = 0;
  peek(): number {
    return this.value;
  }
  take(): number {
    return this.value++;
  }
  set(value: number): void {
    this.value = value;
  }
}

export class Keypair {
  /** Where the send counter is kept; see {@link SendCounter}. */
  counter: SendCounter = new LocalCounter();
  readonly replay = new ReplayFilter();

  /** The counter of the next message sent: also its nonce. */
  get sendCounter(): number {
    return this.counter.peek();
  }

  set sendCounter(value: number) {
    this.counter.set(value);
  }

  constructor(
    readonly sendKey: Uint8Array,
    readonly receiveKey: Uint8Array,
    /** The index the peer puts on messages to us (ours, in our index table). */
    readonly localIndex: number,
    /** The index we put on messages to the peer. */
    readonly remoteIndex: number,
    /** Monotonic ms at derivation. */
    readonly created: number,
    readonly isInitiator: boolean,
  ) {}

  wipe(): void {
    wipe(this.sendKey);
    wipe(this.receiveKey);
  }
}

export class KeypairSlots {
  previous: Keypair | null = null;
  current: Keypair | null = null;
  next: Keypair | null = null;

  /**
   * Installs a freshly derived keypair and returns those that fell out, which the caller must
   * unregister and wipe.
   */
  install(keypair: Keypair): Keypair[] {
    const dropped: Keypair[] = [];
    if (keypair.isInitiator) {
      // Confirmed: it becomes current at once. An unconfirmed `next` is still newer than `current`,
      // so that one is kept as `previous` instead of the old current.
      if (this.next !== null) {
        if (this.current !== null) dropped.push(this.current);
        if (this.previous !== null) dropped.push(this.previous);
        this.previous = this.next;
        this.next = null;
      } else {
        if (this.previous !== null) dropped.push(this.previous);
        this.previous = this.current;
      }
      this.current = keypair;
    } else {
      if (this.next !== null) dropped.push(this.next);
      if (this.previous !== null) dropped.push(this.previous);
      this.previous = null;
      this.next = keypair;
    }
    return dropped;
  }

  /**
   * Records that an authenticated packet arrived under `keypair`. When that is the unconfirmed
   * `next`, it is promoted; the keypair that then drops out (old `previous`) is returned in
   * `dropped` and `promoted` is true.
   */
  received(keypair: Keypair): { promoted: boolean; dropped: Keypair | null } {
    if (keypair !== this.next) return { promoted: false, dropped: null };
    const dropped = this.previous;
    this.previous = this.current;
    this.current = keypair;
    this.next = null;
    return { promoted: true, dropped };
  }

  /** Empties all slots, returning what they held. */
  clear(): Keypair[] {
    const all = this.all();
    this.previous = this.current = this.next = null;
    return all;
  }

  all(): Keypair[] {
    const out: Keypair[] = [];
    for (const k of [this.previous, this.current, this.next]) if (k !== null) out.push(k);
    return out;
  }
}
