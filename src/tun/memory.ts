/**
 * An in-memory Tun for tests and for running a device without root.
 *
 * The device side is the `Tun` interface. The other side, `tun.host`, plays the kernel:
 * `host.inject()` delivers packets that the device will `read()`, and `host.read()` returns
 * the packets the device wrote. Packets are copied both ways, as a real TUN copies them
 * through read(2) and write(2). Like a real TUN, writes of packets that are not IPv4/IPv6
 * and any traffic while the link is down are dropped and counted, and both directions have
 * a bounded queue whose overflow is dropped and counted.
 */
import { EventEmitter } from "node:events";
import type { Tun } from "./tun.js";

export interface MemoryTunOptions {
  /** Default "mem0". */
  name?: string;
  /** Default 1420. */
  mtu?: number;
  /** Most packets per `read()`; default 128. */
  batchSize?: number;
  /** Packets each direction may hold before dropping; default 4096. */
  queueLimit?: number;
  /** Whether the link starts up; default true. */
  up?: boolean;
}

export interface MemoryTunStats {
  /** Packets `host.inject()` accepted / dropped (queue full, link down, closed). */
  injected: number;
  injectDropped: number;
  /** Packets the device wrote and the host side queued / dropped (not IP, link down, queue full, closed). */
  written: number;
  writeDropped: number;
}

type Waiter = (packets: Uint8Array[] | null) => void;

/** A bounded packet queue with readers waiting for batches. */
class PacketQueue {
  readonly #packets: Uint8Array[] = [];
  readonly #waiters: Array<{ max: number; resolve: Waiter }> = [];
  #closed = false;

  constructor(readonly limit: number) {}

  get length(): number {
    return this.#packets.length;
  }

  /** Returns false when the queue is full or closed. */
  push(packet: Uint8Array): boolean {
    if (this.#closed || this.#packets.length >= this.limit) return false;
    this.#packets.push(packet);
    return true;
  }

  /** Hands queued packets to waiting readers; call after a run of push(). */
  flush(): void {
    while (this.#waiters.length > 0 && this.#packets.length > 0) {
      const waiter = this.#waiters.shift() as { max: number; resolve: Waiter };
      waiter.resolve(this.#packets.splice(0, waiter.max));
    }
  }

  take(max: number): Uint8Array[] {
    return this.#packets.splice(0, max);
  }

  /** Up to `max` packets once some are there; null once closed and empty. */
  read(max: number): Promise<Uint8Array[] | null> {
    if (this.#packets.length > 0) return Promise.resolve(this.#packets.splice(0, max));
    if (this.#closed) return Promise.resolve(null);
    return new Promise((resolve) => this.#waiters.push({ max, resolve }));
  }

  /** Ends waiting reads; `discard` also drops what is queued. */
  close(discard: boolean): void {
    this.#closed = true;
    if (discard) this.#packets.length = 0;
    for (const waiter of this.#waiters.splice(0)) waiter.resolve(null);
  }
}

/** The kernel's side of a MemoryTun. */
export interface MemoryTunHost {
  /** Queues packets for the device's `read()`; returns how many were accepted. */
  inject(packets: readonly Uint8Array[]): number;
  /** Packets the device wrote, up to `max` at a time; null once the device is closed and all were read. */
  read(max?: number): Promise<Uint8Array[] | null>;
  /** Packets the device wrote that are queued right now, without waiting. */
  drain(max?: number): Uint8Array[];
  /** Changes the link state; emits "up" or "down" when it changed. */
  setUp(up: boolean): void;
  /** Changes the MTU; emits "mtu" when it changed. */
  setMtu(mtu: number): void;
}

export class MemoryTun implements Tun {
  readonly name: string;
  readonly events = new EventEmitter();
  readonly host: MemoryTunHost;
  #mtu: number;
  #up: boolean;
  #closed = false;
  readonly #batchSize: number;
  readonly #toDevice: PacketQueue;
  readonly #toHost: PacketQueue;
  readonly #stats: MemoryTunStats = { injected: 0, injectDropped: 0, written: 0, writeDropped: 0 };

  constructor(opts: MemoryTunOptions = {}) {
    this.name = opts.name ?? "mem0";
    this.#mtu = checkedMtu(opts.mtu ?? 1420);
    this.#batchSize = positiveInteger("batchSize", opts.batchSize ?? 128);
    const limit = positiveInteger("queueLimit", opts.queueLimit ?? 4096);
    this.#toDevice = new PacketQueue(limit);
    this.#toHost = new PacketQueue(limit);
    this.#up = opts.up ?? true;
    this.host = {
      inject: (packets) => this.#inject(packets),
      read: (max = Number.MAX_SAFE_INTEGER) => this.#toHost.read(positiveInteger("max", max)),
      drain: (max = Number.MAX_SAFE_INTEGER) => this.#toHost.take(positiveInteger("max", max)),
      setUp: (up) => this.#setUp(up),
      setMtu: (mtu) => this.#setMtu(mtu),
    };
    // Reported once, after listeners attached right after construction, as LinuxTun does.
    setImmediate(() => {
      if (!this.#closed) this.events.emit(this.#up ? "up" : "down");
    });
  }

  mtu(): number {
    return this.#mtu;
  }

  batchSize(): number {
    return this.#batchSize;
  }

  isUp(): boolean {
    return this.#up;
  }

  stats(): MemoryTunStats {
    return { ...this.#stats };
  }

  read(): Promise<Uint8Array[] | null> {
    if (this.#closed) return Promise.resolve(null);
    return this.#toDevice.read(this.#batchSize);
  }

  write(packets: Uint8Array[]): Promise<void> {
    for (const packet of packets) {
      if (this.#closed || !this.#up || !isIpPacket(packet) || !this.#toHost.push(packet.slice())) {
        this.#stats.writeDropped++;
      } else {
        this.#stats.written++;
      }
    }
    this.#toHost.flush();
    return Promise.resolve();
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    this.#toDevice.close(true);
    // The host may still collect what the device wrote before closing.
    this.#toHost.close(false);
    return Promise.resolve();
  }

  #inject(packets: readonly Uint8Array[]): number {
    let accepted = 0;
    for (const packet of packets) {
      if (!this.#closed && this.#up && this.#toDevice.push(Uint8Array.from(packet))) {
        accepted++;
      }
    }
    this.#stats.injected += accepted;
    this.#stats.injectDropped += packets.length - accepted;
    this.#toDevice.flush();
    return accepted;
  }

  #setUp(up: boolean): void {
    if (this.#closed || up === this.#up) return;
    this.#up = up;
    this.events.emit(up ? "up" : "down");
  }

  #setMtu(mtu: number): void {
    checkedMtu(mtu);
    if (this.#closed || mtu === this.#mtu) return;
    this.#mtu = mtu;
    this.events.emit("mtu", mtu);
  }
}

/** A TUN with IFF_NO_PI takes the protocol from the version nibble and refuses anything else. */
function isIpPacket(packet: Uint8Array): boolean {
  if (!(packet instanceof Uint8Array) || packet.length === 0) return false;
  const version = packet[0] >> 4;
  return version === 4 || version === 6;
}

function checkedMtu(mtu: number): number {
  if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) {
    throw new RangeError(`invalid MTU ${mtu}: must be an integer in 68..65535`);
  }
  return mtu;
}

function positiveInteger(what: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`${what} must be a positive integer, got ${value}`);
  }
  return value;
}
