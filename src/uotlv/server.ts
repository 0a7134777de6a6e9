/**
 * The server side of UoTLV/1: a TCP listener that accepts the HTTP upgrade and hands each
 * upgraded connection to its owner (the standalone proxy, or the TCP Bind).
 *
 * Whoever connects must send a complete request head within 10 s (as ProxyGuard's HTTP server
 * demands), or is disconnected without an answer. Requests that are not a UoTLV/1 upgrade get a
 * short text answer (501 for other methods, 426 for missing or wrong upgrade headers, 400 for
 * malformed requests) and the connection is closed. Nothing one client does affects the others.
 */
import net from "node:net";
import { silentLogger, type Logger } from "../log/logger.js";
import { CONNECT_TIMEOUT_MS, IDLE_TIMEOUT_MS } from "./constants.js";
import { UotlvConnection } from "./connection.js";
import { formatErrorResponse, formatSwitchingResponse, judgeUpgradeRequest } from "./handshake.js";
import { HeadError, HeadReader, parseRequestHead, type RequestHead } from "./http-head.js";

export interface UpgradeInfo {
  /** The TCP peer, "ip:port" (a reverse proxy's address when there is one). */
  remote: string;
  request: RequestHead;
}

export interface UotlvServerOptions {
  /** Receives each upgraded connection; it must call `conn.start(...)`. */
  onConnection: (conn: UotlvConnection, info: UpgradeInfo) => void;
  /** Time allowed for the request head. Default 10 s. */
  headTimeoutMs?: number;
  /** Tear down upgraded connections after this long without inbound bytes. Default 60 s. */
  idleTimeoutMs?: number;
  /** Unsent bytes a connection may hold before datagrams are dropped. Default 4 MiB. */
  maxBufferedBytes?: number;
  /** Most simultaneous TCP connections; further ones are closed at once. Default unlimited. */
  maxConnections?: number;
  logger?: Logger;
}

export interface UotlvServerStats {
  /** TCP connections accepted. */
  accepted: number;
  /** Connections that completed the upgrade. */
  upgraded: number;
  /** Requests answered with an error status. */
  refused: number;
  /** Connections closed for not sending a request head in time. */
  timedOut: number;
}

export function formatRemote(address: string | undefined, port: number | undefined): string {
  const a = address ?? "?";
  return a.includes(":") ? `[${a}]:${port ?? 0}` : `${a}:${port ?? 0}`;
}

export class UotlvServer {
  readonly stats: UotlvServerStats = { accepted: 0, upgraded: 0, refused: 0, timedOut: 0 };
  private readonly o: UotlvServerOptions;
  private readonly log: Logger;
  private readonly server: net.Server;
  /** Sockets still in the handshake. */
  private readonly handshaking = new Set<net.Socket>();
  private readonly upgraded = new Set<UotlvConnection>();
  private closing = false;

  constructor(opts: UotlvServerOptions) {
    this.o = opts;
    this.log = opts.logger ?? silentLogger;
    this.server = net.createServer({ noDelay: true }, (s) => this.handle(s));
    if (opts.maxConnections !== undefined) this.server.maxConnections = opts.maxConnections;
    this.server.on("error", (err) => this.log.warn(`listener: ${err.message}`));
  }

  /** Connections that completed the upgrade and are still open. */
  get connections(): ReadonlySet<UotlvConnection> {
    return this.upgraded;
  }

  /** Starts listening; `host` absent = every address. Resolves with the bound address. */
  listen(port: number, host?: string): Promise<net.AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.server.once("error", onError);
      this.server.listen({ port, host, exclusive: true }, () => {
        this.server.off("error", onError);
        resolve(this.server.address() as net.AddressInfo);
      });
    });
  }

  address(): net.AddressInfo | null {
    const a = this.server.address();
    return a !== null && typeof a === "object" ? a : null;
  }

  /** Stops listening and closes every connection. Idempotent. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const closed = new Promise<void>((r) => this.server.close(() => r()));
    for (const s of this.handshaking) s.destroy();
    this.handshaking.clear();
    for (const c of this.upgraded) c.close("server closed");
    this.upgraded.clear();
    if (this.server.listening) await closed;
  }

  /**
   * Takes over a connected socket as if it had been accepted here: the listener calls this, and
   * so may a caller that accepts connections itself (e.g. a TLS server in front).
   */
  handle(sock: net.Socket): void {
    if (this.closing) {
      sock.destroy();
      return;
    }
    this.stats.accepted++;
    const remote = formatRemote(sock.remoteAddress, sock.remotePort);
    this.handshaking.add(sock);
    const reader = new HeadReader();
    const timer = setTimeout(() => {
      this.stats.timedOut++;
      this.log.debug(`${remote}: no request within ${(this.o.headTimeoutMs ?? CONNECT_TIMEOUT_MS) / 1000} s, disconnecting`);
      finish();
      sock.destroy();
    }, this.o.headTimeoutMs ?? CONNECT_TIMEOUT_MS);
    timer.unref();
    const onError = (): void => {
      finish();
      sock.destroy();
    };
    const onEnd = (): void => {
      finish();
      sock.destroy();
    };
    const finish = (): void => {
      clearTimeout(timer);
      this.handshaking.delete(sock);
      sock.off("data", onData);
      sock.off("end", onEnd);
      sock.off("error", onError);
    };
    const refuse = (status: number, body: string, why: string): void => {
      this.stats.refused++;
      this.log.debug(`${remote}: refused with ${status}: ${why}`);
      finish();
      // Keep swallowing errors and input until the answer is out and the socket is gone.
      sock.on("error", () => sock.destroy());
      sock.resume();
      sock.end(formatErrorResponse(status, body));
      setTimeout(() => sock.destroy(), 2000).unref();
    };
    const onData = (chunk: Buffer): void => {
      let request: RequestHead;
      let rest: Buffer;
      try {
        const got = reader.push(chunk);
        if (got === null) return;
        rest = got.rest;
        request = parseRequestHead(got.head);
      } catch (err) {
        if (err instanceof HeadError) refuse(err.status, `${err.message}\n`, err.message);
        else onError();
        return;
      }
      const verdict = judgeUpgradeRequest(request);
      if (!verdict.accept) {
        refuse(verdict.status, verdict.body, `${request.method} ${request.target.slice(0, 100)}: ${verdict.body.trim()}`);
        return;
      }
      // Pause before letting go of the socket, so no frame is lost before the connection starts.
      sock.pause();
      finish();
      sock.write(formatSwitchingResponse());
      const conn = new UotlvConnection(sock, rest, { idleTimeoutMs: this.o.idleTimeoutMs ?? IDLE_TIMEOUT_MS, maxBufferedBytes: this.o.maxBufferedBytes });
      this.upgraded.add(conn);
      void conn.closed.then(() => this.upgraded.delete(conn));
      this.stats.upgraded++;
      this.o.onConnection(conn, { remote, request });
    };
    sock.on("data", onData);
    sock.on("end", onEnd);
    sock.on("error", onError);
  }
}
