/**
 * The client side of `tswg signal`: a {@link SignalingTransport} over one WebSocket connection to
 * a ws:// or wss:// URL. It proves ownership of its key when subscribing (see ws-protocol.ts),
 * reconnects by itself with jittered exponential back-off (1 s doubling to 30 s), re-subscribes,
 * and notices a dead server through pings.
 *
 * While disconnected, send() waits up to `sendWaitMs` (default 5 s) for the connection to return
 * and then fails with {@link SignalingUnavailableError}; callers (ICE agents) retry on their own.
 */
import { WebSocket, type RawData } from "ws";
import { constantTimeEqual, defaultBackend, keyToBase64, KEY_LENGTH, type CryptoBackend } from "../crypto/index.js";
import { silentLogger, type Logger } from "../log/logger.js";
import { backoffDelay, DEFAULT_MAX_BACKOFF_MS, DEFAULT_MIN_BACKOFF_MS } from "./backoff.js";
import { SignalingClosedError, SignalingUnavailableError, SignalingUrlError } from "./errors.js";
import { TransportBase } from "./transport-base.js";
import type { SignalingTransport } from "./types.js";
import { WS_PROTOCOL_VERSION, decodeServerFrame, encodeSend, encodeSubscribe, subscriptionProof } from "./ws-protocol.js";

export interface WebSocketTransportOptions {
  /** ws://host:port[/path] or wss://host:port[/path]. */
  url: string;
  /** This host's WireGuard private key: it proves to the server that we own the key we subscribe to. */
  privateKey: Uint8Array;
  /** PEM CA certificate(s) to trust for wss:// instead of the system's. */
  ca?: string | Buffer;
  logger?: Logger;
  /** How long open() waits for the first subscription before rejecting (retrying goes on). Default 10000 ms. */
  connectTimeoutMs?: number;
  /** How long send() waits for a lost connection to return. Default 5000 ms. */
  sendWaitMs?: number;
  /** Limit for the TCP + TLS + WebSocket handshake. Default 10000 ms. */
  handshakeTimeoutMs?: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** The client pings this often and gives up on a server silent for 2.5 intervals. Default 15000 ms. */
  pingIntervalMs?: number;
  /** Largest blob accepted from the server or sent. Default 16 KiB minus framing. */
  maxBlobBytes?: number;
  backend?: CryptoBackend;
  /** Randomness for back-off jitter; default Math.random. */
  random?: () => number;
  /**
   * A connection subscribed at least this long that breaks without a close frame (e.g. a NAT on
   * the way forgot it) is dialled again at once instead of after the back-off. Default 5000 ms.
   */
  stableForMs?: number;
}

/** Checks a ws:// or wss:// URL; throws {@link SignalingUrlError} with the reason otherwise. */
export function parseWebSocketUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new SignalingUrlError(`invalid signaling URL ${JSON.stringify(text)}`);
  }
  if (url.protocol !== "ws:" && url.protocol !== "wss:") throw new SignalingUrlError(`expected a ws:// or wss:// URL, got ${JSON.stringify(text)}`);
  if (url.hostname === "") throw new SignalingUrlError(`signaling URL ${JSON.stringify(text)} has no host`);
  if (url.username !== "" || url.password !== "") throw new SignalingUrlError("ws signaling URLs take no user name or password");
  if (url.hash !== "") throw new SignalingUrlError("ws signaling URLs take no #fragment");
  return url;
}

export class WebSocketTransport extends TransportBase implements SignalingTransport {
  readonly url: string;
  readonly publicKey: Uint8Array;
  private readonly privateKey: Uint8Array;
  private readonly backend: CryptoBackend;
  private readonly log: Logger;
  private readonly o: Required<Omit<WebSocketTransportOptions, "url" | "privateKey" | "ca" | "logger" | "backend">>;
  private readonly ca: string | Buffer | undefined;
  private onBlob: ((blob: Uint8Array) => void) | null = null;
  private ws: WebSocket | null = null;
  private attempt = 0;
  /** When the current connection was subscribed (ms since the epoch), 0 while not subscribed. */
  private subscribedAt = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private pingTimer: NodeJS.Timeout | null = null;
  private lastHeard = 0;

  constructor(opts: WebSocketTransportOptions) {
    super();
    this.url = parseWebSocketUrl(opts.url).toString();
    if (!(opts.privateKey instanceof Uint8Array) || opts.privateKey.length !== KEY_LENGTH) {
      throw new TypeError(`the signaling client needs the ${KEY_LENGTH}-byte private key`);
    }
    this.backend = opts.backend ?? defaultBackend();
    this.privateKey = opts.privateKey.slice();
    this.publicKey = this.backend.publicKey(this.privateKey);
    this.log = opts.logger ?? silentLogger;
    this.ca = opts.ca;
    this.o = {
      connectTimeoutMs: opts.connectTimeoutMs ?? 10_000,
      sendWaitMs: opts.sendWaitMs ?? 5000,
      handshakeTimeoutMs: opts.handshakeTimeoutMs ?? 10_000,
      minBackoffMs: opts.minBackoffMs ?? DEFAULT_MIN_BACKOFF_MS,
      maxBackoffMs: opts.maxBackoffMs ?? DEFAULT_MAX_BACKOFF_MS,
      pingIntervalMs: opts.pingIntervalMs ?? 15_000,
      maxBlobBytes: opts.maxBlobBytes ?? 16 * 1024 - 1 - KEY_LENGTH,
      random: opts.random ?? Math.random,
      stableForMs: opts.stableForMs ?? 5000,
    };
  }

  /**
   * Connects and subscribes to `self`, which must be the public key of the private key given.
   * Rejects with {@link SignalingUnavailableError} if that has not happened within
   * `connectTimeoutMs`; the transport then keeps trying in the background ("connected" tells
   * when it succeeds) until close().
   */
  async open(self: Uint8Array, onBlob: (blob: Uint8Array) => void): Promise<void> {
    if (this.closed) throw new SignalingClosedError();
    if (this.onBlob !== null) throw new Error("transport is already open");
    if (!(self instanceof Uint8Array) || !constantTimeEqual(self, this.publicKey)) {
      throw new Error("the key to subscribe to is not the public key of the transport's private key");
    }
    this.onBlob = onBlob;
    this.connect();
    if (!(await this.waitConnected(this.o.connectTimeoutMs))) {
      if (this.closed) throw new SignalingClosedError();
      throw new SignalingUnavailableError(`signaling server ${this.url} not reachable within ${this.o.connectTimeoutMs} ms (still trying)`);
    }
  }

  async send(to: Uint8Array, blob: Uint8Array): Promise<void> {
    if (this.closed) throw new SignalingClosedError();
    if (this.onBlob === null) throw new Error("transport is not open");
    if (!(to instanceof Uint8Array) || to.length !== KEY_LENGTH) throw new TypeError(`recipient must be a ${KEY_LENGTH}-byte key`);
    if (blob.length === 0 || blob.length > this.o.maxBlobBytes) throw new RangeError(`blob of ${blob.length} bytes is outside 1..${this.o.maxBlobBytes}`);
    if (!(await this.waitConnected(this.o.sendWaitMs))) {
      if (this.closed) throw new SignalingClosedError();
      throw new SignalingUnavailableError(`not connected to signaling server ${this.url}`);
    }
    const ws = this.ws;
    if (ws === null || ws.readyState !== ws.OPEN) throw new SignalingUnavailableError(`not connected to signaling server ${this.url}`);
    await new Promise<void>((resolve, reject) => {
      ws.send(encodeSend(to, blob), (err) => (err ? reject(new SignalingUnavailableError(`signaling send failed: ${err.message}`)) : resolve()));
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.markClosed();
    this.stopTimers();
    const ws = this.ws;
    this.ws = null;
    this.privateKey.fill(0);
    if (ws === null || ws.readyState === ws.CLOSED) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        ws.terminate();
        resolve();
      }, 1000);
      ws.once("close", () => {
        clearTimeout(timer);
        resolve();
      });
      if (ws.readyState === ws.CONNECTING) ws.terminate();
      else ws.close(1000, "closing");
    });
  }

  /**
   * The network changed (an address came or went): the connection may be tied to an address
   * that is gone and would only be noticed dead after the ping timeout, so drop it and dial again
   * at once. Messages sent meanwhile wait for the new connection.
   */
  reconnectNow(): void {
    if (this.closed) return;
    const ws = this.ws;
    this.ws = null;
    this.stopTimers();
    this.setConnected(false);
    this.attempt = 0;
    this.subscribedAt = 0;
    // Its close event is ignored: it is no longer this.ws.
    if (ws !== null) ws.terminate();
    this.log.debug(`signaling: the network changed; reconnecting to ${this.url}`);
    this.connect();
  }

  private connect(): void {
    if (this.closed) return;
    this.retryTimer = null;
    const ws = new WebSocket(this.url, {
      ca: this.ca,
      handshakeTimeout: this.o.handshakeTimeoutMs,
      maxPayload: this.o.maxBlobBytes + 1 + KEY_LENGTH,
      perMessageDeflate: false,
      followRedirects: false,
    });
    this.ws = ws;
    let failure = "";
    ws.on("open", () => {
      this.lastHeard = Date.now();
      this.log.debug(`signaling: connected to ${this.url}`);
      this.startPings(ws);
    });
    ws.on("message", (data, isBinary) => this.onMessage(ws, data, isBinary));
    ws.on("ping", () => (this.lastHeard = Date.now()));
    ws.on("pong", () => (this.lastHeard = Date.now()));
    ws.on("error", (err) => (failure = err.message));
    ws.on("close", (code, reason) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.stopTimers();
      const was = this.connected;
      this.setConnected(false);
      if (this.closed) return;
      const why = failure || `closed (${code}${reason.length > 0 ? ` ${reason.toString()}` : ""})`;
      // A connection that worked for a while and then broke (no close frame: e.g. a NAT on the
      // way forgot it) is dialled again at once; a server's close, or a flapping connection,
      // waits the back-off.
      const broke = was && code === 1006 && Date.now() - this.subscribedAt >= this.o.stableForMs;
      this.subscribedAt = 0;
      const delay = broke ? 0 : backoffDelay(this.attempt++, { minMs: this.o.minBackoffMs, maxMs: this.o.maxBackoffMs, random: this.o.random });
      const line = `signaling: ${was ? "lost" : "cannot reach"} ${this.url}: ${why}; retrying in ${(delay / 1000).toFixed(1)} s`;
      if (was || this.attempt === 1) this.log.warn(line);
      else this.log.debug(line);
      this.retryTimer = setTimeout(() => this.connect(), delay);
    });
  }

  private onMessage(ws: WebSocket, data: RawData, isBinary: boolean): void {
    this.lastHeard = Date.now();
    const bytes = Array.isArray(data) ? Buffer.concat(data) : data instanceof ArrayBuffer ? new Uint8Array(data) : data;
    const frame = isBinary ? decodeServerFrame(bytes) : null;
    if (frame === null) {
      this.log.warn(`signaling: ${this.url} sent something that is not a signaling frame; reconnecting`);
      ws.terminate();
      return;
    }
    switch (frame.type) {
      case "hello": {
        if (frame.version !== WS_PROTOCOL_VERSION) {
          this.log.warn(`signaling: ${this.url} speaks protocol version ${frame.version}, not ${WS_PROTOCOL_VERSION}`);
          ws.close(1002, "protocol version");
          return;
        }
        let proof: Uint8Array;
        try {
          proof = subscriptionProof(this.backend, this.privateKey, frame.serverKey, frame.nonce, this.publicKey, frame.serverKey);
        } catch {
          this.log.warn(`signaling: ${this.url} offered an invalid key; reconnecting`);
          ws.terminate();
          return;
        }
        ws.send(encodeSubscribe(this.publicKey, proof));
        return;
      }
      case "subscribed":
        this.attempt = 0;
        this.subscribedAt = Date.now();
        this.log.debug(`signaling: subscribed as ${keyToBase64(this.publicKey)} at ${this.url}`);
        this.setConnected(true);
        return;
      case "deliver":
        if (frame.blob.length > this.o.maxBlobBytes) return;
        try {
          this.onBlob?.(frame.blob);
        } catch {
          // the receiver's errors are its own
        }
        return;
      case "error":
        this.log.warn(`signaling: ${this.url} refused us: ${frame.reason}`);
        return;
    }
  }

  private startPings(ws: WebSocket): void {
    this.pingTimer = setInterval(() => {
      if (Date.now() - this.lastHeard > this.o.pingIntervalMs * 2.5) {
        this.log.debug(`signaling: ${this.url} went silent; reconnecting`);
        ws.terminate();
        return;
      }
      if (ws.readyState === ws.OPEN) ws.ping();
    }, this.o.pingIntervalMs);
    this.pingTimer.unref();
  }

  private stopTimers(): void {
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    if (this.pingTimer !== null) clearInterval(this.pingTimer);
    this.retryTimer = null;
    this.pingTimer = null;
  }
}
