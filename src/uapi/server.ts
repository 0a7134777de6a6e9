/**
 * The UAPI unix socket: `/var/run/wireguard/<iface>.sock`, where the `wg` tool finds userspace
 * WireGuard interfaces.
 *
 * The socket is created inside a private (0700) temporary directory, made 0600 there and only
 * then hard-linked into place, so nobody but the owner can ever connect to it, and the link
 * fails rather than replacing a socket another process created in the meantime.
 */
import { promises as fs } from "node:fs";
import * as net from "node:net";
import { join } from "node:path";
import { silentLogger, type Logger } from "../log/logger.js";
import { UapiErrno, UapiError } from "./error.js";
import { formatGet, formatStatus, parseSet } from "./protocol.js";
import type { UapiHandler } from "./types.js";

export const DEFAULT_UAPI_DIR = "/var/run/wireguard";

/** Interface names as wg-quick accepts them (at most 15 characters, as Linux allows). */
const IFACE_NAME = /^[a-zA-Z0-9_=+.-]{1,15}$/;

export interface UapiServerOptions {
  /** Directory of the socket; default {@link DEFAULT_UAPI_DIR}. */
  dir?: string;
  /** Largest request accepted, in bytes; default 4 MiB (a few thousand peers). */
  maxRequestBytes?: number;
  /** Most lines in one request; default 262144. */
  maxLines?: number;
  /** Connections served at once; further ones are refused. Default 64. */
  maxConnections?: number;
  /**
   * A connection that sends nothing for this long while no request of its own is being answered
   * is closed, so idle clients cannot hold every slot and lock out `wg`. Default 10000 ms.
   */
  idleTimeoutMs?: number;
  /** Where failed requests are reported; default silent. */
  logger?: Logger;
}

/** Validates an interface name for use as a socket name; throws with a clear message. */
export function validateInterfaceName(name: string): void {
  if (!IFACE_NAME.test(name) || name === "." || name === "..") {
    throw new Error(`"${name}" is not a valid interface name (1-15 characters from a-z A-Z 0-9 _ = + . -)`);
  }
}

/** Serves the UAPI protocol for one interface. */
export class UapiServer {
  #server: net.Server | undefined;
  #starting = false;
  #path: string | undefined;
  #identity: { dev: number; ino: number } | undefined;
  readonly #connections = new Set<net.Socket>();
  // Requests from all connections run one at a time, as on a single device lock.
  #queue: Promise<unknown> = Promise.resolve();

  /** The socket path while listening. */
  get path(): string | undefined {
    return this.#path;
  }

  async listen(iface: string, handler: UapiHandler, options: UapiServerOptions = {}): Promise<void> {
    if (this.#server !== undefined || this.#starting) throw new Error(`UAPI server is already listening on ${this.#path ?? "a socket"}`);
    validateInterfaceName(iface);
    this.#starting = true;
    try {
      await this.#start(iface, handler, options);
    } finally {
      this.#starting = false;
    }
  }

  async #start(iface: string, handler: UapiHandler, options: UapiServerOptions): Promise<void> {
    const dir = options.dir ?? DEFAULT_UAPI_DIR;
    const limits: Limits = {
      bytes: positive("maxRequestBytes", options.maxRequestBytes ?? 4 * 1024 * 1024),
      lines: positive("maxLines", options.maxLines ?? 262_144),
      idleMs: positive("idleTimeoutMs", options.idleTimeoutMs ?? 10_000),
    };
    const logger = options.logger ?? silentLogger;
    const path = join(dir, `${iface}.sock`);
    if (Buffer.byteLength(path) > 100) throw new Error(`UAPI socket path ${path} is too long for a unix socket`);

    await fs.mkdir(dir, { recursive: true, mode: 0o755 });
    await claim(path, iface);

    const server = net.createServer({ allowHalfOpen: false, pauseOnConnect: false }, (socket) => {
      this.#connections.add(socket);
      socket.on("close", () => this.#connections.delete(socket));
      new Connection(socket, handler, limits, logger, (task) => this.#serialize(task));
    });
    server.maxConnections = positive("maxConnections", options.maxConnections ?? 64);
    server.on("error", (err) => logger.error(`UAPI socket ${path}: ${err.message}`));

    const privateDir = await fs.mkdtemp(join(dir, `.${iface}-`));
    const tmpPath = join(privateDir, "s");
    try {
      await new Promise<void>((resolve, reject) => {
        const onError = (err: Error): void => reject(err);
        server.once("error", onError);
        server.listen(tmpPath, () => {
          server.off("error", onError);
          resolve();
        });
      });
      await fs.chmod(tmpPath, 0o600);
      await publish(tmpPath, path, iface);
    } catch (err) {
      await closeServer(server);
      throw err;
    } finally {
      await fs.rm(privateDir, { recursive: true, force: true });
    }
    const st = await fs.stat(path);
    this.#identity = { dev: st.dev, ino: st.ino };
    this.#server = server;
    this.#path = path;
  }

  /** Stops listening, drops open connections and removes the socket file (if it is still ours). */
  async close(): Promise<void> {
    const server = this.#server;
    const path = this.#path;
    const identity = this.#identity;
    this.#server = undefined;
    this.#path = undefined;
    this.#identity = undefined;
    if (server === undefined || path === undefined) return;
    for (const socket of this.#connections) socket.destroy();
    this.#connections.clear();
    await closeServer(server);
    try {
      const st = await fs.lstat(path);
      // Another process may have claimed the name after a stale-socket cleanup: leave its socket.
      if (identity !== undefined && st.dev === identity.dev && st.ino === identity.ino) await fs.unlink(path);
    } catch (err) {
      if (errnoCode(err) !== "ENOENT") throw err;
    }
  }

  #serialize<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(task, task);
    this.#queue = run.catch(() => undefined);
    return run;
  }
}

interface Limits {
  bytes: number;
  lines: number;
  idleMs: number;
}

type Request =
  | { kind: "get" }
  | { kind: "set"; lines: string[] }
  | { kind: "fatal"; errno: number; message: string };

const NL = 0x0a;
const LONGEST_OPERATION = "set=1\n".length;

/** One client connection: requests are read and answered strictly one after another. */
class Connection {
  #buf: Buffer = Buffer.alloc(0);
  // Where the search for the end of a pending set request resumes, and the lines seen so far.
  #scanFrom = 0;
  #linesSeen = 0;
  #busy = false;
  #done = false;

  constructor(
    private readonly socket: net.Socket,
    private readonly handler: UapiHandler,
    private readonly limits: Limits,
    private readonly logger: Logger,
    private readonly serialize: <T>(task: () => Promise<T>) => Promise<T>,
  ) {
    socket.on("data", (chunk: Buffer) => {
      if (this.#done) return;
      this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
      void this.#pump();
    });
    socket.on("error", (err) => logger.debug(`UAPI connection: ${err.message}`));
    socket.setTimeout(limits.idleMs, () => {
      // Time spent answering (the socket is paused then) is not the client's idling.
      if (this.#busy) socket.setTimeout(limits.idleMs);
      else socket.destroy();
    });
    socket.on("close", () => {
      this.#done = true;
      this.#buf = Buffer.alloc(0);
    });
  }

  async #pump(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    // Hold further input while answering, so a client cannot queue unbounded data.
    this.socket.pause();
    try {
      while (!this.#done) {
        const request = this.#next();
        if (request === undefined) break;
        if (request.kind === "fatal") {
          this.logger.warn(`UAPI request refused: ${request.message}`);
          this.#finish(formatStatus(request.errno));
          break;
        }
        const { reply, fatal } = await this.serialize(() => this.#answer(request));
        if (fatal) {
          this.#finish(reply);
          break;
        }
        if (!this.#done && !this.socket.destroyed) this.socket.write(reply);
      }
    } catch (err) {
      // Only a bug can land here; never let it take the process down.
      this.logger.error(`UAPI connection failed: ${describe(err)}`);
      this.#finish(formatStatus(UapiErrno.UNKNOWN));
    } finally {
      this.#busy = false;
      if (!this.#done && !this.socket.destroyed) this.socket.resume();
    }
  }

  /** The reply to a request; `fatal` when the client broke the framing and must be dropped. */
  async #answer(request: { kind: "get" } | { kind: "set"; lines: string[] }): Promise<{ reply: string; fatal: boolean }> {
    try {
      if (request.kind === "get") return { reply: formatGet(await this.handler.get()) + formatStatus(0), fatal: false };
      const parsed = parseSet(request.lines);
      await this.handler.set(parsed);
      return { reply: formatStatus(0), fatal: false };
    } catch (err) {
      if (err instanceof UapiError) {
        this.logger.warn(`UAPI ${request.kind} failed: errno=-${err.errno}: ${err.message}`);
        return { reply: formatStatus(err.errno), fatal: err.errno === UapiErrno.PROTOCOL };
      }
      this.logger.error(`UAPI ${request.kind} failed: ${describe(err)}`);
      return { reply: formatStatus(UapiErrno.UNKNOWN), fatal: false };
    }
  }

  /** The next complete request in the buffer, or undefined if more input is needed. */
  #next(): Request | undefined {
    const buf = this.#buf;
    const opEnd = buf.indexOf(NL);
    if (opEnd < 0) {
      if (buf.length > LONGEST_OPERATION) return { kind: "fatal", errno: UapiErrno.PROTOCOL, message: "unknown operation" };
      return undefined;
    }
    const op = buf.toString("latin1", 0, opEnd);
    if (op === "get=1") {
      if (buf.length < opEnd + 2) return undefined;
      if (buf[opEnd + 1] !== NL) return { kind: "fatal", errno: UapiErrno.INVALID, message: "trailing data after get=1" };
      this.#consume(opEnd + 2);
      return { kind: "get" };
    }
    if (op !== "set=1") {
      return { kind: "fatal", errno: UapiErrno.PROTOCOL, message: `unknown operation ${JSON.stringify(op.slice(0, 40))}` };
    }
    // The body ends at the first empty line; resume scanning where the last chunk ended.
    let pos = Math.max(this.#scanFrom, opEnd);
    for (;;) {
      const nl = buf.indexOf(NL, pos);
      if (nl < 0 || nl + 1 >= buf.length) break;
      if (buf[nl + 1] === NL) {
        const body = nl === opEnd ? "" : buf.toString("latin1", opEnd + 1, nl);
        this.#consume(nl + 2);
        return { kind: "set", lines: body === "" ? [] : body.split("\n") };
      }
      this.#linesSeen++;
      pos = nl + 1;
    }
    this.#scanFrom = pos;
    if (buf.length > this.limits.bytes) {
      return { kind: "fatal", errno: UapiErrno.TOO_LARGE, message: `request exceeds ${this.limits.bytes} bytes` };
    }
    if (this.#linesSeen > this.limits.lines) {
      return { kind: "fatal", errno: UapiErrno.TOO_LARGE, message: `request exceeds ${this.limits.lines} lines` };
    }
    return undefined;
  }

  #consume(n: number): void {
    this.#buf = this.#buf.subarray(n);
    this.#scanFrom = 0;
    this.#linesSeen = 0;
  }

  /** Sends a last reply and closes the connection. */
  #finish(reply: string): void {
    this.#done = true;
    this.#buf = Buffer.alloc(0);
    if (this.socket.destroyed) return;
    this.socket.end(reply, () => this.socket.destroy());
  }
}

/** Makes sure `path` is free: refuses a live socket or a non-socket, removes a stale socket. */
async function claim(path: string, iface: string): Promise<void> {
  let st;
  try {
    st = await fs.lstat(path);
  } catch (err) {
    if (errnoCode(err) === "ENOENT") return;
    throw err;
  }
  if (!st.isSocket()) throw new Error(`${path} exists and is not a socket; not replacing it`);
  const state = await probe(path);
  if (state === "live") throw inUse(iface, path);
  if (state === "stale") {
    try {
      await fs.unlink(path);
    } catch (err) {
      if (errnoCode(err) !== "ENOENT") throw err;
    }
  }
}

/** Whether a process answers on a unix socket path. */
function probe(path: string): Promise<"live" | "stale" | "absent"> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ path });
    const timer = setTimeout(() => {
      // A listener that does not even accept is still someone else's.
      socket.destroy();
      resolve("live");
    }, 2000);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.destroy();
      resolve("live");
    });
    socket.once("error", (err) => {
      clearTimeout(timer);
      socket.destroy();
      const code = errnoCode(err);
      if (code === "ECONNREFUSED") resolve("stale");
      else if (code === "ENOENT") resolve("absent");
      else if (code === "EAGAIN") resolve("live");
      else reject(new Error(`cannot check UAPI socket ${path}: ${err.message}`));
    });
  });
}

/** Moves the finished socket from its private directory to its public name without clobbering. */
async function publish(tmpPath: string, path: string, iface: string): Promise<void> {
  try {
    await fs.link(tmpPath, path);
  } catch (err) {
    const code = errnoCode(err);
    if (code === "EEXIST") throw inUse(iface, path);
    if (code !== "EPERM" && code !== "ENOTSUP" && code !== "EOPNOTSUPP" && code !== "EXDEV" && code !== "EMLINK") throw err;
    // A file system without hard links: fall back to a rename right after one more check.
    await claim(path, iface);
    await fs.rename(tmpPath, path);
    return;
  }
  await fs.unlink(tmpPath);
}

function inUse(iface: string, path: string): Error {
  return new Error(`interface ${iface} is in use by another process (${path} answers)`);
}

function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      resolve();
      return;
    }
    server.close(() => resolve());
  });
}

function positive(what: string, n: number): number {
  if (!Number.isInteger(n) || n <= 0) throw new RangeError(`${what} must be a positive integer, got ${n}`);
  return n;
}

function errnoCode(err: unknown): string | undefined {
  return typeof err === "object" && err !== null && "code" in err ? String((err as { code: unknown }).code) : undefined;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
