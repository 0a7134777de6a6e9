/**
 * The client side of a UoTLV/1 tunnel: datagrams in, datagrams out, over a TCP connection that
 * it opens and reopens by itself, as ProxyGuard's client does.
 *
 * - The connection opens lazily, when the first datagram is to be sent.
 * - When it fails or ends, the next attempt waits 1, 2, 4, 8, then 10 s (reset after a
 *   connection that lived more than 10 s), with no limit on attempts. Attempts are again lazy:
 *   one is made once the wait is over and a datagram is waiting.
 * - The server's name is resolved once and the addresses are kept for every later attempt, so
 *   a reconnect works even when DNS has gone away (e.g. it is only reachable through the tunnel).
 *   A list of peer IPs skips DNS altogether.
 * - Datagrams sent while no connection is up wait in a small queue (the newest are kept).
 */
import { lookup as dnsLookup } from "node:dns/promises";
import { isIP } from "node:net";
import { silentLogger, type Logger } from "../log/logger.js";
import { Backoff } from "./backoff.js";
import { CONNECT_TIMEOUT_MS, IDLE_TIMEOUT_MS, RECONNECT_DELAYS_MS, RECONNECT_RESET_AFTER_MS } from "./constants.js";
import type { UotlvConnection } from "./connection.js";
import { dialUotlv } from "./dial.js";
import { parseTunnelUrl, type TunnelUrl } from "./url.js";

export interface UotlvClientOptions {
  /** The server, "http://..." or "https://...". */
  url: string | TunnelUrl;
  /** Called with each datagram received. It may be a view into a larger buffer: copy to keep. */
  onDatagram: (datagram: Uint8Array) => void;
  /** Addresses to connect to instead of resolving the URL's host name (tried in order). */
  peerIps?: readonly string[];
  /** Name resolution; default: every address `dns.lookup` returns. Used until it succeeds once. */
  lookup?: (hostname: string) => Promise<string[]>;
  /** TCP source port; 0 = any. */
  localPort?: number;
  /** SO_MARK for the TCP socket (0 = none); see socket-mark.ts. Changeable with setMark(). */
  mark?: number;
  /** PEM trust anchors for https:// instead of the system's. */
  ca?: string | Buffer | Array<string | Buffer>;
  userAgent?: string;
  /** Each of TCP connect, TLS handshake and upgrade. Default 10 s. */
  connectTimeoutMs?: number;
  /** Tear a connection down after this long without inbound bytes. Default 60 s. */
  idleTimeoutMs?: number;
  reconnectDelaysMs?: readonly number[];
  reconnectResetAfterMs?: number;
  /** Datagrams kept while no connection is up. Default 128. */
  maxPendingDatagrams?: number;
  /** Unsent bytes a connection may hold before datagrams are dropped. Default 4 MiB. */
  maxBufferedBytes?: number;
  logger?: Logger;
  /** Called after each successful upgrade, with the server's address. */
  onConnect?: (remote: string) => void;
  /** Called when a connection ends or an attempt fails, with the reason. */
  onDisconnect?: (reason: string) => void;
}

export type UotlvClientState = "idle" | "connecting" | "connected" | "waiting" | "closed";

export interface UotlvClientStats {
  /** Successful upgrades. */
  connects: number;
  /** Attempts that failed before the upgrade completed. */
  failures: number;
  /** Datagrams handed to a connection / received from one. */
  txDatagrams: number;
  rxDatagrams: number;
  /** Datagrams dropped: queue full while disconnected, connection buffer full, client closed. */
  txDropped: number;
}

/** Every address of a host, in the resolver's order. */
async function lookupAll(hostname: string): Promise<string[]> {
  const all = await dnsLookup(hostname, { all: true, verbatim: true });
  return all.map((a) => a.address);
}

export class UotlvClient {
  readonly url: TunnelUrl;
  readonly stats: UotlvClientStats = { connects: 0, failures: 0, txDatagrams: 0, rxDatagrams: 0, txDropped: 0 };
  private readonly o: UotlvClientOptions;
  private readonly log: Logger;
  private readonly backoff: Backoff;
  private readonly maxPending: number;
  private addresses: string[] | null;
  private current: UotlvConnection | null = null;
  private currentRemote: string | null = null;
  private pending: Uint8Array[] = [];
  private st: UotlvClientState = "idle";
  private waitTimer: NodeJS.Timeout | null = null;
  private abort: AbortController | null = null;
  private attempt: Promise<void> | null = null;
  private markValue: number;

  constructor(opts: UotlvClientOptions) {
    this.o = opts;
    this.url = typeof opts.url === "string" ? parseTunnelUrl(opts.url) : opts.url;
    this.log = opts.logger ?? silentLogger;
    this.backoff = new Backoff(opts.reconnectDelaysMs ?? RECONNECT_DELAYS_MS, opts.reconnectResetAfterMs ?? RECONNECT_RESET_AFTER_MS);
    this.maxPending = opts.maxPendingDatagrams ?? 128;
    this.markValue = opts.mark ?? 0;
    const peerIps = opts.peerIps ?? [];
    for (const ip of peerIps) if (isIP(ip) === 0) throw new TypeError(`peer IP ${JSON.stringify(ip)} is not an IP address`);
    if (peerIps.length > 0) this.addresses = [...peerIps];
    else if (isIP(this.url.hostname) !== 0) this.addresses = [this.url.hostname];
    else this.addresses = null;
  }

  get state(): UotlvClientState {
    return this.st;
  }

  /** "ip:port" of the server while connected, else null. */
  get remote(): string | null {
    return this.currentRemote;
  }

  /** The addresses in use: given, or resolved once; null before the first resolution. */
  get resolvedAddresses(): readonly string[] | null {
    return this.addresses;
  }

  /**
   * Sends datagrams to the server, opening the connection if there is none. Never throws for
   * network trouble: datagrams that cannot go are queued or dropped and counted.
   */
  send(datagrams: readonly Uint8Array[]): void {
    if (datagrams.length === 0) return;
    if (this.st === "closed") {
      this.stats.txDropped += datagrams.length;
      return;
    }
    const conn = this.current;
    if (conn !== null && conn.isOpen) {
      const n = conn.send(datagrams);
      this.stats.txDatagrams += n;
      this.stats.txDropped += datagrams.length - n;
      return;
    }
    for (const d of datagrams) this.pending.push(new Uint8Array(d)); // a copy: the caller may reuse its buffers
    const over = this.pending.length - this.maxPending;
    if (over > 0) {
      this.pending.splice(0, over);
      this.stats.txDropped += over;
    }
    if (this.st === "idle") this.connect();
  }

  /** The SO_MARK for connections opened from now on (0 = none); the current one keeps its own. */
  setMark(mark: number): void {
    if (!Number.isInteger(mark) || mark < 0 || mark > 0xffffffff) throw new RangeError(`mark must be an integer from 0 to 4294967295, got ${mark}`);
    this.markValue = mark;
  }

  /** Closes the connection and stops reconnecting. Idempotent. */
  async close(): Promise<void> {
    if (this.st === "closed") return;
    this.st = "closed";
    if (this.waitTimer !== null) clearTimeout(this.waitTimer);
    this.waitTimer = null;
    this.abort?.abort();
    this.stats.txDropped += this.pending.length;
    this.pending = [];
    this.current?.close("client closed");
    await this.attempt?.catch(() => {});
  }

  private connect(): void {
    this.st = "connecting";
    const started = performance.now();
    const abort = new AbortController();
    this.abort = abort;
    this.attempt = this.dial(abort.signal).then(
      (conn) => this.onConnected(conn, started),
      (err: unknown) => {
        if (this.st === "closed") return;
        this.stats.failures++;
        this.ended(`cannot connect to ${this.url.href}: ${err instanceof Error ? err.message : String(err)}`, started);
      },
    );
  }

  private async dial(signal: AbortSignal): Promise<UotlvConnection> {
    if (this.addresses === null) {
      const resolve = this.o.lookup ?? lookupAll;
      let found: string[];
      try {
        found = await resolve(this.url.hostname);
      } catch (err) {
        throw new Error(`cannot resolve ${this.url.hostname}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      }
      if (found.length === 0) throw new Error(`${this.url.hostname} has no addresses`);
      this.addresses = found;
      this.log.debug(`${this.url.hostname} is ${found.join(", ")} (kept for reconnecting)`);
    }
    const errors: string[] = [];
    for (const address of this.addresses) {
      if (signal.aborted) break;
      try {
        return await dialUotlv({
          url: this.url,
          address,
          localPort: this.o.localPort,
          mark: this.markValue,
          ca: this.o.ca,
          userAgent: this.o.userAgent,
          timeoutMs: this.o.connectTimeoutMs ?? CONNECT_TIMEOUT_MS,
          connection: { idleTimeoutMs: this.o.idleTimeoutMs ?? IDLE_TIMEOUT_MS, maxBufferedBytes: this.o.maxBufferedBytes },
          signal,
        });
      } catch (err) {
        errors.push(err instanceof Error ? err.message : String(err));
      }
    }
    throw new Error(errors.join("; ") || "cancelled");
  }

  private onConnected(conn: UotlvConnection, started: number): void {
    if (this.st === "closed") {
      conn.close("client closed");
      return;
    }
    this.current = conn;
    this.currentRemote = conn.remoteAddress.includes(":") ? `[${conn.remoteAddress}]:${conn.remotePort}` : `${conn.remoteAddress}:${conn.remotePort}`;
    this.st = "connected";
    this.stats.connects++;
    this.log.info(`connected to ${this.url.href} (${this.currentRemote})`);
    this.o.onConnect?.(this.currentRemote);
    conn.start({
      onDatagram: (d) => {
        this.stats.rxDatagrams++;
        this.o.onDatagram(d);
      },
      onClose: (reason) => {
        if (this.current !== conn) return;
        this.current = null;
        this.currentRemote = null;
        if (this.st !== "closed") this.ended(`connection to ${this.url.href} ended: ${reason}`, started);
      },
    });
    const queued = this.pending;
    this.pending = [];
    if (queued.length > 0) this.send(queued);
  }

  /** After a failed attempt or an ended connection: wait, then reconnect if there is traffic. */
  private ended(reason: string, started: number): void {
    const delay = this.backoff.next(performance.now() - started);
    this.log.info(`${reason}; next attempt in ${delay / 1000} s at the earliest`);
    this.o.onDisconnect?.(reason);
    this.st = "waiting";
    this.waitTimer = setTimeout(() => {
      this.waitTimer = null;
      if (this.st !== "waiting") return;
      if (this.pending.length > 0) this.connect();
      else this.st = "idle";
    }, delay);
    this.waitTimer.unref();
  }
}
