/**
 * A coturn (Debian `turnserver`) on 127.0.0.1 for ICE tests: private config in a temp dir, static
 * long-term credentials, relaying from 127.0.0.1 with loopback peers allowed (coturn refuses
 * them by default), optionally TLS with a fresh self-signed certificate. Stopped by PID.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import dgram from "node:dgram";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const TURN_USER = "tswg";
export const TURN_PASSWORD = "ice-test-secret";

export interface LoopbackTurn {
  port: number;
  tlsPort: number | null;
  /** PEM of the self-signed certificate when TLS is on. */
  certPem: string | null;
  stop(): Promise<void>;
  output(): string;
}

export function turnserverAvailable(): boolean {
  return spawnSync("sh", ["-c", "command -v turnserver"]).status === 0;
}

export function opensslAvailable(): boolean {
  return spawnSync("sh", ["-c", "command -v openssl"]).status === 0;
}

/** A port free for both UDP and TCP on 127.0.0.1 right now. */
async function freePort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = 20000 + Math.floor(Math.random() * 10000);
    const okTcp = await new Promise<boolean>((resolve) => {
      const srv = net.createServer();
      srv.once("error", () => resolve(false));
      srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
    });
    if (!okTcp) continue;
    const okUdp = await new Promise<boolean>((resolve) => {
      const s = dgram.createSocket("udp4");
      s.once("error", () => {
        s.close();
        resolve(false);
      });
      s.bind(port, "127.0.0.1", () => s.close(() => resolve(true)));
    });
    if (okUdp) return port;
  }
  throw new Error("no free port for coturn");
}

/** Sends STUN binding requests until one is answered. */
async function waitForStun(port: number, timeoutMs: number): Promise<void> {
  const sock = dgram.createSocket("udp4");
  try {
    await new Promise<void>((resolve, reject) => {
      const deadline = setTimeout(() => reject(new Error(`coturn did not answer STUN on 127.0.0.1:${port} within ${timeoutMs} ms`)), timeoutMs);
      sock.on("message", () => {
        clearTimeout(deadline);
        clearInterval(tick);
        resolve();
      });
      const req = Buffer.alloc(20);
      req.writeUInt16BE(0x0001, 0);
      req.writeUInt32BE(0x2112a442, 4);
      randomBytes(12).copy(req, 8);
      const tick = setInterval(() => sock.send(req, port, "127.0.0.1"), 100);
      sock.send(req, port, "127.0.0.1");
    });
  } finally {
    sock.close();
  }
}

async function waitForTcp(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, "127.0.0.1", () => {
        c.destroy();
        resolve(true);
      });
      c.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`coturn did not listen on TCP 127.0.0.1:${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function startLoopbackTurn(opts: { tls?: boolean } = {}): Promise<LoopbackTurn> {
  const dir = mkdtempSync(join(tmpdir(), `tswgt-turn-${process.pid}-`));
  const port = await freePort();
  const tlsPort = opts.tls ? await freePort() : null;
  const relayMin = 40000 + Math.floor(Math.random() * 200) * 100;
  const lines = [
    "listening-ip=127.0.0.1",
    "relay-ip=127.0.0.1",
    `listening-port=${port}`,
    `min-port=${relayMin}`,
    `max-port=${relayMin + 99}`,
    "realm=tswg.test",
    "lt-cred-mech",
    `user=${TURN_USER}:${TURN_PASSWORD}`,
    "fingerprint",
    "no-cli",
    "no-dtls",
    "no-multicast-peers",
    // Loopback peers are refused by default (a relay must not reach the server's own host).
    "allow-loopback-peers",
    "allowed-peer-ip=127.0.0.1",
    `userdb=${join(dir, "turndb")}`,
    `pidfile=${join(dir, "turnserver.pid")}`,
    "log-file=stdout",
    "simple-log",
  ];
  let certPem: string | null = null;
  if (tlsPort !== null) {
    const cert = join(dir, "cert.pem");
    const key = join(dir, "key.pem");
    const r = spawnSync(
      "openssl",
      ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
      { timeout: 15_000 },
    );
    if (r.status !== 0) throw new Error(`openssl failed: ${r.stderr?.toString()}`);
    certPem = readFileSync(cert, "utf8");
    lines.push(`tls-listening-port=${tlsPort}`, `cert=${cert}`, `pkey=${key}`);
  } else {
    lines.push("no-tls");
  }
  const conf = join(dir, "turnserver.conf");
  writeFileSync(conf, lines.join("\n") + "\n", { mode: 0o600 });

  let out = "";
  const child: ChildProcess = spawn("turnserver", ["-c", conf], { stdio: ["ignore", "pipe", "pipe"], detached: true });
  child.stdout?.on("data", (d: Buffer) => (out = (out + d.toString()).slice(-65536)));
  child.stderr?.on("data", (d: Buffer) => (out = (out + d.toString()).slice(-65536)));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const pid = child.pid;

  const stop = async (): Promise<void> => {
    if (pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(pid, "SIGTERM");
      } catch {
        // already gone
      }
      const killer = setTimeout(() => {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
      }, 2000);
      await exited;
      clearTimeout(killer);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    await waitForStun(port, 10_000);
    if (tlsPort !== null) await waitForTcp(tlsPort, 10_000);
  } catch (e) {
    await stop();
    throw new Error(`${(e as Error).message}\n${out.slice(-2000)}`);
  }
  return { port, tlsPort, certPem, stop, output: () => out };
}
