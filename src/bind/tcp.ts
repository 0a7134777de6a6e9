/**
 * The TCP transport: WireGuard datagrams carried over UoTLV/1 (ProxyGuard's protocol), for
 * networks that block UDP. In process, with no local UDP hop.
 *
 * As a client, an endpoint is a server URL (`Endpoint = https://vpn.example.org/proxyguard`);
 * the first datagram for it opens the connection, which then reconnects by itself (see
 * src/uotlv/client.ts). As a server, the Bind listens on the addresses it was given and every
 * accepted connection becomes an endpoint of its own, so replies go back the way the datagrams
 * came and peers roam between connections (or to UDP and back) as they would between addresses.
 *
 * The `port` given to `open` is not used: UDP keeps the device's listen port, and the TCP
 * addresses come from the options (`TCPListen` in a configuration file).
 */
import { silentLogger, type Logger } from "../log/logger.js";
import type { UotlvConnection } from "../uotlv/connection.js";
import { UotlvClient } from "../uotlv/client.js";
import { parseListenAddress, type ListenAddress } from "../uotlv/listen-address.js";
import { socketMarkUnsupportedReason } from "../uotlv/socket-mark.js";
import { formatRemote, UotlvServer } from "../uotlv/server.js";
import { looksLikeUrl, parseTunnelUrl } from "../uotlv/url.js";
import type { Bind, Endpoint, OpenResult, Received } from "./bind.js";
import { BindClosedError } from "./errors.js";
import { EndpointParseError } from "./addr-port.js";
import { ReceiveQueue } from "./receive-queue.js";
import { TcpConnectionEndpoint, TcpUrlEndpoint } from "./tcp-endpoint.js";

export interface TcpBindOptions {
  /** Where to accept UoTLV/1 connections: "0.0.0.0:443", "[::]:443", or a bare port. None: client only. */
  listen?: readonly string[];
  /** Addresses of server host names, resolved beforehand; these names are not looked up again. */
  hosts?: ReadonlyMap<string, readonly string[]>;
  /** Name resolution for other host names (default: the system resolver, once per URL). */
  lookup?: (hostname: string) => Promise<string[]>;
  /** PEM trust anchors for https:// servers instead of the system's. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Most datagrams per receive batch and per `send`. Default 128. */
  batchSize?: number;
  /** Datagrams held for the receiver before new ones are dropped. Default 1024. */
  queueCapacity?: number;
  /** Protocol timings, for tests; the defaults are ProxyGuard's. */
  connectTimeoutMs?: number;
  headTimeoutMs?: number;
  idleTimeoutMs?: number;
  reconnectDelaysMs?: readonly number[];
  logger?: Logger;
}

export interface TcpBindStats {
  /** Datagrams queued for the receiver / dropped because it was full. */
  received: number;
  dropped: number;
  /** Datagrams handed to a connection (or queued by a client that is connecting). */
  sent: number;
  /** Datagrams not sent: the endpoint's connection has ended. */
  sendDropped: number;
  /** Incoming connections that completed the upgrade. */
  accepted: number;
}

interface OpenState {
  queue: ReceiveQueue<Received>;
  servers: UotlvServer[];
  clients: Map<string, UotlvClient>;
  connections: Map<string, UotlvConnection>;
  port: number;
}

export class TcpBind implements Bind {
  readonly kind = "tcp";
  private readonly o: TcpBindOptions;
  private readonly listen: ListenAddress[];
  private readonly batch: number;
  private readonly log: Logger;
  private readonly urlEndpoints = new Map<string, TcpUrlEndpoint>();
  private state: OpenState | null = null;
  private opening = false;
  private serial = 0;
  private markValue = 0;
  private readonly counters = { received: 0, dropped: 0, sent: 0, sendDropped: 0, accepted: 0 };

  constructor(opts: TcpBindOptions = {}) {
    this.o = opts;
    this.listen = (opts.listen ?? []).map((l) => parseListenAddress(l));
    this.batch = opts.batchSize ?? 128;
    if (!Number.isInteger(this.batch) || this.batch < 1) throw new RangeError(`batchSize must be a positive integer, got ${this.batch}`);
    this.log = opts.logger ?? silentLogger;
  }

  batchSize(): number {
    return this.batch;
  }

  /** The mark last given to {@link setMark} (0 = none). */
  get mark(): number {
    return this.markValue;
  }

  /** The TCP addresses being listened on while open ("0.0.0.0:443", "[::]:8443"). */
  get listening(): string[] {
    return (this.state?.servers ?? []).flatMap((s) => {
      const a = s.address();
      return a === null ? [] : [formatRemote(a.address, a.port)];
    });
  }

  stats(): TcpBindStats {
    const q = this.state?.queue;
    return {
      ...this.counters,
      received: this.counters.received + (q?.accepted ?? 0),
      dropped: this.counters.dropped + (q?.dropped ?? 0),
    };
  }

  async open(_port: number): Promise<OpenResult> {
    if (this.state !== null || this.opening) throw new Error("TcpBind is already open");
    this.opening = true;
    const servers: UotlvServer[] = [];
    try {
      const st: OpenState = {
        queue: new ReceiveQueue<Received>(this.o.queueCapacity ?? 1024, this.batch),
        servers,
        clients: new Map(),
        connections: new Map(),
        port: 0,
      };
      for (const l of this.listen) {
        const server = new UotlvServer({
          onConnection: (conn, info) => this.accept(st, conn, info.remote),
          headTimeoutMs: this.o.headTimeoutMs,
          idleTimeoutMs: this.o.idleTimeoutMs,
          logger: this.log,
        });
        servers.push(server);
        let bound;
        try {
          bound = await server.listen(l.port, l.host);
        } catch (err) {
          const where = l.host === undefined ? `port ${l.port}` : formatRemote(l.host, l.port);
          // No `code` on purpose: this is the TCP listener, not the UDP listen port.
          throw new Error(`TcpBind: cannot listen on TCP ${where}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
        }
        if (st.port === 0) st.port = bound.port;
        this.log.info(`accepting UoTLV/1 on TCP ${formatRemote(bound.address, bound.port)}`);
      }
      this.state = st;
      return { receivers: [() => st.queue.next()], port: st.port };
    } catch (err) {
      await Promise.all(servers.map((s) => s.close()));
      throw err;
    } finally {
      this.opening = false;
    }
  }

  async close(): Promise<void> {
    const st = this.state;
    if (st === null) return;
    this.state = null;
    this.counters.received += st.queue.accepted;
    this.counters.dropped += st.queue.dropped;
    st.queue.close();
    for (const c of st.connections.values()) c.close("bind closed");
    await Promise.all([...st.servers.map((s) => s.close()), ...[...st.clients.values()].map((c) => c.close())]);
  }

  /**
   * Sets the firewall mark of the connections this Bind opens from now on (with the native
   * addon; accepted connections are not marked). Without the addon the mark is recorded, not
   * applied, and a warning says so: failing here would fail the whole device.
   */
  async setMark(mark: number): Promise<void> {
    if (!Number.isInteger(mark) || mark < 0 || mark > 0xffffffff) throw new RangeError(`mark must be an integer from 0 to 4294967295, got ${mark}`);
    const unsupported = mark === 0 ? null : socketMarkUnsupportedReason();
    if (unsupported !== null && mark !== this.markValue) this.log.warn(`fwmark ${mark} is not applied to TCP connections: ${unsupported}`);
    this.markValue = mark;
    const applied = unsupported === null ? mark : 0;
    for (const c of this.state?.clients.values() ?? []) c.setMark(applied);
  }

  /** The mark outgoing connections get: the recorded one where it can be applied. */
  private appliedMark(): number {
    return this.markValue !== 0 && socketMarkUnsupportedReason() === null ? this.markValue : 0;
  }

  /** Accepts "http://..." and "https://..." URLs only; "ip:port" belongs to the UDP Bind. */
  parseEndpoint(s: string): TcpUrlEndpoint {
    if (typeof s !== "string" || !looksLikeUrl(s.trim())) {
      throw new EndpointParseError(`invalid endpoint ${JSON.stringify(s)}: the TCP transport takes an http:// or https:// URL`);
    }
    let url;
    try {
      url = parseTunnelUrl(s.trim());
    } catch (err) {
      throw new EndpointParseError((err as Error).message);
    }
    const key = `tcp:${url.href}`;
    let ep = this.urlEndpoints.get(key);
    if (ep === undefined) {
      ep = new TcpUrlEndpoint(this, url);
      this.urlEndpoints.set(key, ep);
    }
    return ep;
  }

  /**
   * Sends each buffer as one datagram. To a URL, the connection is opened (or reopened) as
   * needed and datagrams wait for it in a small queue; to an accepted connection that has ended,
   * they are dropped and counted. Resolves at once: the buffers are copied.
   */
  send(bufs: Uint8Array[], endpoint: Endpoint): Promise<void> {
    if (!(endpoint instanceof TcpUrlEndpoint) && !(endpoint instanceof TcpConnectionEndpoint)) {
      return Promise.reject(new TypeError(`TcpBind can only send to a TCP endpoint, not to ${String(endpoint?.key)}`));
    }
    if (bufs.length > this.batch) return Promise.reject(new RangeError(`send: ${bufs.length} buffers exceed the batch size ${this.batch}`));
    const st = this.state;
    if (st === null) return Promise.reject(new BindClosedError(this.kind));
    if (bufs.length === 0) return Promise.resolve();
    if (endpoint instanceof TcpUrlEndpoint) {
      this.clientFor(st, endpoint).send(bufs);
      this.counters.sent += bufs.length;
    } else {
      const conn = st.connections.get(endpoint.key);
      const n = conn === undefined ? 0 : conn.send(bufs);
      this.counters.sent += n;
      this.counters.sendDropped += bufs.length - n;
    }
    return Promise.resolve();
  }

  private clientFor(st: OpenState, ep: TcpUrlEndpoint): UotlvClient {
    let client = st.clients.get(ep.key);
    if (client === undefined) {
      client = new UotlvClient({
        url: ep.url,
        peerIps: this.o.hosts?.get(ep.url.hostname),
        mark: this.appliedMark(),
        lookup: this.o.lookup,
        ca: this.o.ca,
        connectTimeoutMs: this.o.connectTimeoutMs,
        idleTimeoutMs: this.o.idleTimeoutMs,
        reconnectDelaysMs: this.o.reconnectDelaysMs,
        logger: this.log,
        onDatagram: (d) => st.queue.push({ data: d, endpoint: ep }),
      });
      st.clients.set(ep.key, client);
    }
    return client;
  }

  private accept(st: OpenState, conn: UotlvConnection, remote: string): void {
    if (this.state !== st) {
      conn.close("bind closed");
      return;
    }
    let ep: TcpConnectionEndpoint;
    try {
      ep = new TcpConnectionEndpoint(this, remote, ++this.serial);
    } catch {
      conn.close("peer address not understood");
      return;
    }
    st.connections.set(ep.key, conn);
    this.counters.accepted++;
    this.log.debug(`UoTLV/1 client ${ep.dstToString()} connected`);
    conn.start({
      onDatagram: (d) => st.queue.push({ data: d, endpoint: ep }),
      onClose: (reason) => {
        st.connections.delete(ep.key);
        this.log.debug(`UoTLV/1 client ${ep.dstToString()}: ${reason}`);
      },
    });
  }
}
