/**
 * The plain UDP transport, dual stack in the way wireguard-go's standard Bind is: one IPv4
 * socket and one IPv6-only socket on the same port, each with its own receive function.
 *
 * Two implementations behind one class:
 * - native sockets from the addon (the default where it loads): a receive thread with
 *   recvmmsg and UDP GRO, sendmmsg, UDP GSO, 7 MiB buffers and SO_MARK. The native data path
 *   attaches to these sockets and takes the transport messages it can deal with before they
 *   reach the receive functions.
 * - node:dgram (the portable data plane, `sockets: "dgram"`, or without the addon). SO_MARK is
 *   still applied, through the addon, on the sockets' descriptors.
 *
 * The socket is shared with ICE (a {@link SocketSharingBind}): what is STUN or TURN ChannelData
 * goes to the packet listeners instead of the receive functions, and a source mapper lets ICE
 * claim the addresses of its selected pairs, so their WireGuard datagrams arrive with the ICE
 * endpoint of their peer.
 *
 * Handshake messages are screened as they are queued (a {@link HandshakeScreeningBind}, fed
 * with the device's MAC checks):
 * 1. a datagram of a handshake message's type and size from source address A;
 * 2. without a mac2: over A's rate (a token bucket per address), or no room left for A in the
 *    handshake lane: dropped before any MAC is computed, so a flood from one address costs
 *    little more than its reading;
 * 3. bad mac1: dropped and counted (it was not meant for this device);
 * 4. valid mac2 (A proved it receives at its address): the protected lane, taken first, within
 *    a rate of its own per address (spoofed messages cannot spend it);
 * 5. else the handshake lane, shared round-robin by source address.
 */
import dgram from "node:dgram";
import { formatIp } from "../allowedips/ip.js";
import { loadNative } from "../native/load.js";
import { RateLimiter } from "../ratelimiter/index.js";
import type { DataPathPreference } from "../native/mode.js";
import { NATIVE_ADDRESS_SIZE, type NativeUdp } from "../native/udp.js";
import { isIceTraffic } from "../stun/classify.js";
import type { PacketListener } from "../stun/packet-socket.js";
import type { Endpoint, OpenResult, Received, ReceiveFunc } from "./bind.js";
import type { HandshakeScreen, HandshakeScreeningBind, SocketSharingBind, SourceMapper } from "./capabilities.js";
import { BindClosedError } from "./errors.js";
import { ReceiveQueue } from "./receive-queue.js";
import { UdpEndpoint } from "./udp-endpoint.js";

export interface UdpBindOptions {
  /** Most datagrams per receive batch and per `send`. Default 128. */
  batchSize?: number;
  /** Datagrams each socket may hold for its receiver before dropping. Default 1024. */
  queueCapacity?: number;
  /** Receive and send buffer size to ask for; the kernel may cap it. Default 7 MiB (native), 4 MiB (dgram). */
  socketBufferBytes?: number;
  /** Local IPv4 address to bind, default "0.0.0.0". */
  address4?: string;
  /** Local IPv6 address to bind, default "::". */
  address6?: string;
  /** Open the IPv4 socket. Default true. */
  ipv4?: boolean;
  /** Open the IPv6 socket (carrying on without it when IPv6 is unavailable). Default true. */
  ipv6?: boolean;
  /**
   * "native": the addon's sockets (an error if it is missing); "dgram": node:dgram; "auto"
   * (default): native where the addon provides them, unless the device runs the portable plane.
   */
  sockets?: "auto" | "native" | "dgram";
}

export interface UdpBindStats {
  /** Datagrams queued for a receiver. */
  received: number;
  /** Datagrams dropped because a receiver's queue (or, for handshake messages, its source's share) was full. */
  dropped: number;
  /** Handshake messages dropped at queueing for a bad mac1. */
  badMac1: number;
  /** Handshake messages queued in the protected lane (valid mac2). */
  provenHandshakes: number;
  /** Handshake messages dropped at queueing because their source address exceeded its rate. */
  handshakesOverRate: number;
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
/** Native batches handed to JavaScript and not yet taken; they are taken at once, so few suffice. */
const NATIVE_MAX_PENDING = 16;
/** Handshake framing (message type, total size) and the MAC size, as the protocol defines them. */
const INITIATION = { type: 1, size: 148 };
const RESPONSE = { type: 2, size: 92 };
const MAC_SIZE = 16;
/**
 * Handshake messages per second (and burst) one address may have queued, each lane apart: far
 * above what the peers behind one address need (a handshake per peer every two minutes), far
 * below what a flood sends. Beyond this many addresses tracked, fairness rests on the lanes.
 */
const HANDSHAKES_PER_ADDRESS = { packetsPerSecond: 1000, burst: 256 };
const TRACKED_ADDRESSES = 65536;

interface OpenState {
  v4: dgram.Socket | null;
  v6: dgram.Socket | null;
  native: NativeUdp | null;
  /** Receive queues by family (absent family: null). */
  queue4: ReceiveQueue<Received> | null;
  queue6: ReceiveQueue<Received> | null;
  port: number;
}

export class UdpBind implements SocketSharingBind, HandshakeScreeningBind {
  readonly kind = "udp";
  private readonly batch: number;
  private readonly queueCapacity: number;
  private readonly opts: UdpBindOptions;
  private state: OpenState | null = null;
  private opening = false;
  private markValue = 0;
  private readonly counters = {
    received: 0,
    dropped: 0,
    badMac1: 0,
    provenHandshakes: 0,
    handshakesOverRate: 0,
    sent: 0,
    sendErrors: 0,
    socketErrors: 0,
    lastError: null as string | null,
  };
  private screen: HandshakeScreen | null = null;
  private readonly handshakeRate = newHandshakeLimiter();
  private readonly provenRate = newHandshakeLimiter();
  private readonly packetListeners = new Set<PacketListener>();
  private sourceMapper: SourceMapper | null = null;
  private plane: DataPathPreference = "auto";
  /** Bumped when a source may map differently now: receive paths drop their cached endpoint. */
  private mapping = 0;

  constructor(opts: UdpBindOptions = {}) {
    this.opts = opts;
    this.batch = opts.batchSize ?? 128;
    this.queueCapacity = opts.queueCapacity ?? 1024;
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
    return { ipv4: (this.state?.queue4 ?? null) !== null, ipv6: (this.state?.queue6 ?? null) !== null };
  }

  /** The mark last given to {@link setMark} (0 = none). */
  get mark(): number {
    return this.markValue;
  }

  /** "native" or "dgram" while open (which sockets are in use), else null. */
  get implementation(): "native" | "dgram" | null {
    const st = this.state;
    return st === null ? null : st.native !== null ? "native" : "dgram";
  }

  /**
   * The data plane the device runs: with "portable", sockets chosen "auto" are node:dgram ones
   * (from the next open on).
   */
  useDataPlane(plane: DataPathPreference): void {
    this.plane = plane;
  }

  // ---- the shared socket (PacketSocket) -------------------------------------------------------

  get localPort(): number | null {
    return this.port;
  }

  reachableFamilies(): { ipv4: boolean; ipv6: boolean } {
    return this.families;
  }

  onPacket(listener: PacketListener): () => void {
    this.packetListeners.add(listener);
    return () => this.packetListeners.delete(listener);
  }

  setSourceMapper(mapper: SourceMapper | null): void {
    this.sourceMapper = mapper;
    this.mapping++;
  }

  /** A TURN server's address reached through one of its channels (see {@link UdpEndpoint.channel}). */
  channelEndpoint(address: string, port: number, channel: number): UdpEndpoint {
    return UdpEndpoint.parse(this, address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`).withChannel(channel);
  }

  /** A path MTU confirmed by a prober: the native sender's own table takes it too. */
  probedPathMtu(endpoint: Endpoint, mtu: number): void {
    const native = this.state?.native ?? null;
    if (native === null || !(endpoint instanceof UdpEndpoint) || endpoint.bind !== this) return;
    native.setPathMtu?.(endpoint.family, endpoint.addressBytes(), endpoint.port, endpoint.zone, mtu);
  }

  /** Sends one datagram for a sharer of the socket; failures are counted like any other send. */
  sendPacket(data: Uint8Array, address: string, port: number): void {
    let ep: UdpEndpoint;
    try {
      ep = UdpEndpoint.parse(this, address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`);
    } catch {
      this.counters.sendErrors++;
      this.counters.lastError = `unusable destination ${address}:${port}`;
      return;
    }
    if (this.state === null) return;
    void this.send([data], ep);
  }

  /** Hands STUN and ChannelData to the sharers; true when the datagram was theirs. */
  private sharedPacket(data: Uint8Array, ep: UdpEndpoint): boolean {
    if (!isIceTraffic(data)) return false;
    // What ICE learns from this datagram may change how its source maps.
    this.mapping++;
    for (const l of this.packetListeners) {
      try {
        l(data, ep.address, ep.port);
      } catch {
        this.counters.socketErrors++;
      }
    }
    return true;
  }

  /** The endpoint a received datagram from `ep` stands for: a sharer's claim, else `ep` itself. */
  private mapSource(ep: UdpEndpoint): Endpoint {
    return this.sourceMapper?.(ep.address, ep.port) ?? ep;
  }

  setHandshakeScreen(screen: HandshakeScreen | null): void {
    this.screen = screen;
  }

  /** Queues a received datagram; handshake messages are screened first (see the top of this file). */
  private enqueue(queue: ReceiveQueue<Received>, data: Uint8Array, endpoint: Endpoint, source: string): void {
    const screen = this.screen;
    if (screen === null || !isHandshake(data)) {
      queue.push({ data, endpoint });
      return;
    }
    const item = { data, endpoint };
    // A sender without a cookie leaves mac2 zero: nothing to check then.
    let mac1Checked = false;
    if (!isZeroMac2(data) && queue.hasHandshakeRoom(source, true)) {
      if (!screen.checkMac1(data)) {
        this.counters.badMac1++;
        return;
      }
      mac1Checked = true;
      if (screen.checkMac2(data, endpoint.dstToBytes())) {
        if (withinRate(this.provenRate, source)) {
          this.counters.provenHandshakes++;
          queue.pushHandshake(item, source, true);
        } else {
          this.counters.handshakesOverRate++;
        }
        return;
      }
    }
    // Rate and room first: a flood is turned away before any MAC is computed for it.
    if (!withinRate(this.handshakeRate, source)) {
      this.counters.handshakesOverRate++;
      return;
    }
    if (queue.hasHandshakeRoom(source, false) && !mac1Checked && !screen.checkMac1(data)) {
      this.counters.badMac1++;
      return;
    }
    // Counted as a drop when the source's share is full.
    queue.pushHandshake(item, source, false);
  }


  /** The addon's sockets while open natively, for the native data path to attach to; else null. */
  get nativeSockets(): NativeUdp | null {
    return this.state?.native ?? null;
  }

  stats(): UdpBindStats {
    let received = this.counters.received;
    let dropped = this.counters.dropped;
    for (const q of [this.state?.queue4, this.state?.queue6]) {
      if (q == null) continue;
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
      const state = this.useNative() ? this.openNative(port) : await this.openDgram(port);
      const receivers: ReceiveFunc[] = [];
      for (const q of [state.queue4, state.queue6]) if (q !== null) receivers.push(() => q.next());
      this.state = state;
      if (this.markValue !== 0) this.applyMark(this.markValue);
      return { receivers, port: state.port };
    } finally {
      this.opening = false;
    }
  }

  async close(): Promise<void> {
    const st = this.state;
    if (st === null) return;
    this.state = null;
    for (const q of [st.queue4, st.queue6]) {
      if (q === null) continue;
      this.counters.received += q.accepted;
      this.counters.dropped += q.dropped;
      q.close();
    }
    st.native?.close();
    await Promise.all([st.v4, st.v6].map((s) => (s === null ? undefined : closeSocket(s))));
  }

  /**
   * Sets SO_MARK on the sockets (now if open, else when they open): packets then carry the
   * firewall mark that policy routing (wg-quick's default-route mode) relies on. Throws when
   * the mark cannot be applied (no addon for a node:dgram socket, or the kernel refused).
   */
  async setMark(mark: number): Promise<void> {
    if (!Number.isInteger(mark) || mark < 0 || mark > 0xffffffff) throw new RangeError(`mark must be an integer from 0 to 4294967295, got ${mark}`);
    if (this.state !== null) this.applyMark(mark);
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
    if (endpoint.channel !== 0) bufs = bufs.map((b) => channelData(endpoint.channel, b));
    const hasFamily = (endpoint.family === 4 ? st.queue4 : st.queue6) !== null;
    if (!hasFamily) {
      this.counters.sendErrors += bufs.length;
      this.counters.lastError = `no IPv${endpoint.family} socket to send to ${endpoint.dstToString()}`;
      return Promise.resolve();
    }
    if (st.native !== null) {
      const failed = st.native.send(bufs, endpoint.family, endpoint.addressBytes(), endpoint.port, endpoint.zone);
      this.counters.sent += bufs.length - failed;
      if (failed > 0) {
        this.counters.sendErrors += failed;
        this.counters.lastError = `send to ${endpoint.dstToString()}: ${st.native.stats().lastError ?? "failed"}`;
      }
      return Promise.resolve();
    }
    const sock = (endpoint.family === 4 ? st.v4 : st.v6)!;
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

  // ---- implementation choice -------------------------------------------------------------------

  private useNative(): boolean {
    const want = this.opts.sockets ?? "auto";
    if (want === "dgram") return false;
    const { addon, reason } = loadNative();
    const available = addon?.Udp !== undefined;
    if (want === "native") {
      if (!available) throw new Error(`UdpBind: native sockets unavailable: ${reason ?? "no Udp in the addon"}`);
      return true;
    }
    return available && this.plane !== "portable";
  }

  private applyMark(mark: number): void {
    const st = this.state!;
    if (st.native !== null) {
      st.native.setMark(mark);
      return;
    }
    const setSocketMark = loadNative().addon?.setSocketMark;
    for (const sock of [st.v4, st.v6]) {
      if (sock === null) continue;
      const fd = socketFd(sock);
      if (setSocketMark === undefined || fd === null) {
        if (mark === 0) continue;
        throw new Error("cannot set SO_MARK: node:dgram has no such option and the native addon is not available");
      }
      setSocketMark(fd, mark);
    }
  }

  // ---- native sockets ----------------------------------------------------------------------------

  private openNative(port: number): OpenState {
    const { addon } = loadNative();
    const Udp = addon!.Udp!;
    const want4 = this.opts.ipv4 !== false;
    const want6 = this.opts.ipv6 !== false;
    let native: NativeUdp;
    try {
      native = new Udp({
        port,
        ipv4: want4,
        ipv6: want6,
        address4: this.opts.address4 ?? "",
        address6: this.opts.address6 ?? "",
        ...(this.opts.socketBufferBytes !== undefined ? { bufferBytes: this.opts.socketBufferBytes } : {}),
      });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const v6 = (e.syscall ?? "").includes("IPv6");
      const family = v6 ? "IPv6" : "IPv4";
      const address = v6 ? (this.opts.address6 ?? "::") : (this.opts.address4 ?? "0.0.0.0");
      throw new Error(
        `UdpBind: cannot bind ${family} UDP socket to ${v6 ? `[${address}]` : address}:${port}: ${e.code ?? ""} (${e.message})`,
        { cause: err },
      );
    }
    const info = native.info();
    const queue4 = info.ipv4 ? new ReceiveQueue<Received>(this.queueCapacity, this.batch) : null;
    const queue6 = info.ipv6 ? new ReceiveQueue<Received>(this.queueCapacity, this.batch) : null;
    // Consecutive datagrams usually come from the same peer: reuse its endpoint object.
    let lastAddr: Uint8Array | null = null;
    let lastUdp: UdpEndpoint | null = null;
    let lastEndpoint: Endpoint | null = null;
    let lastMapping = -1;
    native.start((data, sizes, addrs) => {
      // Taken at once: the receive queues bound what waits here.
      native.ack();
      let offset = 0;
      for (let i = 0; i < sizes.length; i++) {
        const size = sizes[i]!;
        const datagram = data.subarray(offset, offset + size);
        offset += size;
        const a = addrs.subarray(i * NATIVE_ADDRESS_SIZE, (i + 1) * NATIVE_ADDRESS_SIZE);
        if (lastUdp === null || lastAddr === null || !sameBytes(a, lastAddr)) {
          lastUdp = this.udpEndpointFromPacked(a);
          lastAddr = lastUdp === null ? null : a.slice();
          lastMapping = -1;
          if (lastUdp === null) continue;
        }
        if (this.sharedPacket(datagram, lastUdp)) continue;
        if (lastEndpoint === null || lastMapping !== this.mapping) {
          lastEndpoint = this.mapSource(lastUdp);
          lastMapping = this.mapping;
        }
        const queue = lastUdp.family === 4 ? queue4 : queue6;
        if (queue !== null) this.enqueue(queue, datagram, lastEndpoint, lastUdp.address);
      }
    }, NATIVE_MAX_PENDING);
    // Like a bound node:dgram socket, an open Bind keeps the process alive.
    native.ref();
    return { v4: null, v6: null, native, queue4, queue6, port: native.port() };
  }

  /**
   * The endpoint an address packed by the native side stands for (24 bytes: family, 0, port,
   * scope id, address) — the sharer's endpoint where one claims that source — or null for one
   * no peer can be reached at (port 0).
   */
  endpointFromPacked(a: Uint8Array): Endpoint | null {
    const ep = this.udpEndpointFromPacked(a);
    return ep === null ? null : this.mapSource(ep);
  }

  private udpEndpointFromPacked(a: Uint8Array): UdpEndpoint | null {
    const port = (a[2]! << 8) | a[3]!;
    if (port === 0) return null;
    if (a[0] === 4) {
      const bytes = a.slice(8, 12);
      return new UdpEndpoint(this, 4, formatIp(bytes), "", port, bytes);
    }
    if (a[0] === 6) {
      const bytes = a.slice(8, 24);
      const scope = (a[4]! | (a[5]! << 8) | (a[6]! << 16) | (a[7]! << 24)) >>> 0;
      return new UdpEndpoint(this, 6, formatIp(bytes), scope === 0 ? "" : String(scope), port, bytes);
    }
    return null;
  }

  // ---- node:dgram ---------------------------------------------------------------------------------

  private async openDgram(port: number): Promise<OpenState> {
    const { v4, v6 } = await this.openSockets(port);
    const actual = (v4 ?? v6)!.address().port;
    const state: OpenState = { v4, v6, native: null, queue4: null, queue6: null, port: actual };
    const bufferBytes = this.opts.socketBufferBytes ?? 4 << 20;
    for (const sock of [v4, v6]) {
      if (sock === null) continue;
      tuneBuffers(sock, bufferBytes);
      const queue = new ReceiveQueue<Received>(this.queueCapacity, this.batch);
      if (sock === v4) state.queue4 = queue;
      else state.queue6 = queue;
      this.attach(sock, queue);
    }
    return state;
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

  private attach(sock: dgram.Socket, queue: ReceiveQueue<Received>): void {
    // Consecutive datagrams usually come from the same peer: reuse its endpoint object.
    let lastAddress = "";
    let lastPort = -1;
    let lastUdp: UdpEndpoint | null = null;
    let lastEndpoint: Endpoint | null = null;
    let lastMapping = -1;
    sock.on("message", (msg: Buffer, rinfo: dgram.RemoteInfo) => {
      if (lastUdp === null || rinfo.port !== lastPort || rinfo.address !== lastAddress) {
        lastUdp = this.endpointFrom(rinfo);
        lastMapping = -1;
        if (lastUdp === null) return;
        lastAddress = rinfo.address;
        lastPort = rinfo.port;
      }
      if (this.sharedPacket(msg, lastUdp)) return;
      if (lastEndpoint === null || lastMapping !== this.mapping) {
        lastEndpoint = this.mapSource(lastUdp);
        lastMapping = this.mapping;
      }
      this.enqueue(queue, msg, lastEndpoint, rinfo.address);
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

/** `data` framed as TURN ChannelData on `channel` (4-byte header, no padding over UDP). */
function channelData(channel: number, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + data.length);
  out[0] = channel >> 8;
  out[1] = channel & 0xff;
  out[2] = data.length >> 8;
  out[3] = data.length & 0xff;
  out.set(data, 4);
  return out;
}

/** True for a datagram of a handshake message's type and exact size (initiation or response). */
function isHandshake(d: Uint8Array): boolean {
  if (d.length !== INITIATION.size && d.length !== RESPONSE.size) return false;
  const type = d.length === INITIATION.size ? INITIATION.type : RESPONSE.type;
  return d[0] === type && d[1] === 0 && d[2] === 0 && d[3] === 0;
}

function newHandshakeLimiter(): RateLimiter {
  return new RateLimiter({ now: () => performance.now() }, { ...HANDSHAKES_PER_ADDRESS, maxEntries: TRACKED_ADDRESSES });
}

/** Spends a token of `source`; a full table lets everyone through (the lanes still share fairly). */
function withinRate(limiter: RateLimiter, source: string): boolean {
  return limiter.size >= TRACKED_ADDRESSES || limiter.allow(source);
}

function isZeroMac2(d: Uint8Array): boolean {
  for (let i = d.length - MAC_SIZE; i < d.length; i++) if (d[i] !== 0) return false;
  return true;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The descriptor behind a bound node:dgram socket (its libuv handle's `fd`), or null. */
function socketFd(sock: dgram.Socket): number | null {
  const handle: unknown = Reflect.get(sock, "_handle");
  const fd: unknown = typeof handle === "object" && handle !== null ? Reflect.get(handle, "fd") : undefined;
  return typeof fd === "number" && fd >= 0 ? fd : null;
}

function tuneBuffers(sock: dgram.Socket, bytes: number): void {
  // The kernel caps these at net.core.{r,w}mem_max; failing to raise them is not an error.
  try {
    sock.setRecvBufferSize(bytes);
  } catch {
    /* keep the default */
  }
  try {
    sock.setSendBufferSize(bytes);
  } catch {
    /* keep the default */
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
