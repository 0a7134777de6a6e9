/**
 * An in-process TCP/IP stack that owns the tunnel's addresses (docs/netstack.md).
 *
 * Its packet side (`netstack.tun`) is a `Tun`, so a WireGuard device runs on it unchanged; its
 * application side is sockets shaped like Node's: `connect()` (a net.Socket-like Duplex),
 * `createServer()`, `createUdpSocket()` (dgram-like), `ping()`. With `router: true` it also
 * accepts flows to any destination and hands them to a flow handler (src/gateway/router.ts).
 *
 * 1. Packets: with the native data plane, the packet side is a socket between the plane and
 *    lwIP (packet-socket.ts) and packets never enter JavaScript; otherwise the stack queues
 *    them and the wake below takes them in batches for the device's read (packet-port.ts).
 * 2. The native stack wakes JavaScript once per burst; the wake takes the queued socket events
 *    (and packets, on the batch side), which go to the socket or server by id.
 * 3. Sockets call into the stack directly; each call takes lwIP's core lock briefly.
 */
import { lookup as osLookup } from "node:dns/promises";
import { isIP } from "node:net";
import { dataPathPreference } from "../native/mode.js";
import { loadNetstackAddon, type NativeStack, type StackEvent, type StackStats } from "./addon.js";
import { decodeAnswer, DNS_TYPE_A, DNS_TYPE_AAAA, encodeQuery } from "./dns-message.js";
import type { StackHandle } from "./handle.js";
import { StackPort } from "./packet-port.js";
import { StackSocketPort } from "./packet-socket.js";
import { NetstackServer } from "./tcp-server.js";
import { NetstackSocket, type NetstackSocketOptions } from "./tcp-socket.js";
import { NetstackUdpSocket } from "./udp-socket.js";

export interface NetstackOptions {
  /** Interface addresses with prefix length ("10.0.0.2/24", "fd00::2/64"); at most one IPv4. */
  addresses: string[];
  /** Default 1420, as a WireGuard interface. */
  mtu?: number;
  /** Accept flows to any destination (router mode); see setFlowHandler(). */
  router?: boolean;
  /** Name of the packet side, for logs. Default "netstack". */
  name?: string;
  /** DNS servers reached through the stack for names given to connect(); none = the system resolver. */
  dns?: string[];
  /** Packets per read of the packet side; default 128. */
  batchSize?: number;
  /**
   * How packets reach the device: "socket", a packet socket the native data plane takes as its
   * TUN (packets stay native); "batches", through JavaScript in batches (what the portable data
   * plane needs). Default: "socket" where the native addon can, unless TSWG_DATAPATH=portable.
   */
  packetSide?: "socket" | "batches";
}

export interface ConnectOptions extends NetstackSocketOptions {
  host: string;
  port: number;
  /** Abort the connection attempt after this many ms (default: lwIP's SYN retries, about 1 min). */
  timeout?: number;
}

/** A new TCP flow seen in router mode, waiting to be dialed. */
export interface TcpFlow {
  readonly id: number;
  readonly srcAddress: string;
  readonly srcPort: number;
  readonly dstAddress: string;
  readonly dstPort: number;
  /** Completes the peer's handshake; `onSocket` gets the connection when it is established. */
  accept(onSocket: (socket: NetstackSocket) => void): boolean;
  /** Answers the SYN with a RST. */
  reject(): void;
}

/** A UDP datagram seen in router mode; `reply` sends back along the same flow. */
export interface UdpDatagram {
  readonly srcAddress: string;
  readonly srcPort: number;
  readonly dstAddress: string;
  readonly dstPort: number;
  readonly data: Buffer;
}

export interface FlowHandler {
  tcp(flow: TcpFlow): void;
  udp(datagram: UdpDatagram): void;
}

function parseCidr(cidr: string): [string, number, 4 | 6] {
  const [addr, len] = cidr.split("/");
  const family = isIP(addr ?? "");
  if (family === 0) throw new Error(`invalid interface address "${cidr}"`);
  const max = family === 4 ? 32 : 128;
  const prefix = len === undefined ? max : Number(len);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) throw new Error(`invalid prefix length in "${cidr}"`);
  return [addr!, prefix, family as 4 | 6];
}

export class Netstack implements StackHandle {
  readonly native: NativeStack;
  /** The packet side: give it to a Device as its `tun`. */
  readonly tun: StackPort | StackSocketPort;
  /** Which packet side the stack has, and why not the socket when it is the batches. */
  readonly packetSide: { kind: "socket" | "batches"; reason: string | null };
  readonly addresses: readonly string[];
  readonly router: boolean;
  dnsServers: string[];
  readonly #sinks = new Map<number, (e: StackEvent) => void>();
  readonly #pings = new Map<number, (size: number) => void>();
  #holds = 0;
  #pingIdent = (process.pid & 0xffff) || 1;
  #pingSeq = 0;
  #dnsId = 1;
  #flowHandler: FlowHandler | null = null;
  readonly #acceptedFlows = new Map<number, (socket: NetstackSocket) => void>();
  #closed = false;

  constructor(opts: NetstackOptions) {
    const { addon, reason: missing } = loadNetstackAddon();
    if (addon === null) throw new Error(missing);
    const parsed = opts.addresses.map(parseCidr);
    const v4 = parsed.filter((p) => p[2] === 4);
    if (v4.length > 1) throw new Error("the network stack takes one IPv4 address");
    const v6 = parsed.filter((p) => p[2] === 6);
    if (v6.length > 5) throw new Error("the network stack takes at most five IPv6 addresses");
    const mtu = opts.mtu ?? 1420;
    this.addresses = opts.addresses;
    this.router = opts.router ?? false;
    this.dnsServers = opts.dns ?? [];
    this.native = new addon.Stack(
      { mtu, ipv4: v4.length > 0 ? [v4[0]![0], v4[0]![1]] : null, ipv6: v6.map((p) => p[0]), router: this.router },
      () => this.#wake(),
    );
    const name = opts.name ?? "netstack";
    const batchSize = opts.batchSize ?? 128;
    const wanted = opts.packetSide ?? (dataPathPreference() === "portable" ? "batches" : "socket");
    let reason = "the batch side was asked for";
    if (wanted === "socket") {
      const opened = StackSocketPort.open(name, this.native, mtu, batchSize, this);
      if (opened.port !== null) {
        this.tun = opened.port;
        this.packetSide = { kind: "socket", reason: null };
        return;
      }
      if (opts.packetSide === "socket") {
        this.native.close();
        throw new Error(`the network stack's packet socket was required but ${opened.reason}`);
      }
      reason = opened.reason;
    }
    this.tun = new StackPort(name, this.native, mtu, batchSize, this);
    this.packetSide = { kind: "batches", reason };
  }

  #wake(): void {
    this.tun.wake();
    for (const e of this.native.takeEvents()) {
      switch (e.type) {
        case "echo":
          this.#pings.get(e.num!)?.(e.size!);
          break;
        case "flow":
          this.#onFlow(e);
          break;
        case "routerUdp":
          this.#flowHandler?.udp({ srcAddress: e.srcAddress!, srcPort: e.srcPort!, dstAddress: e.dstAddress!, dstPort: e.dstPort!, data: e.data! });
          break;
        case "accept":
          if (e.id === 0) this.#onFlowAccepted(e);
          else this.#sinks.get(e.id)?.(e);
          break;
        default:
          this.#sinks.get(e.id)?.(e);
      }
    }
  }

  #onFlow(e: StackEvent): void {
    const handler = this.#flowHandler;
    const id = e.id;
    if (handler === null) {
      this.native.flowReject(id);
      return;
    }
    let decided = false;
    handler.tcp({
      id,
      srcAddress: e.srcAddress!,
      srcPort: e.srcPort!,
      dstAddress: e.dstAddress!,
      dstPort: e.dstPort!,
      accept: (onSocket) => {
        if (decided || this.#closed) return false;
        decided = true;
        this.#acceptedFlows.set(id, onSocket);
        if (this.native.flowAccept(id)) return true;
        this.#acceptedFlows.delete(id);
        return false;
      },
      reject: () => {
        if (decided || this.#closed) return;
        decided = true;
        this.native.flowReject(id);
      },
    });
  }

  #onFlowAccepted(e: StackEvent): void {
    const onSocket = this.#acceptedFlows.get(e.flow!);
    this.#acceptedFlows.delete(e.flow!);
    const socket = new NetstackSocket(this, { allowHalfOpen: true });
    socket.setEnds(e);
    socket.attach(e.conn!, false);
    if (onSocket === undefined) socket.destroy();
    else onSocket(socket);
  }

  /** Router mode: who dials new flows. Without one, TCP flows are refused and UDP dropped. */
  setFlowHandler(handler: FlowHandler | null): void {
    this.#flowHandler = handler;
  }

  /** Router mode: a datagram back to the peer along a UDP flow (from dst to src). */
  sendFlowDatagram(d: Omit<UdpDatagram, "data">, data: Uint8Array): boolean {
    return this.native.routerUdpSend(d.srcAddress, d.srcPort, d.dstAddress, d.dstPort, data);
  }

  /** Forgets router flows whose dial never finished (after the flow handler gave up on them). */
  forgetFlow(id: number): void {
    this.#acceptedFlows.delete(id);
  }

  register(id: number, sink: (e: StackEvent) => void): void {
    this.#sinks.set(id, sink);
  }

  unregister(id: number): void {
    this.#sinks.delete(id);
  }

  hold(): void {
    if (this.#holds++ === 0 && !this.#closed) this.native.ref();
  }

  release(): void {
    if (--this.#holds === 0 && !this.#closed) this.native.unref();
  }

  /** A TCP connection through the tunnel, like `net.connect({ host, port })`. */
  connect(opts: ConnectOptions, onConnect?: () => void): NetstackSocket {
    const socket = new NetstackSocket(this, opts);
    if (onConnect !== undefined) socket.once("connect", onConnect);
    let timer: NodeJS.Timeout | undefined;
    if (opts.timeout !== undefined && opts.timeout > 0) {
      timer = setTimeout(() => {
        const err = new Error(`connect to ${opts.host}:${opts.port} timed out`) as NodeJS.ErrnoException;
        err.code = "ETIMEDOUT";
        if (socket.connecting) socket.destroy(err);
      }, opts.timeout);
      socket.once("connect", () => clearTimeout(timer));
      socket.once("close", () => clearTimeout(timer));
    }
    this.lookup(opts.host).then(
      (address) => {
        if (socket.destroyed) return;
        if (this.#closed) throw new Error("the network stack is closed");
        socket.attach(this.native.tcpConnect(address, opts.port), true);
      },
    ).catch((err: unknown) => socket.destroy(err instanceof Error ? err : new Error(String(err))));
    return socket;
  }

  /** A TCP listener on the stack's addresses, like `net.createServer()`. */
  createServer(opts?: NetstackSocketOptions | ((s: NetstackSocket) => void), onConnection?: (s: NetstackSocket) => void): NetstackServer {
    if (typeof opts === "function") return new NetstackServer(this, {}, opts);
    return new NetstackServer(this, opts ?? {}, onConnection);
  }

  /** A UDP socket on the stack, like `dgram.createSocket()`. */
  createUdpSocket(): NetstackUdpSocket {
    return new NetstackUdpSocket(this);
  }

  /** Sends one ICMP echo request; resolves with the round-trip time in ms. */
  ping(address: string, opts: { timeout?: number; size?: number } = {}): Promise<number> {
    if (isIP(address) === 0) return Promise.reject(new Error(`ping needs an IP address, not "${address}"`));
    const seq = (this.#pingSeq = (this.#pingSeq + 1) & 0xffff);
    const start = performance.now();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pings.delete(seq);
        this.release();
        reject(new Error(`no echo reply from ${address}`));
      }, opts.timeout ?? 2000);
      this.hold();
      this.#pings.set(seq, () => {
        clearTimeout(timer);
        this.#pings.delete(seq);
        this.release();
        resolve(performance.now() - start);
      });
      const rc = this.native.ping(address, this.#pingIdent, seq, opts.size ?? 56);
      if (rc !== 0) {
        clearTimeout(timer);
        this.#pings.delete(seq);
        this.release();
        reject(new Error(`cannot send an echo request to ${address} (lwIP error ${rc})`));
      }
    });
  }

  /**
   * An address for `host`: itself when it is one; else asked of `dnsServers` through the stack
   * (A first, then AAAA), or of the system resolver when there are none.
   */
  async lookup(host: string): Promise<string> {
    const h = host.replace(/^\[(.*)\]$/u, "$1");
    if (isIP(h) !== 0) return h;
    if (this.dnsServers.length === 0) return (await osLookup(h)).address;
    let lastErr: Error = new Error(`cannot resolve "${host}"`);
    for (const server of this.dnsServers) {
      for (const type of [DNS_TYPE_A, DNS_TYPE_AAAA]) {
        try {
          const got = await this.#query(server, h, type);
          if (got.length > 0) return got[0]!;
        } catch (err) {
          lastErr = err as Error;
        }
      }
    }
    const e = lastErr as NodeJS.ErrnoException;
    e.code ??= "ENOTFOUND";
    throw e;
  }

  #query(server: string, name: string, type: number): Promise<string[]> {
    const id = (this.#dnsId = (this.#dnsId + 1) & 0xffff);
    const sock = this.createUdpSocket();
    return new Promise<string[]>((resolve, reject) => {
      let tries = 0;
      const send = () => {
        if (tries++ === 3) {
          const e = new Error(`no answer from DNS server ${server} for "${name}"`) as NodeJS.ErrnoException;
          e.code = "ETIMEOUT";
          reject(e);
          return;
        }
        sock.send(encodeQuery(id, name, type), 53, server);
        timer = setTimeout(send, 1000 * tries);
      };
      let timer: NodeJS.Timeout;
      sock.on("message", (msg: Buffer, rinfo: { address: string; port: number }) => {
        if (rinfo.port !== 53) return;
        const a = decodeAnswer(msg, type);
        if (a === null || a.id !== id) return;
        clearTimeout(timer);
        if (a.rcode === 3) {
          const e = new Error(`"${name}" not found`) as NodeJS.ErrnoException;
          e.code = "ENOTFOUND";
          reject(e);
        } else resolve(a.addresses);
      });
      sock.bind(0);
      send();
    }).finally(() => sock.close());
  }

  stats(): StackStats {
    return this.native.stats();
  }

  /** Closes every connection (reset) and the stack; the device reading the packet side sees it end. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const sink of [...this.#sinks.values()]) sink({ type: "error", id: 0, num: -13 });
    this.tun.detach();
    this.native.close();
    await Promise.resolve();
  }
}

/** Whether the network stack can run here, and why not. */
export function netstackAvailability(): { available: boolean; reason: string | null } {
  const { addon, reason } = loadNetstackAddon();
  return { available: addon !== null, reason };
}
