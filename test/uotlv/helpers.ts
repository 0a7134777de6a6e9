/**
 * Shared pieces of the UoTLV/1 tests: a throw-away certificate authority made with openssl, raw
 * TCP exchanges for feeding a server bad input, and waiting for datagrams.
 */
import { execFileSync } from "node:child_process";
import dgram from "node:dgram";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface TestPki {
  dir: string;
  caFile: string;
  certFile: string;
  keyFile: string;
  ca: string;
  cert: string;
  key: string;
  remove(): void;
}

/** A CA and a server certificate for the given names and addresses, signed by it. */
export function makeTestPki(names: { dns?: string[]; ips?: string[] }): TestPki {
  const dir = mkdtempSync(join(tmpdir(), "tswgt-pki-"));
  const f = (n: string): string => join(dir, n);
  const ossl = (args: string[]): void => void execFileSync("openssl", args, { stdio: ["ignore", "ignore", "pipe"] });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  ossl(["req", "-x509", ...ec, "-keyout", f("ca.key"), "-out", f("ca.pem"), "-days", "2", "-subj", "/CN=tswg test CA",
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
  ossl(["req", ...ec, "-keyout", f("server.key"), "-out", f("server.csr"), "-subj", "/CN=tswg test server"]);
  const san = [...(names.dns ?? []).map((d) => `DNS:${d}`), ...(names.ips ?? []).map((i) => `IP:${i}`)].join(",");
  writeFileSync(f("ext.cnf"), `subjectAltName=${san}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n`);
  ossl(["x509", "-req", "-in", f("server.csr"), "-CA", f("ca.pem"), "-CAkey", f("ca.key"), "-CAcreateserial",
    "-out", f("server.pem"), "-days", "2", "-extfile", f("ext.cnf")]);
  return {
    dir,
    caFile: f("ca.pem"),
    certFile: f("server.pem"),
    keyFile: f("server.key"),
    ca: readFileSync(f("ca.pem"), "utf8"),
    cert: readFileSync(f("server.pem"), "utf8"),
    key: readFileSync(f("server.key"), "utf8"),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

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
