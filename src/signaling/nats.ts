/**
 * A {@link SignalingTransport} over NATS, for deployments that outgrow one signaling server: NATS
 * servers form a cluster by themselves, and clients fail over between them. Each key listens on
 * its own subject, `<prefix>.<hex public key>` (prefix "tswg.signal" by default).
 *
 * NATS offers no proof of key ownership: anyone allowed on the NATS account can subscribe to any
 * subject, so restrict subjects with NATS permissions where that matters. Blobs stay sealed end to
 * end either way.
 *
 * The first connection is retried here with jittered back-off; once connected, the NATS client's
 * own reconnect logic (with gossiped cluster members) takes over and re-subscribes by itself.
 */
import type { NatsConnection, NodeConnectionOptions } from "@nats-io/transport-node";
import { KEY_LENGTH, keyToHex } from "../crypto/index.js";
import { silentLogger, type Logger } from "../log/logger.js";
import { backoffDelay, DEFAULT_MAX_BACKOFF_MS, DEFAULT_MIN_BACKOFF_MS } from "./backoff.js";
import { SignalingClosedError, SignalingUnavailableError, SignalingUrlError } from "./errors.js";
import { TransportBase } from "./transport-base.js";
import type { SignalingTransport } from "./types.js";

export const DEFAULT_SUBJECT_PREFIX = "tswg.signal";
const SUBJECT_PREFIX = /^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*$/;

export interface NatsServers {
  /** "host:port" entries. */
  servers: string[];
  /** Whether TLS is required (tls:// URLs). */
  tls: boolean;
  user?: string;
  pass?: string;
  token?: string;
}

/**
 * Parses `nats://host[:port][,nats://host2[:port]]...` (tls:// for TLS). Credentials may be in the
 * URLs (`nats://user:pass@host` or `nats://token@host`); all URLs must agree on them and on TLS.
 */
export function parseNatsUrls(text: string): NatsServers {
  const parts = text.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (parts.length === 0) throw new SignalingUrlError("no NATS server URL given");
  const out: NatsServers = { servers: [], tls: false };
  let first = true;
  for (const p of parts) {
    let url: URL;
    try {
      url = new URL(p);
    } catch {
      throw new SignalingUrlError(`invalid NATS URL ${JSON.stringify(p)}`);
    }
    if (url.protocol !== "nats:" && url.protocol !== "tls:") throw new SignalingUrlError(`expected nats:// or tls:// URLs, got ${JSON.stringify(p)}`);
    if (url.hostname === "") throw new SignalingUrlError(`NATS URL ${JSON.stringify(p)} has no host`);
    if ((url.pathname !== "" && url.pathname !== "/") || url.search !== "" || url.hash !== "") {
      throw new SignalingUrlError(`NATS URL ${JSON.stringify(p)} must be scheme://host[:port] only`);
    }
    const tls = url.protocol === "tls:";
    const user = url.username !== "" && url.password !== "" ? decodeURIComponent(url.username) : undefined;
    const pass = url.password !== "" ? decodeURIComponent(url.password) : undefined;
    const token = url.username !== "" && url.password === "" ? decodeURIComponent(url.username) : undefined;
    if (first) {
      Object.assign(out, { tls, user, pass, token });
      first = false;
    } else if (tls !== out.tls || user !== out.user || pass !== out.pass || token !== out.token) {
      throw new SignalingUrlError("all NATS URLs must use the same scheme and credentials");
    }
    out.servers.push(`${url.hostname}:${url.port || "4222"}`);
  }
  for (const k of ["user", "pass", "token"] as const) if (out[k] === undefined) delete out[k];
  return out;
}

export interface NatsTransportOptions {
  /** NATS URLs as for {@link parseNatsUrls}, or already parsed. */
  servers: string | NatsServers;
  /** Subjects are `<subjectPrefix>.<hex key>`. Default "tswg.signal". */
  subjectPrefix?: string;
  /** PEM CA certificate(s) to trust for tls:// instead of the system's. */
  ca?: string;
  logger?: Logger;
  /** How long open() waits for the first connection before rejecting (retrying goes on). Default 10000 ms. */
  connectTimeoutMs?: number;
  /** How long send() waits for a lost connection to return. Default 5000 ms. */
  sendWaitMs?: number;
  /** Largest blob sent or accepted. Default 16 KiB. */
  maxBlobBytes?: number;
  /** Try servers in the order given instead of shuffled (the NATS default). */
  noRandomize?: boolean;
  /** Pause before reconnecting to a server tried recently. Default 1000 ms (plus up to 1000 ms jitter). */
  reconnectTimeWaitMs?: number;
  /** Client-to-server ping interval used to notice a dead server. Default 10000 ms. */
  pingIntervalMs?: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
  random?: () => number;
}

export class NatsTransport extends TransportBase implements SignalingTransport {
  readonly servers: NatsServers;
  readonly subjectPrefix: string;
  private readonly o: NatsTransportOptions;
  private readonly log: Logger;
  private readonly maxBlobBytes: number;
  private nc: NatsConnection | null = null;
  private subject: string | null = null;
  private onBlob: ((blob: Uint8Array) => void) | null = null;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | null = null;

  constructor(opts: NatsTransportOptions) {
    super();
    this.servers = typeof opts.servers === "string" ? parseNatsUrls(opts.servers) : opts.servers;
    if (this.servers.servers.length === 0) throw new SignalingUrlError("no NATS server given");
    this.subjectPrefix = opts.subjectPrefix ?? DEFAULT_SUBJECT_PREFIX;
    if (!SUBJECT_PREFIX.test(this.subjectPrefix)) throw new SignalingUrlError(`invalid NATS subject prefix ${JSON.stringify(this.subjectPrefix)}`);
    this.o = opts;
    this.log = opts.logger ?? silentLogger;
    this.maxBlobBytes = opts.maxBlobBytes ?? 16 * 1024;
  }

  /** The subject blobs for `key` are published on. */
  subjectFor(key: Uint8Array): string {
    return `${this.subjectPrefix}.${keyToHex(key)}`;
  }

  /**
   * Connects and subscribes to `self`'s subject. Rejects with {@link SignalingUnavailableError}
   * if no server answered within `connectTimeoutMs`; trying goes on in the background until close().
   */
  async open(self: Uint8Array, onBlob: (blob: Uint8Array) => void): Promise<void> {
    if (this.closed) throw new SignalingClosedError();
    if (this.onBlob !== null) throw new Error("transport is already open");
    this.subject = this.subjectFor(self);
    this.onBlob = onBlob;
    void this.connectOnce();
    const ms = this.o.connectTimeoutMs ?? 10_000;
    if (!(await this.waitConnected(ms))) {
      if (this.closed) throw new SignalingClosedError();
      throw new SignalingUnavailableError(`no NATS server of ${this.describe()} reachable within ${ms} ms (still trying)`);
    }
  }

  async send(to: Uint8Array, blob: Uint8Array): Promise<void> {
    if (this.closed) throw new SignalingClosedError();
    if (this.onBlob === null) throw new Error("transport is not open");
    if (!(to instanceof Uint8Array) || to.length !== KEY_LENGTH) throw new TypeError(`recipient must be a ${KEY_LENGTH}-byte key`);
    if (blob.length === 0 || blob.length > this.maxBlobBytes) throw new RangeError(`blob of ${blob.length} bytes is outside 1..${this.maxBlobBytes}`);
    if (!(await this.waitConnected(this.o.sendWaitMs ?? 5000)) || this.nc === null) {
      if (this.closed) throw new SignalingClosedError();
      throw new SignalingUnavailableError(`not connected to NATS (${this.describe()})`);
    }
    try {
      this.nc.publish(this.subjectFor(to), blob);
    } catch (err) {
      throw new SignalingUnavailableError(`NATS publish failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.markClosed();
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const nc = this.nc;
    this.nc = null;
    if (nc !== null) await nc.close().catch(() => {});
  }

  private describe(): string {
    return this.servers.servers.join(",");
  }

  private options(): NodeConnectionOptions {
    const s = this.servers;
    return {
      servers: s.servers,
      user: s.user,
      pass: s.pass,
      token: s.token,
      tls: s.tls ? (this.o.ca !== undefined ? { ca: this.o.ca } : {}) : undefined,
      name: "tswg signaling",
      noRandomize: this.o.noRandomize ?? false,
      maxReconnectAttempts: -1,
      reconnectTimeWait: this.o.reconnectTimeWaitMs ?? 1000,
      reconnectJitter: 1000,
      reconnectJitterTLS: 1000,
      pingInterval: this.o.pingIntervalMs ?? 10_000,
      maxPingOut: 2,
      timeout: 10_000,
    };
  }

  private async connectOnce(): Promise<void> {
    this.retryTimer = null;
    if (this.closed) return;
    let nc: NatsConnection;
    try {
      // Loaded on first use: a process that signals over ws:// never pays for the NATS client.
      const { connect } = await import("@nats-io/transport-node");
      nc = await connect(this.options());
    } catch (err) {
      if (this.closed) return;
      const delay = backoffDelay(this.attempt++, { minMs: this.o.minBackoffMs ?? DEFAULT_MIN_BACKOFF_MS, maxMs: this.o.maxBackoffMs ?? DEFAULT_MAX_BACKOFF_MS, random: this.o.random });
      const line = `signaling: cannot reach NATS (${this.describe()}): ${err instanceof Error ? err.message : String(err)}; retrying in ${(delay / 1000).toFixed(1)} s`;
      if (this.attempt === 1) this.log.warn(line);
      else this.log.debug(line);
      this.retryTimer = setTimeout(() => void this.connectOnce(), delay);
      return;
    }
    if (this.closed) {
      await nc.close().catch(() => {});
      return;
    }
    this.nc = nc;
    this.attempt = 0;
    const subject = this.subject!;
    nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err !== null || this.closed || msg.data.length === 0 || msg.data.length > this.maxBlobBytes) return;
        try {
          this.onBlob?.(msg.data);
        } catch {
          // the receiver's errors are its own
        }
      },
    });
    void this.watch(nc);
    try {
      // The subscription is active at the server once a flush round trip has completed.
      await nc.flush();
    } catch {
      // a failure shows up as a status change or close, handled by watch()
    }
    if (this.nc === nc && !nc.isClosed()) {
      this.log.debug(`signaling: connected to NATS ${nc.getServer()}, subscribed to ${subject}`);
      this.setConnected(true);
    }
  }

  private async watch(nc: NatsConnection): Promise<void> {
    const closed = nc.closed();
    (async () => {
      for await (const s of nc.status()) {
        if (this.nc !== nc) return;
        if (s.type === "disconnect") {
          this.log.warn(`signaling: lost NATS server ${s.server}; reconnecting`);
          this.setConnected(false);
        } else if (s.type === "reconnect") {
          this.log.info(`signaling: reconnected to NATS server ${s.server}`);
          this.setConnected(true);
        }
      }
    })().catch(() => {});
    const err = await closed;
    if (this.nc !== nc || this.closed) return;
    // The client gave up for good (e.g. authorization failed): start over with our own back-off.
    this.nc = null;
    this.setConnected(false);
    const delay = backoffDelay(this.attempt++, { minMs: this.o.minBackoffMs ?? DEFAULT_MIN_BACKOFF_MS, maxMs: this.o.maxBackoffMs ?? DEFAULT_MAX_BACKOFF_MS, random: this.o.random });
    this.log.warn(`signaling: NATS connection closed${err ? `: ${err.message}` : ""}; retrying in ${(delay / 1000).toFixed(1)} s`);
    this.retryTimer = setTimeout(() => void this.connectOnce(), delay);
  }
}
