/**
 * One attempt to open a UoTLV/1 connection to a given address: TCP connect, TLS for https://,
 * the HTTP upgrade. Each phase has its own time limit (10 s by default, as ProxyGuard's).
 * Name resolution, retries and reconnecting belong to the client (client.ts).
 */
import net from "node:net";
import tls from "node:tls";
import { CONNECT_TIMEOUT_MS } from "./constants.js";
import { UotlvConnection, type UotlvConnectionOptions } from "./connection.js";
import { checkUpgradeResponse, formatUpgradeRequest, UpgradeError } from "./handshake.js";
import { HeadError, HeadReader, parseResponseHead } from "./http-head.js";
import { connectMarked } from "./socket-mark.js";
import { systemCaPem } from "./system-ca.js";
import type { TunnelUrl } from "./url.js";
import { defaultUserAgent } from "./user-agent.js";

export interface DialOptions {
  url: TunnelUrl;
  /** The IP address to connect to (the URL's host, resolved). */
  address: string;
  /** TCP source port; 0 or absent = any. */
  localPort?: number;
  /** SO_MARK for the socket, set before it connects; 0 or absent = none. */
  mark?: number;
  /** PEM trust anchors for https:// instead of the system's (see system-ca.ts). */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Default "tswg/<version>". */
  userAgent?: string;
  /** Limit for each of TCP connect, TLS handshake and upgrade. Default 10 s. */
  timeoutMs?: number;
  /** Options of the resulting connection (idle timeout, buffer cap). */
  connection?: UotlvConnectionOptions;
  /** Gives up early (the client is being closed). */
  signal?: AbortSignal;
}

/** Opens a TCP connection, with TLS and the upgrade; rejects with a message naming the phase that failed. */
export async function dialUotlv(o: DialOptions): Promise<UotlvConnection> {
  const timeoutMs = o.timeoutMs ?? CONNECT_TIMEOUT_MS;
  const where = net.isIPv6(o.address) ? `[${o.address}]:${o.url.port}` : `${o.address}:${o.url.port}`;
  const tcp = await phase<net.Socket>(`TCP connect to ${where}`, timeoutMs, o.signal, (done, fail) => {
    let s: net.Socket;
    try {
      s = o.mark
        ? connectMarked({ host: o.address, port: o.url.port, localPort: o.localPort, mark: o.mark })
        : net.connect({ host: o.address, port: o.url.port, localPort: o.localPort || undefined });
    } catch (err) {
      fail(err as Error);
      return () => {};
    }
    s.once("connect", () => done(s));
    s.once("error", fail);
    return () => s.destroy();
  });
  let sock: net.Socket = tcp;
  try {
    if (o.url.secure) sock = await startTls(tcp, o, timeoutMs, where);
    const rest = await upgrade(sock, o, timeoutMs, where);
    return new UotlvConnection(sock, rest, o.connection);
  } catch (err) {
    sock.destroy();
    tcp.destroy();
    throw err;
  }
}

async function startTls(tcp: net.Socket, o: DialOptions, timeoutMs: number, where: string): Promise<tls.TLSSocket> {
  const hostname = o.url.hostname;
  const ca = o.ca ?? systemCaPem();
  const t = await phase<tls.TLSSocket>(`TLS handshake with ${where}`, timeoutMs, o.signal, (done, fail) => {
    const s = tls.connect({
      socket: tcp,
      // SNI carries names only; certificates are checked against `host` either way.
      servername: net.isIP(hostname) === 0 ? hostname : undefined,
      host: hostname,
      minVersion: "TLSv1.3",
      // HTTP/1.1 only: the upgrade does not exist in HTTP/2.
      ALPNProtocols: ["http/1.1"],
      ca,
    });
    s.once("secureConnect", () => done(s));
    s.once("error", fail);
    return () => s.destroy();
  });
  if (t.alpnProtocol !== false && t.alpnProtocol !== "http/1.1") {
    t.destroy();
    throw new Error(`TLS handshake with ${where}: server chose ALPN protocol ${String(t.alpnProtocol)}`);
  }
  return t;
}

/** Sends the upgrade request and reads the answer; resolves with the bytes that followed it. */
function upgrade(sock: net.Socket, o: DialOptions, timeoutMs: number, where: string): Promise<Buffer> {
  const request = formatUpgradeRequest({ path: o.url.path, host: o.url.hostHeader, userAgent: o.userAgent ?? defaultUserAgent() });
  return phase<Buffer>(`HTTP upgrade at ${where}`, timeoutMs, o.signal, (done, fail) => {
    const reader = new HeadReader();
    const detach = (): void => {
      // Pause before letting go, so no frame is lost before the connection takes over.
      sock.pause();
      sock.off("data", onData);
      sock.off("end", onEnd);
      sock.off("error", fail);
    };
    const onData = (chunk: Buffer): void => {
      let got;
      try {
        got = reader.push(chunk);
        if (got === null) return;
        checkUpgradeResponse(parseResponseHead(got.head));
      } catch (err) {
        detach();
        fail(err instanceof HeadError ? new UpgradeError(`bad answer: ${err.message}`) : (err as Error));
        return;
      }
      detach();
      done(got.rest);
    };
    const onEnd = (): void => {
      detach();
      fail(new UpgradeError("server closed the connection before answering"));
    };
    sock.on("data", onData);
    sock.once("end", onEnd);
    sock.once("error", fail);
    sock.write(request);
    return () => detach();
  });
}

/**
 * Runs one asynchronous step with a time limit and an abort signal. `start` returns the cleanup
 * that undoes it on timeout or abort.
 */
function phase<T>(
  what: string,
  timeoutMs: number,
  signal: AbortSignal | undefined,
  start: (done: (v: T) => void, fail: (e: Error) => void) => () => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    let cleanup: () => void = () => {};
    const finish = (): void => {
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    };
    const fail = (e: Error): void => {
      if (settled) return;
      finish();
      cleanup();
      // System call errors say it best by their code (ECONNREFUSED); others by their message.
      const errno = e as NodeJS.ErrnoException;
      const text = errno.syscall !== undefined && errno.code !== undefined ? errno.code : e.message;
      reject(new Error(`${what}: ${text}`, { cause: e }));
    };
    const onAbort = (): void => fail(new Error("cancelled"));
    const timer = setTimeout(() => fail(new Error(`timed out after ${Math.round(timeoutMs / 100) / 10} s`)), timeoutMs);
    timer.unref();
    if (signal?.aborted) {
      fail(new Error("cancelled"));
      return;
    }
    signal?.addEventListener("abort", onAbort, { once: true });
    cleanup = start((v) => {
      if (settled) return;
      finish();
      resolve(v);
    }, fail);
  });
}
