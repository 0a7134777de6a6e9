/**
 * The plain UDP transport on node:dgram, dual stack in the way wireguard-go's standard Bind is:
 * one IPv4 socket and one IPv6-only socket on the same port, each with its own receive function.
 *
 * node:dgram cannot set SO_MARK, read a packet's destination address (sticky source), or batch
 * system calls (recvmmsg/sendmmsg, GSO/GRO); those belong to the native data path.
 */
import dgram from "node:dgram";
import type { Bind, Endpoint, OpenResult, Received, ReceiveFunc } from "./bind.js";
import { BindClosedError } from "./errors.js";
import { ReceiveQueue } from "./receive-queue.js";
import { UdpEndpoint } from "./udp-endpoint.js";

export interface UdpBindOptions {
  /** Most datagrams per receive batch and per `send`. Default 128. */
  batchSize?: number;
  /** Datagrams each socket may hold for its receiver before dropping. Default 1024. */
  queueCapacity?: number;
  /** Receive and send buffer size to ask for; the kernel may cap it. Default 4 MiB. */
  socketBufferBytes?: number;
  /** Local IPv4 address to bind, default "0.0.0.0". */
  address4?: string;
  /** Local IPv6 address to bind, default "::". */
  address6?: string;
  /** Open the IPv4 socket. Default true. */
  ipv4?: boolean;
  /** Open the IPv6 socket (carrying on without it when IPv6 is unavailable). Default true. */
  ipv6?: boolean;
}

export interface UdpBindStats {
  /** Datagrams queued for a receiver. */
  received: number;
  /** Datagrams dropped because a receiver's queue was full. */
  dropped: number;
  /** Datagrams handed to the kernel. */
  sent: number;
  /** Datagrams that could not be sent (unreachable network, no socket of that family, ...). */
  sendErrors: number;
  /** 'error' events of the sockets themselves. */
  socketErrors: number;
  /** The last send or socket error, for logs. */
  lastError: string | null;
}

/** Errors that mean "this address family is not available here", as opposed to a real failure. */
const FAMILY_UNAVAILABLE = new Set(["EAFNOSUPPORT", "EADDRNOTAVAIL", "EPROTONOSUPPORT"]);
/** How often a random port is tried when IPv6 finds the IPv4 socket's port taken. */
const PORT_RETRIES = 100;

interface OpenState {
  v4: dgram.Socket | null;
  v6: dgram.Socket | null;
  queues: ReceiveQueue<Received>[];
  port: number;
}

export class UdpBind implements Bind {
  readonly kind = "udp";
  private readonly batch: number;
  private readonly queueCapacity: number;
  private readonly bufferBytes: number;
  private readonly opts: UdpBindOptions;
  private state: OpenState | null = null;
  private opening = false;
  private markValue = 0;
  private readonly counters = { received: 0, dropped: 0, sent: 0, sendErrors: 0, socketErrors: 0, lastError: null as string | null };

  constructor(opts: UdpBindOptions = {}) {
    this.opts = opts;
    this.batch = opts.batchSize ?? 128;
    this.queueCapacity = opts.queueCapacity ?? 1024;
    this.bufferBytes = opts.socketBufferBytes ?? 4 << 20;
    if (!Number.isInteger(this.batch) || this.batch < 1) throw new RangeError(`batchSize must be a positive integer, got ${this.batch}`);
    if (!Number.isInteger(this.queueCapacity) || this.queueCapacity < 1) {
      throw new RangeError(`queueCapacity must be a positive integer, got ${this.queueCapacity}`);
    }
    if (opts.ipv4 === false && opts.ipv6 === false) throw new RangeError("UdpBind needs IPv4 or IPv6 enabled");
  }

  batchSize(): number {
    return this.batch;
  }

  /** The bound port while open, else null. */
  get port(): number | null {
    return this.state?.port ?? null;
  }

  /** Which families have an open socket. */
  get families(): { ipv4: boolean; ipv6: boolean } {
    return { ipv4: (this.state?.v4 ?? null) !== null, ipv6: (this.state?.v6 ?? null) !== null };
  }

  /** The mark last given to {@link setMark} (0 = none). */
  get mark(): number {
    return this.markValue;
  }

  stats(): UdpBindStats {
    let received = this.counters.received;
    let dropped = this.counters.dropped;
    for (const q of this.state?.queues ?? []) {
      received += q.accepted;
      dropped += q.dropped;
    }
    return { ...this.counters, received, dropped };
  }

  async open(port: number): Promise<OpenResult> {
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`port must be an integer from 0 to 65535, got ${port}`);
    if (this.state !== null || this.opening) throw new Error("UdpBind is already open");
    this.opening = true;
    try {
      const { v4, v6 } = await this.openSockets(port);
      const actual = (v4 ?? v6)!.address().port;
      const state: OpenState = { v4, v6, queues: [], port: actual };
      const receivers: ReceiveFunc[] = [];
      for (const sock of [v4, v6]) {
        if (sock === null) continue;
        this.tuneBuffers(sock);
        const queue = new ReceiveQueue<Received>(this.queueCapacity, this.batch);
        state.queues.push(queue);
        this.attach(sock, queue);
        receivers.push(() => queue.next());
      }
      this.state = state;
      return { receivers, port: actual };
    } finally {
      this.opening = false;
    }
  }

  async close(): Promise<void> {
    const st = this.state;
    if (st === null) return;
    this.state = null;
    for (const q of st.queues) {
      this.counters.received += q.accepted;
      this.counters.dropped += q.dropped;
      q.close();
    }
    await Promise.all([st.v4, st.v6].map((s) => (s === null ? undefined : closeSocket(s))));
  }

  /**
   * Records the firewall mark. node:dgram has no SO_MARK, so it is NOT applied to the sockets;
   * the native data path applies it. Routing that depends on the mark (wg-quick's policy routing
   * for a default route) therefore needs the native path.
   */
  async setMark(mark: number): Promise<void> {
    if (!Number.isInteger(mark) || mark < 0 || mark > 0xffffffff) throw new RangeError(`mark must be an integer from 0 to 4294967295, got ${mark}`);
    this.markValue = mark;
  }

  parseEndpoint(s: string): UdpEndpoint {
    return UdpEndpoint.parse(this, s);
  }

  /**
   * Sends each buffer as one datagram. Resolves once the kernel has taken (or refused) them
   * all, so the buffers may be reused then. Network errors are counted, not thrown; sending on
   * a closed Bind, to a non-UDP endpoint or more than batchSize() buffers rejects.
   */
  send(bufs: Uint8Array[], endpoint: Endpoint): Promise<void> {
    if (!(endpoint instanceof UdpEndpoint)) {
      return Promise.reject(new TypeError(`UdpBind can only send to a UdpEndpoint, not to ${String(endpoint?.key)}`));
    }
    if (bufs.length > this.batch) return Promise.reject(new RangeError(`send: ${bufs.length} buffers exceed the batch size ${this.batch}`));
    const st = this.state;
    if (st === null) return Promise.reject(new BindClosedError(this.kind));
    if (bufs.length === 0) return Promise.resolve();
    const sock = endpoint.family === 4 ? st.v4 : st.v6;
    if (sock === null) {
      this.counters.sendErrors += bufs.length;
      this.counters.lastError = `no IPv${endpoint.family} socket to send to ${endpoint.dstToString()}`;
      return Promise.resolve();
    }
    const address = endpoint.sendAddress();
    const port = endpoint.port;
    return new Promise<void>((resolve) => {
      let pending = bufs.length;
      const done = (err: Error | null): void => {
        if (err) {
          this.counters.sendErrors++;
          this.counters.lastError = `send to ${endpoint.dstToString()}: ${err.message}`;
        } else {
          this.counters.sent++;
        }
        if (--pending === 0) resolve();
      };
      for (const buf of bufs) {
        try {
          sock.send(buf, port, address, done);
        } catch (e) {
          // Synchronous failures: socket closed meanwhile, oversized datagram, ...
          done(e as Error);
        }
      }
    });
  }

  private async openSockets(port: number): Promise<{ v4: dgram.Socket | null; v6: dgram.Socket | null }> {
    const want4 = this.opts.ipv4 !== false;
    const want6 = this.opts.ipv6 !== false;
    const addr4 = this.opts.address4 ?? "0.0.0.0";
    const addr6 = this.opts.address6 ?? "::";
    for (let attempt = 0; ; attempt++) {
      let v4: dgram.Socket | null = null;
      if (want4) {
        try {
          v4 = await bindSocket("udp4", port, addr4);
        } catch (e) {
          if (!FAMILY_UNAVAILABLE.has(errCode(e)) || !want6) throw bindError("IPv4", addr4, port, e);
        }
      }
      if (!want6) return { v4, v6: null };
      // With port 0, IPv6 takes the port the IPv4 socket got, so both families share it.
      const port6 = v4 !== null ? v4.address().port : port;
      try {
        const v6 = await bindSocket("udp6", port6, addr6);
        return { v4, v6 };
      } catch (e) {
        const code = errCode(e);
        if (v4 !== null && FAMILY_UNAVAILABLE.has(code)) return { v4, v6: null };
        if (v4 !== null) await closeSocket(v4);
        if (code === "EADDRINUSE" && port === 0 && v4 !== null && attempt < PORT_RETRIES) continue;
        throw bindError("IPv6", addr6, port6, e);
      }
    }
  }

  private tuneBuffers(sock: dgram.Socket): void {
    // The kernel caps these at net.core.{r,w}mem_max; failing to raise them is not an error.
    try {
      sock.setRecvBufferSize(this.bufferBytes);
    } catch {
      /* keep the default */
    }
    try {
      sock.setSendBufferSize(this.bufferBytes);
    } catch {
      /* keep the default */
    }
  }

  private attach(sock: dgram.Socket, queue: ReceiveQueue<Received>): void {
    // Consecutive datagrams usually come from the same peer: reuse its endpoint object.
    let lastAddress = "";
    let lastPort = -1;
    let lastEndpoint: UdpEndpoint | null = null;
    sock.on("message", (msg: Buffer, rinfo: dgram.RemoteInfo) => {
      let ep = lastEndpoint;
      if (ep === null || rinfo.port !== lastPort || rinfo.address !== lastAddress) {
        ep = this.endpointFrom(rinfo);
        if (ep === null) return;
        lastEndpoint = ep;
        lastAddress = rinfo.address;
        lastPort = rinfo.port;
      }
      queue.push({ data: msg, endpoint: ep });
    });
    sock.on("error", (err) => {
      this.counters.socketErrors++;
      this.counters.lastError = `socket: ${err.message}`;
    });
  }

  private endpointFrom(rinfo: dgram.RemoteInfo): UdpEndpoint | null {
    const text = rinfo.family === "IPv6" ? `[${rinfo.address}]:${rinfo.port}` : `${rinfo.address}:${rinfo.port}`;
    try {
      return UdpEndpoint.parse(this, text);
    } catch {
      // Source port 0 or an address Node formats oddly: not something a peer can be reached at.
      return null;
    }
  }
}

function errCode(e: unknown): string {
  return typeof e === "object" && e !== null && "code" in e ? String((e as { code: unknown }).code) : "";
}

function bindError(family: string, address: string, port: number, cause: unknown): Error {
  const msg = cause instanceof Error ? cause.message : String(cause);
  return new Error(`UdpBind: cannot bind ${family} UDP socket to ${family === "IPv6" ? `[${address}]` : address}:${port}: ${msg}`, { cause });
}

function bindSocket(type: "udp4" | "udp6", port: number, address: string): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket({ type, ipv6Only: type === "udp6", reuseAddr: false });
    const onError = (err: Error): void => {
      try {
        sock.close();
      } catch {
        /* never bound */
      }
      reject(err);
    };
    sock.once("error", onError);
    sock.bind({ port, address, exclusive: true }, () => {
      sock.removeListener("error", onError);
      resolve(sock);
    });
  });
}

function closeSocket(sock: dgram.Socket): Promise<void> {
  return new Promise((resolve) => {
    try {
      sock.close(() => resolve());
    } catch {
      resolve(); // already closed
    }
  });
}
