/**
 * The embedded signaling server (`tswg signal`): a WebSocket service over HTTP or HTTPS that routes
 * opaque blobs by recipient public key. It cannot read them (they are sealed end to end); it only
 * makes sure that the blobs for a key go to whoever proved to hold that key (see ws-protocol.ts),
 * and it protects itself with size limits, per-connection rate limits, pings and bounded memory.
 *
 * A recipient that is briefly offline (reconnecting) gets the blobs of the last few seconds when it
 * subscribes again: a small bounded queue per key. Nothing is kept on disk; a restarted server
 * starts empty, and peers' ICE agents retry.
 */
import { randomFillSync } from "node:crypto";
import http from "node:http";
import https from "node:https";
import type { AddressInfo, Socket } from "node:net";
import { WebSocketServer, type RawData, type WebSocket } from "ws";
import { constantTimeEqual, defaultBackend, keyToBase64, keyToHex, wipe, type CryptoBackend } from "../crypto/index.js";
import { silentLogger, type Logger } from "../log/logger.js";
import {
  NONCE_LENGTH,
  decodeClientFrame,
  encodeDeliver,
  encodeError,
  encodeHello,
  encodeSubscribed,
  subscriptionProof,
} from "./ws-protocol.js";

export interface SignalingServerOptions {
  /** Address to listen on; default all addresses. */
  host?: string;
  /** TCP port; 0 (the default) picks a free one, see {@link SignalingServer.port}. */
  port?: number;
  /** Serve HTTPS (wss://) with this PEM certificate chain and key. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  logger?: Logger;
  /** Largest WebSocket message accepted; bigger ones close the connection (1009). Default 16 KiB. */
  maxFrameBytes?: number;
  /** Sustained blobs per second each connection may send. Default 100. */
  ratePerSecond?: number;
  /** Blobs a connection may send in a burst. Default 500. */
  rateBurst?: number;
  /** Ping interval; a connection that did not answer the previous ping is dropped. Default 15000 ms. */
  pingIntervalMs?: number;
  /** A connection must subscribe within this long. Default 10000 ms. */
  subscribeTimeoutMs?: number;
  /** Connections beyond this are refused (close code 1013). Default 10000. */
  maxConnections?: number;
  /**
   * TCP connections that have not yet completed the WebSocket upgrade (and, with TLS, the TLS
   * handshake), counted apart from `maxConnections`; further ones are cut at once. Default 1024.
   */
  maxPendingHandshakes?: number;
  /** A TCP connection must complete the upgrade within this long. Default 10000 ms. */
  handshakeTimeoutMs?: number;
  /** TCP connections from one address (IPv6: one /64) at a time, pending and upgraded together. Default 256. */
  maxConnectionsPerIp?: number;
  /** Connections subscribed to one key at a time; a newer one replaces the oldest. Default 4. */
  maxSubscribersPerKey?: number;
  /** How long blobs for a key with no subscriber are kept. 0 disables the queue. Default 10000 ms. */
  holdMs?: number;
  /** Blobs kept per offline key. Default 16. */
  holdPerKey?: number;
  /** Bytes kept for all offline keys together. Default 1 MiB. */
  holdTotalBytes?: number;
  /** A recipient with more than this waiting to be written is skipped (slow consumer). Default 1 MiB. */
  maxBufferedBytes?: number;
  backend?: CryptoBackend;
  /** Clock for rate limits and the offline queue. Default Date.now. */
  now?: () => number;
}

export interface SignalingServerStats {
  connections: number;
  subscribedKeys: number;
  routed: number;
  held: number;
  heldBytes: number;
  droppedRateLimited: number;
  droppedNoRecipient: number;
  droppedSlowConsumer: number;
  protocolErrors: number;
  /** TCP connections cut before the upgrade: over the pending or per-address limit. */
  refusedConnections: number;
  /** TCP connections cut for not completing the upgrade in time. */
  handshakeTimeouts: number;
}

interface Conn {
  id: number;
  ws: WebSocket;
  remote: string;
  ephemeralPrivate: Uint8Array;
  ephemeralPublic: Uint8Array;
  nonce: Uint8Array;
  key: string | null;
  alive: boolean;
  tokens: number;
  refilledAt: number;
  subscribeTimer: NodeJS.Timeout | null;
}

interface Held {
  blob: Uint8Array;
  expires: number;
}

/**
 * Whose connection this is, for the per-address cap: an IPv4 address, or an IPv6 /64 (one
 * host usually holds a whole /64, so single IPv6 addresses would make the cap meaningless).
 */
export function addressGroup(address: string): string {
  if (!address.includes(":") || /^::ffff:\d+\.\d+\.\d+\.\d+$/iu.test(address)) return address.replace(/^::ffff:/iu, "");
  const [head = "", tail] = address.split("%")[0]!.split("::");
  const left = head === "" ? [] : head.split(":");
  const right = tail === undefined || tail === "" ? [] : tail.split(":");
  const groups = tail === undefined ? left : [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill("0"), ...right];
  return `${groups.slice(0, 4).map((g) => g.toLowerCase().replace(/^0+(?=.)/u, "")).join(":")}::/64`;
}

/** WebSocket close codes used here (RFC 6455 section 7.4.1). */
const CLOSE_GOING_AWAY = 1001;
const CLOSE_UNSUPPORTED = 1003;
const CLOSE_POLICY = 1008;
const CLOSE_TRY_AGAIN = 1013;

export class SignalingServer {
  private readonly opts: Required<Omit<SignalingServerOptions, "host" | "tls" | "logger" | "backend" | "now">>;
  private readonly log: Logger;
  private readonly backend: CryptoBackend;
  private readonly now: () => number;
  private http: http.Server | https.Server | null = null;
  private wss: WebSocketServer | null = null;
  private pingTimer: NodeJS.Timeout | null = null;
  private nextId = 1;
  private readonly conns = new Set<Conn>();
  /** Subscribed connections by key (hex), oldest first. */
  private readonly subscribers = new Map<string, Conn[]>();
  private readonly held = new Map<string, Held[]>();
  private heldBytes = 0;
  private readonly counters = {
    routed: 0,
    droppedRateLimited: 0,
    droppedNoRecipient: 0,
    droppedSlowConsumer: 0,
    protocolErrors: 0,
    refusedConnections: 0,
    handshakeTimeouts: 0,
  };
  /** TCP connections not yet upgraded, by "address|port" (the same for a TLS socket and its TCP socket). */
  private readonly pending = new Map<string, Socket>();
  /** Open TCP connections per remote address. */
  private readonly perIp = new Map<string, number>();
  private closing: Promise<void> | null = null;

  constructor(private readonly options: SignalingServerOptions = {}) {
    this.log = options.logger ?? silentLogger;
    this.backend = options.backend ?? defaultBackend();
    this.now = options.now ?? Date.now;
    this.opts = {
      port: options.port ?? 0,
      maxFrameBytes: options.maxFrameBytes ?? 16 * 1024,
      ratePerSecond: options.ratePerSecond ?? 100,
      rateBurst: options.rateBurst ?? 500,
      pingIntervalMs: options.pingIntervalMs ?? 15_000,
      subscribeTimeoutMs: options.subscribeTimeoutMs ?? 10_000,
      maxConnections: options.maxConnections ?? 10_000,
      maxPendingHandshakes: options.maxPendingHandshakes ?? 1024,
      handshakeTimeoutMs: options.handshakeTimeoutMs ?? 10_000,
      maxConnectionsPerIp: options.maxConnectionsPerIp ?? 256,
      maxSubscribersPerKey: options.maxSubscribersPerKey ?? 4,
      holdMs: options.holdMs ?? 10_000,
      holdPerKey: options.holdPerKey ?? 16,
      holdTotalBytes: options.holdTotalBytes ?? 1024 * 1024,
      maxBufferedBytes: options.maxBufferedBytes ?? 1024 * 1024,
    };
  }

  /** Starts listening; resolves with the bound address. */
  async start(): Promise<AddressInfo> {
    if (this.http !== null) throw new Error("signaling server already started");
    const onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      // Plain HTTP requests get a hint instead of silence; only WebSocket upgrades are served.
      res.writeHead(426, { "Content-Type": "text/plain; charset=utf-8", Upgrade: "websocket", Connection: "Upgrade" });
      res.end("tswg signaling server: connect with a WebSocket client\n");
      req.resume();
    };
    const server = this.options.tls ? https.createServer({ cert: this.options.tls.cert, key: this.options.tls.key }, onRequest) : http.createServer(onRequest);
    this.http = server;
    // Every TCP connection counts, from its first moment: idle ones that never send a request
    // would otherwise pile up outside every WebSocket limit.
    server.on("connection", (socket: Socket) => this.admit(socket));
    server.headersTimeout = this.opts.handshakeTimeoutMs;
    const wss = new WebSocketServer({ server, maxPayload: this.opts.maxFrameBytes, perMessageDeflate: false, clientTracking: false });
    this.wss = wss;
    wss.on("error", (err) => this.log.warn(`signaling server: ${err.message}`));
    wss.on("connection", (ws, req) => this.accept(ws, req));
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => {
        server.off("listening", onListening);
        reject(err);
      };
      const onListening = (): void => {
        server.off("error", onError);
        resolve();
      };
      server.once("error", onError);
      server.once("listening", onListening);
      server.listen({ host: this.options.host, port: this.opts.port });
    });
    server.on("error", (err) => this.log.warn(`signaling server: ${err.message}`));
    this.pingTimer = setInterval(() => this.tick(), this.opts.pingIntervalMs);
    this.pingTimer.unref();
    const addr = server.address() as AddressInfo;
    this.log.info(`signaling server listening on ${this.url}`);
    return addr;
  }

  /** The bound address, or null before start() and after close(). */
  get address(): AddressInfo | null {
    const a = this.http?.address();
    return a && typeof a === "object" ? a : null;
  }

  /** The bound port (0 before start()). */
  get port(): number {
    return this.address?.port ?? 0;
  }

  /** A URL clients can use, e.g. "ws://127.0.0.1:8080/" ("wss" with TLS); wildcard addresses become loopback. */
  get url(): string {
    const a = this.address;
    if (a === null) return "";
    let host = a.address;
    if (host === "::" || host === "0.0.0.0") host = a.family === "IPv6" ? "[::1]" : "127.0.0.1";
    else if (a.family === "IPv6") host = `[${host}]`;
    return `${this.options.tls ? "wss" : "ws"}://${host}:${a.port}/`;
  }

  get stats(): SignalingServerStats {
    let held = 0;
    for (const q of this.held.values()) held += q.length;
    return { connections: this.conns.size, subscribedKeys: this.subscribers.size, held, heldBytes: this.heldBytes, ...this.counters };
  }

  /** Closes every connection (code 1001) and stops listening. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    if (this.pingTimer !== null) clearInterval(this.pingTimer);
    this.pingTimer = null;
    const closed = [...this.conns].map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.ws.readyState === c.ws.CLOSED) return resolve();
          c.ws.once("close", () => resolve());
          c.ws.close(CLOSE_GOING_AWAY, "server shutting down");
        }),
    );
    // Give clients a moment to answer the close handshake, then cut whatever is left.
    await Promise.race([Promise.all(closed), new Promise((r) => setTimeout(r, 500).unref())]);
    for (const c of this.conns) c.ws.terminate();
    this.wss?.close();
    const server = this.http;
    if (server !== null) {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    }
    this.held.clear();
    this.heldBytes = 0;
    if (this.address === null) this.log.info("signaling server stopped");
  }

  /** Admits a new TCP connection under the pending and per-address limits, with a deadline for the upgrade. */
  private admit(socket: Socket): void {
    const ip = addressGroup(socket.remoteAddress ?? "?");
    const tag = `${ip}|${socket.remotePort ?? "?"}`;
    const fromIp = this.perIp.get(ip) ?? 0;
    if (this.closing !== null || this.pending.size >= this.opts.maxPendingHandshakes || fromIp >= this.opts.maxConnectionsPerIp) {
      this.counters.refusedConnections++;
      if (this.counters.refusedConnections % 1000 === 1) {
        const why = fromIp >= this.opts.maxConnectionsPerIp ? `${fromIp} connections from ${ip}` : `${this.pending.size} connections not yet upgraded`;
        this.log.warn(`signaling: cutting new connections (${why}); ${this.counters.refusedConnections} so far`);
      }
      socket.destroy();
      return;
    }
    this.perIp.set(ip, fromIp + 1);
    this.pending.set(tag, socket);
    const timer = setTimeout(() => {
      if (this.pending.get(tag) !== socket) return;
      this.counters.handshakeTimeouts++;
      socket.destroy();
    }, this.opts.handshakeTimeoutMs);
    timer.unref();
    socket.once("close", () => {
      clearTimeout(timer);
      if (this.pending.get(tag) === socket) this.pending.delete(tag);
      const n = (this.perIp.get(ip) ?? 1) - 1;
      if (n <= 0) this.perIp.delete(ip);
      else this.perIp.set(ip, n);
    });
  }

  private accept(ws: WebSocket, req: http.IncomingMessage): void {
    // Upgraded: from here on the WebSocket limits, pings and the subscribe deadline apply.
    this.pending.delete(`${req.socket.remoteAddress ?? "?"}|${req.socket.remotePort ?? "?"}`);
    const remote = `${req.socket.remoteAddress ?? "?"}:${req.socket.remotePort ?? "?"}`;
    ws.on("error", (err) => this.log.debug(`signaling: connection ${remote}: ${err.message}`));
    if (this.closing !== null || this.conns.size >= this.opts.maxConnections) {
      this.log.warn(`signaling: refusing ${remote}: ${this.closing ? "shutting down" : `${this.conns.size} connections open`}`);
      ws.close(CLOSE_TRY_AGAIN, "server busy");
      return;
    }
    const ephemeralPrivate = this.backend.generatePrivateKey();
    const conn: Conn = {
      id: this.nextId++,
      ws,
      remote,
      ephemeralPrivate,
      ephemeralPublic: this.backend.publicKey(ephemeralPrivate),
      nonce: randomFillSync(new Uint8Array(NONCE_LENGTH)),
      key: null,
      alive: true,
      tokens: this.opts.rateBurst,
      refilledAt: this.now(),
      subscribeTimer: null,
    };
    this.conns.add(conn);
    this.log.debug(`signaling: #${conn.id} connected from ${remote}`);
    conn.subscribeTimer = setTimeout(() => this.reject(conn, "no subscription in time"), this.opts.subscribeTimeoutMs);
    conn.subscribeTimer.unref();
    ws.on("pong", () => (conn.alive = true));
    ws.on("message", (data, isBinary) => this.onMessage(conn, data, isBinary));
    ws.on("close", (code) => this.forget(conn, code));
    ws.send(encodeHello(conn.ephemeralPublic, conn.nonce));
  }

  private onMessage(conn: Conn, data: RawData, isBinary: boolean): void {
    conn.alive = true;
    if (!isBinary) {
      this.reject(conn, "binary frames only", CLOSE_UNSUPPORTED);
      return;
    }
    const bytes = Array.isArray(data) ? Buffer.concat(data) : data instanceof ArrayBuffer ? new Uint8Array(data) : data;
    const frame = decodeClientFrame(bytes);
    if (frame === null) {
      this.reject(conn, "malformed frame");
      return;
    }
    if (frame.type === "subscribe") this.subscribe(conn, frame.publicKey, frame.proof);
    else this.route(conn, frame.to, frame.blob);
  }

  private subscribe(conn: Conn, publicKey: Uint8Array, proof: Uint8Array): void {
    if (conn.key !== null) {
      this.reject(conn, "already subscribed");
      return;
    }
    let expected: Uint8Array | null = null;
    try {
      expected = subscriptionProof(this.backend, conn.ephemeralPrivate, publicKey, conn.nonce, publicKey, conn.ephemeralPublic);
    } catch {
      // a low-order key: nobody can hold its private key, so no proof can be right
    }
    wipe(conn.ephemeralPrivate);
    if (expected === null || !constantTimeEqual(expected, proof)) {
      this.reject(conn, "key proof failed");
      return;
    }
    if (conn.subscribeTimer !== null) clearTimeout(conn.subscribeTimer);
    conn.subscribeTimer = null;
    const hex = keyToHex(publicKey);
    conn.key = hex;
    let subs = this.subscribers.get(hex);
    if (subs === undefined) {
      subs = [];
      this.subscribers.set(hex, subs);
    }
    subs.push(conn);
    while (subs.length > this.opts.maxSubscribersPerKey) {
      const oldest = subs.shift()!;
      oldest.key = null; // so its close does not touch the list again
      this.reject(oldest, "replaced by a newer subscription for the same key", CLOSE_POLICY, false);
    }
    this.log.debug(`signaling: #${conn.id} subscribed as ${keyToBase64(publicKey)}`);
    conn.ws.send(encodeSubscribed());
    const queued = this.held.get(hex);
    if (queued !== undefined) {
      this.held.delete(hex);
      const now = this.now();
      for (const h of queued) {
        this.heldBytes -= h.blob.length;
        if (h.expires >= now) this.deliver(conn, h.blob);
      }
    }
  }

  private route(conn: Conn, to: Uint8Array, blob: Uint8Array): void {
    if (conn.key === null) {
      this.reject(conn, "subscribe first");
      return;
    }
    if (!this.takeToken(conn)) {
      this.counters.droppedRateLimited++;
      if (this.counters.droppedRateLimited % 1000 === 1) this.log.warn(`signaling: #${conn.id} (${conn.remote}) is over its rate limit; dropping`);
      return;
    }
    const hex = keyToHex(to);
    const subs = this.subscribers.get(hex);
    if (subs !== undefined && subs.length > 0) {
      this.counters.routed++;
      for (const s of subs) this.deliver(s, blob);
      return;
    }
    this.hold(hex, blob);
  }

  private deliver(conn: Conn, blob: Uint8Array): void {
    if (conn.ws.bufferedAmount > this.opts.maxBufferedBytes) {
      this.counters.droppedSlowConsumer++;
      return;
    }
    conn.ws.send(encodeDeliver(blob));
  }

  private hold(hex: string, blob: Uint8Array): void {
    if (this.opts.holdMs <= 0 || this.heldBytes + blob.length > this.opts.holdTotalBytes) {
      this.counters.droppedNoRecipient++;
      return;
    }
    let q = this.held.get(hex);
    if (q === undefined) {
      q = [];
      this.held.set(hex, q);
    }
    q.push({ blob, expires: this.now() + this.opts.holdMs });
    this.heldBytes += blob.length;
    while (q.length > this.opts.holdPerKey) {
      this.heldBytes -= q.shift()!.blob.length;
      this.counters.droppedNoRecipient++;
    }
  }

  private takeToken(conn: Conn): boolean {
    const now = this.now();
    const elapsed = Math.max(0, now - conn.refilledAt);
    conn.refilledAt = now;
    conn.tokens = Math.min(this.opts.rateBurst, conn.tokens + (elapsed * this.opts.ratePerSecond) / 1000);
    if (conn.tokens < 1) return false;
    conn.tokens -= 1;
    return true;
  }

  /** Ends a connection for breaking the rules (or being replaced): an ERROR frame, then a close. */
  private reject(conn: Conn, reason: string, code = CLOSE_POLICY, protocolError = true): void {
    if (protocolError) this.counters.protocolErrors++;
    this.log.debug(`signaling: closing #${conn.id} (${conn.remote}): ${reason}`);
    if (conn.ws.readyState === conn.ws.OPEN) {
      conn.ws.send(encodeError(reason));
      conn.ws.close(code, reason.slice(0, 100));
    }
    // Do not wait for the close handshake of a misbehaving peer.
    setTimeout(() => conn.ws.terminate(), 1000).unref();
  }

  private forget(conn: Conn, code: number): void {
    if (!this.conns.delete(conn)) return;
    if (conn.subscribeTimer !== null) clearTimeout(conn.subscribeTimer);
    wipe(conn.ephemeralPrivate);
    if (conn.key !== null) {
      const subs = this.subscribers.get(conn.key);
      if (subs !== undefined) {
        const i = subs.indexOf(conn);
        if (i >= 0) subs.splice(i, 1);
        if (subs.length === 0) this.subscribers.delete(conn.key);
      }
    }
    this.log.debug(`signaling: #${conn.id} (${conn.remote}) disconnected (${code})`);
  }

  private tick(): void {
    for (const c of this.conns) {
      if (!c.alive) {
        this.log.debug(`signaling: #${c.id} (${c.remote}) missed a ping; dropping it`);
        c.ws.terminate();
        continue;
      }
      c.alive = false;
      c.ws.ping();
    }
    const now = this.now();
    for (const [hex, q] of this.held) {
      while (q.length > 0 && q[0]!.expires < now) this.heldBytes -= q.shift()!.blob.length;
      if (q.length === 0) this.held.delete(hex);
    }
  }
}
