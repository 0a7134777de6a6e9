/**
 * An in-process signaling service for tests: transports made by one {@link MemoryHub} reach each
 * other directly. The hub can delay, reorder (jitter) and drop blobs, and can be taken down and
 * brought back up to exercise reconnect paths.
 */
import { keyToHex } from "../crypto/index.js";
import { SignalingClosedError, SignalingUnavailableError } from "./errors.js";
import { TransportBase } from "./transport-base.js";
import type { SignalingTransport } from "./types.js";

export interface MemoryHubOptions {
  /** Delay added to every delivery. Default 0 (still asynchronous). */
  delayMs?: number;
  /** Extra random delay in [0, jitterMs), which reorders blobs. Default 0. */
  jitterMs?: number;
  /** Probability in [0, 1] that a blob is silently lost. Default 0. */
  dropRate?: number;
  /** Source of randomness for jitter and drops; default Math.random. */
  random?: () => number;
}

export interface MemoryTransportOptions {
  /** How long open() waits for a hub that is down. Default 10000 ms. */
  connectTimeoutMs?: number;
  /** How long send() waits for a hub that is down before failing. Default 5000 ms. */
  sendWaitMs?: number;
}

export interface MemoryHubStats {
  sent: number;
  delivered: number;
  /** Lost on purpose ({@link MemoryHub.dropRate}), to nobody subscribed, or because the hub went down. */
  dropped: number;
}

const named = new Map<string, MemoryHub>();

export class MemoryHub {
  delayMs: number;
  jitterMs: number;
  dropRate: number;
  private readonly random: () => number;
  private isUp = true;
  private readonly subscribers = new Map<string, Set<MemoryTransport>>();
  private readonly members = new Set<MemoryTransport>();
  private readonly pending = new Set<NodeJS.Timeout>();
  private readonly counters: MemoryHubStats = { sent: 0, delivered: 0, dropped: 0 };

  constructor(opts: MemoryHubOptions = {}) {
    this.delayMs = opts.delayMs ?? 0;
    this.jitterMs = opts.jitterMs ?? 0;
    this.dropRate = opts.dropRate ?? 0;
    this.random = opts.random ?? Math.random;
  }

  /** The process-wide hub called `name` (created on first use), for `memory://<name>` URLs. */
  static named(name: string): MemoryHub {
    let hub = named.get(name);
    if (hub === undefined) {
      hub = new MemoryHub();
      named.set(name, hub);
    }
    return hub;
  }

  /** Forgets the named hub (tests call this to start from scratch). */
  static removeNamed(name: string): void {
    named.delete(name);
  }

  /** A new transport attached to this hub. */
  transport(opts: MemoryTransportOptions = {}): MemoryTransport {
    return new MemoryTransport(this, opts);
  }

  get up(): boolean {
    return this.isUp;
  }

  get stats(): MemoryHubStats {
    return { ...this.counters };
  }

  /** Takes the hub down: every transport disconnects, blobs in flight are lost, sends wait or fail. */
  down(): void {
    if (!this.isUp) return;
    this.isUp = false;
    for (const t of this.pending) clearTimeout(t);
    this.counters.dropped += this.pending.size;
    this.pending.clear();
    for (const m of this.members) m.hubChanged();
  }

  /** Brings the hub back: subscribed transports reconnect. */
  bringUp(): void {
    if (this.isUp) return;
    this.isUp = true;
    for (const m of this.members) m.hubChanged();
  }

  /** @internal */
  attach(t: MemoryTransport, key: string): void {
    this.members.add(t);
    let set = this.subscribers.get(key);
    if (set === undefined) {
      set = new Set();
      this.subscribers.set(key, set);
    }
    set.add(t);
  }

  /** @internal */
  detach(t: MemoryTransport, key: string | null): void {
    this.members.delete(t);
    if (key === null) return;
    const set = this.subscribers.get(key);
    set?.delete(t);
    if (set?.size === 0) this.subscribers.delete(key);
  }

  /** @internal */
  route(to: string, blob: Uint8Array): void {
    this.counters.sent++;
    if (this.dropRate > 0 && this.random() < this.dropRate) {
      this.counters.dropped++;
      return;
    }
    const copy = blob.slice();
    const delay = this.delayMs + (this.jitterMs > 0 ? this.random() * this.jitterMs : 0);
    const timer = setTimeout(() => {
      this.pending.delete(timer);
      const targets = this.subscribers.get(to);
      if (!this.isUp || targets === undefined || targets.size === 0) {
        this.counters.dropped++;
        return;
      }
      this.counters.delivered++;
      for (const t of targets) t.deliver(copy.slice());
    }, delay);
    this.pending.add(timer);
  }
}

export class MemoryTransport extends TransportBase implements SignalingTransport {
  private key: string | null = null;
  private onBlob: ((blob: Uint8Array) => void) | null = null;
  private readonly connectTimeoutMs: number;
  private readonly sendWaitMs: number;

  constructor(
    readonly hub: MemoryHub,
    opts: MemoryTransportOptions = {},
  ) {
    super();
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 10_000;
    this.sendWaitMs = opts.sendWaitMs ?? 5000;
  }

  async open(self: Uint8Array, onBlob: (blob: Uint8Array) => void): Promise<void> {
    if (this.closed) throw new SignalingClosedError();
    if (this.key !== null) throw new Error("transport is already open");
    this.key = keyToHex(self);
    this.onBlob = onBlob;
    this.hub.attach(this, this.key);
    this.hubChanged();
    if (!(await this.waitConnected(this.connectTimeoutMs))) {
      if (this.closed) throw new SignalingClosedError();
      throw new SignalingUnavailableError(`in-process hub is down (still waiting after ${this.connectTimeoutMs} ms)`);
    }
  }

  async send(to: Uint8Array, blob: Uint8Array): Promise<void> {
    if (this.closed) throw new SignalingClosedError();
    if (this.key === null) throw new Error("transport is not open");
    const hex = keyToHex(to);
    if (!(await this.waitConnected(this.sendWaitMs))) {
      if (this.closed) throw new SignalingClosedError();
      throw new SignalingUnavailableError("in-process hub is down");
    }
    this.hub.route(hex, blob);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.hub.detach(this, this.key);
    this.markClosed();
  }

  /** @internal the hub went up or down */
  hubChanged(): void {
    if (this.key !== null && !this.closed) this.setConnected(this.hub.up);
  }

  /** @internal */
  deliver(blob: Uint8Array): void {
    if (this.closed || this.onBlob === null) return;
    try {
      this.onBlob(blob);
    } catch {
      // the receiver's errors are its own
    }
  }
}
