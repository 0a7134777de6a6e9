/**
 * In-memory Binds joined by a {@link MemoryNetwork}, beside the in-memory TUN: a whole device,
 * handshakes, data, rekeys and roaming, runs without root or sockets (the role of wireguard-go's
 * bindtest).
 *
 * 1. Each Bind has an IP address on the network and binds a port there when opened.
 * 2. `send` copies each datagram to the Bind holding the destination address and port, where it
 *    waits in a bounded queue (overflow is dropped and counted, as a socket buffer would).
 * 3. The network's `filter` may drop or watch datagrams in flight; `moveTo` gives a Bind a new
 *    address, so its peers see it roam.
 *
 * Endpoints are {@link UdpEndpoint}s of the Bind, written "ip:port" as for UDP.
 */
import type { Bind, Endpoint, OpenResult, Received } from "./bind.js";
import { BindClosedError } from "./errors.js";
import { ReceiveQueue } from "./receive-queue.js";
import { UdpEndpoint } from "./udp-endpoint.js";

/** What the filter sees of a datagram in flight; return false to drop it. */
export interface MemoryDatagram {
  from: string;
  to: string;
  data: Uint8Array;
}

export class MemoryNetwork {
  private readonly ports = new Map<string, MemoryBind>();
  private nextPort = 40000;
  /** Return false to lose a datagram. */
  filter: (d: MemoryDatagram) => boolean = () => true;
  /** Datagrams sent to an address and port nobody holds, or refused by the filter. */
  lost = 0;

  /** A Bind with this address (IPv4 or IPv6 text) on the network. */
  bind(address: string, opts: { batchSize?: number; queueCapacity?: number } = {}): MemoryBind {
    return new MemoryBind(this, address, opts);
  }

  /** @internal */
  attach(b: MemoryBind, address: string, port: number): number {
    let p = port;
    if (p === 0) {
      do p = this.nextPort++;
      while (this.ports.has(key(address, p)));
    }
    const k = key(address, p);
    if (this.ports.has(k)) throw new Error(`MemoryBind: ${k} is in use`);
    this.ports.set(k, b);
    return p;
  }

  /** @internal */
  detach(address: string, port: number, b: MemoryBind): void {
    const k = key(address, port);
    if (this.ports.get(k) === b) this.ports.delete(k);
  }

  /** @internal */
  deliver(from: UdpEndpoint, to: UdpEndpoint, data: Uint8Array): void {
    const target = this.ports.get(key(to.address, to.port));
    if (target === undefined || !this.filter({ from: from.dstToString(), to: to.dstToString(), data })) {
      this.lost++;
      return;
    }
    target.arrive(data.slice(), from.dstToString());
  }
}

export class MemoryBind implements Bind {
  readonly kind = "memory";
  private readonly batch: number;
  private readonly capacity: number;
  private queue: ReceiveQueue<Received> | null = null;
  private boundPort = 0;
  /** Datagrams handed to the network. */
  sent = 0;

  constructor(
    private readonly net: MemoryNetwork,
    private addressValue: string,
    opts: { batchSize?: number; queueCapacity?: number } = {},
  ) {
    this.batch = opts.batchSize ?? 128;
    this.capacity = opts.queueCapacity ?? 1024;
  }

  get address(): string {
    return this.addressValue;
  }

  /** The port while open, else null. */
  get port(): number | null {
    return this.queue === null ? null : this.boundPort;
  }

  /** Datagrams dropped because the receiver fell behind. */
  get dropped(): number {
    return this.queue?.dropped ?? 0;
  }

  batchSize(): number {
    return this.batch;
  }

  async open(port: number): Promise<OpenResult> {
    if (this.queue !== null) throw new Error("MemoryBind is already open");
    this.boundPort = this.net.attach(this, this.addressValue, port);
    const q = new ReceiveQueue<Received>(this.capacity, this.batch);
    this.queue = q;
    return { receivers: [() => q.next()], port: this.boundPort };
  }

  async close(): Promise<void> {
    const q = this.queue;
    if (q === null) return;
    this.queue = null;
    this.net.detach(this.addressValue, this.boundPort, this);
    q.close();
  }

  async setMark(): Promise<void> {
    // No routing here to mark for.
  }

  parseEndpoint(s: string): UdpEndpoint {
    return UdpEndpoint.parse(this, s);
  }

  send(bufs: Uint8Array[], endpoint: Endpoint): Promise<void> {
    if (!(endpoint instanceof UdpEndpoint)) return Promise.reject(new TypeError(`MemoryBind cannot send to ${endpoint.key}`));
    if (bufs.length > this.batch) return Promise.reject(new RangeError(`send: ${bufs.length} buffers exceed the batch size ${this.batch}`));
    if (this.queue === null) return Promise.reject(new BindClosedError(this.kind));
    const self = this.self();
    for (const b of bufs) this.net.deliver(self, endpoint, b);
    this.sent += bufs.length;
    return Promise.resolve();
  }

  /** Moves to another address, keeping the port (a host that changed networks). */
  moveTo(address: string): void {
    if (this.queue !== null) {
      this.net.detach(this.addressValue, this.boundPort, this);
      this.net.attach(this, address, this.boundPort);
    }
    this.addressValue = address;
  }

  /** @internal */
  arrive(data: Uint8Array, from: string): void {
    this.queue?.push({ data, endpoint: UdpEndpoint.parse(this, from) });
  }

  private self(): UdpEndpoint {
    return UdpEndpoint.parse(this, this.addressValue.includes(":") ? `[${this.addressValue}]:${this.boundPort}` : `${this.addressValue}:${this.boundPort}`);
  }
}

function key(address: string, port: number): string {
  return `${address}|${port}`;
}
