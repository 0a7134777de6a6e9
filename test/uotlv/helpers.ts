/**
 * Shared pieces of the UoTLV/1 tests: a throw-away certificate authority made with openssl, raw
 * TCP exchanges for feeding a server bad input, and waiting for datagrams.
 */
import dgram from "node:dgram";
import net from "node:net";

export { makeTestPki, type TestPki } from "../helpers/pki.js";

export interface RawExchange {
  /** Everything the server sent, as latin1 text. */
  text: string;
  bytes: Buffer;
  /** Whether the server closed the connection (within the time limit). */
  closed: boolean;
  ms: number;
}

/**
 * Connects, writes `chunks` (with `gapMs` between them), optionally half-closes, and collects
 * what comes back until the server closes or `waitMs` passes.
 */
export function rawExchange(port: number, chunks: Array<string | Uint8Array>, opts: { waitMs?: number; end?: boolean; gapMs?: number; host?: string } = {}): Promise<RawExchange> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: opts.host ?? "127.0.0.1" });
    const got: Buffer[] = [];
    let finished = false;
    const finish = (closed: boolean): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      s.destroy();
      const bytes = Buffer.concat(got);
      resolve({ text: bytes.toString("latin1"), bytes, closed, ms: performance.now() - t0 });
    };
    const timer = setTimeout(() => finish(false), opts.waitMs ?? 3000);
    s.on("data", (d: Buffer) => got.push(d));
    s.on("close", () => finish(true));
    s.on("error", (e: NodeJS.ErrnoException) => (e.code === "ECONNRESET" ? finish(true) : reject(e)));
    s.on("connect", async () => {
      for (const c of chunks) {
        if (s.destroyed) return;
        s.write(typeof c === "string" ? Buffer.from(c, "latin1") : c);
        if (opts.gapMs) await new Promise((r) => setTimeout(r, opts.gapMs));
      }
      if (opts.end) s.end();
    });
  });
}

export const UPGRADE_REQUEST = "GET /proxyguard HTTP/1.1\r\nHost: test\r\nConnection: Upgrade\r\nUpgrade: UoTLV/1\r\n\r\n";

/** A UDP socket on 127.0.0.1 that sends every datagram back where it came from. */
export async function udpEcho(): Promise<{ port: number; sources: Set<number>; close(): Promise<void> }> {
  const sock = dgram.createSocket("udp4");
  const sources = new Set<number>();
  sock.on("message", (msg, r) => {
    sources.add(r.port);
    sock.send(msg, r.port, r.address);
  });
  await new Promise<void>((res) => sock.bind(0, "127.0.0.1", () => res()));
  return { port: sock.address().port, sources, close: () => new Promise((r) => sock.close(() => r())) };
}

/** A UDP socket on 127.0.0.1 that records what it receives. */
export async function udpSink(port = 0): Promise<{ sock: dgram.Socket; port: number; got: Buffer[]; close(): Promise<void> }> {
  const sock = dgram.createSocket("udp4");
  const got: Buffer[] = [];
  sock.on("message", (m) => got.push(m));
  await new Promise<void>((res, rej) => {
    sock.once("error", rej);
    sock.bind(port, "127.0.0.1", () => res());
  });
  return { sock, port: sock.address().port, got, close: () => new Promise((r) => sock.close(() => r())) };
}

/** A TCP port on 127.0.0.1 that is free right now. */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
