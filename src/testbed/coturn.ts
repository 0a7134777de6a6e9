/**
 * A STUN/TURN server for test topologies: Debian's coturn (`turnserver`) run in a node's namespace
 * with a generated configuration — static long-term credentials, the node's address for
 * listening and relaying, no TLS unless asked (then with a fresh self-signed certificate).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { missingCommands, topologyUnavailableReason } from "./privileges.js";
import { runCommand, type TrackedProcess } from "./proc.js";
import type { NetNode } from "./topology.js";
import { waitFor } from "./wait.js";

export interface CoturnOptions {
  /** STUN/TURN port over UDP and TCP. Default 3478. */
  port?: number;
  /** Long-term credentials. Defaults "tswg" / "tswg-test-secret" / realm "tswg.test". */
  username?: string;
  password?: string;
  realm?: string;
  /** Relay port range. Default 49152-65535 (coturn's). */
  relayPorts?: { min: number; max: number };
  /** Also listen for TURN over TLS (TCP) with a self-signed certificate. Default false. */
  tls?: boolean;
  /** TLS port. Default 5349. */
  tlsPort?: number;
  /** Log every session and request (coturn's `verbose`), e.g. to see allocations succeed. Default false. */
  verbose?: boolean;
  /** More coturn configuration lines, e.g. ["allow-loopback-peers"]. */
  extraConfig?: string[];
  /** How long to wait for the listeners. Default 15000 ms. */
  startTimeoutMs?: number;
}

/** A running coturn. Stopped with the topology, or earlier with {@link stop}. */
export class Coturn {
  /** @internal made by {@link startCoturn} */
  constructor(
    /** The node it runs on. */
    readonly node: NetNode,
    /** Its listening and relay address: the node's first address. */
    readonly ip: string,
    readonly port: number,
    readonly tlsPort: number | undefined,
    readonly username: string,
    readonly password: string,
    readonly realm: string,
    readonly process: TrackedProcess,
    /** Private directory with turnserver.conf (and cert.pem / key.pem with TLS); removed at cleanup. */
    readonly dir: string,
    /** The self-signed certificate (PEM) when TLS is on, for clients that pin it. */
    readonly certPem: string | undefined,
  ) {}

  get pid(): number {
    return this.process.pid;
  }

  /** `stun:<ip>:<port>` */
  get stunUrl(): string {
    return `stun:${this.ip}:${this.port}`;
  }

  /** `turn:<ip>:<port>?transport=udp|tcp` */
  turnUrl(transport: "udp" | "tcp" = "udp"): string {
    return `turn:${this.ip}:${this.port}?transport=${transport}`;
  }

  /** `turns:<ip>:<tlsPort>?transport=tcp`; throws when TLS is off. */
  get turnsUrl(): string {
    if (this.tlsPort === undefined) throw new Error("coturn was started without TLS");
    return `turns:${this.ip}:${this.tlsPort}?transport=tcp`;
  }

  /** Stops it by PID (SIGTERM, then SIGKILL). */
  async stop(graceMs = 2000): Promise<void> {
    await this.process.stop(graceMs);
  }
}

/** The turnserver.conf for the given settings (exported for inspection and tests). */
export function coturnConfig(s: {
  ip: string;
  port: number;
  username: string;
  password: string;
  realm: string;
  dir: string;
  relayPorts: { min: number; max: number };
  tls?: { port: number; cert: string; key: string };
  extraConfig?: string[];
}): string {
  for (const [what, v] of [
    ["username", s.username],
    ["password", s.password],
    ["realm", s.realm],
  ] as const) {
    // ":" separates user and password on the user= line; line breaks would inject options.
    if (!/^[A-Za-z0-9._~+-]{1,64}$/.test(v)) throw new Error(`coturn ${what} "${v}" must be 1-64 of letters, digits and ._~+-`);
  }
  for (const p of [s.port, s.relayPorts.min, s.relayPorts.max, ...(s.tls ? [s.tls.port] : [])]) {
    if (!Number.isInteger(p) || p < 1 || p > 65535) throw new Error(`coturn port ${p} is not 1-65535`);
  }
  if (s.relayPorts.min > s.relayPorts.max) throw new Error(`coturn relay ports ${s.relayPorts.min}-${s.relayPorts.max} are reversed`);
  for (const line of s.extraConfig ?? []) if (/[\r\n]/.test(line)) throw new Error("coturn extraConfig lines must not contain line breaks");
  const lines = [
    `listening-ip=${s.ip}`,
    `relay-ip=${s.ip}`,
    `listening-port=${s.port}`,
    `min-port=${s.relayPorts.min}`,
    `max-port=${s.relayPorts.max}`,
    `realm=${s.realm}`,
    "lt-cred-mech",
    `user=${s.username}:${s.password}`,
    "fingerprint",
    "no-cli",
    "no-dtls",
    // Everything coturn writes stays in the private directory, so instances never share state.
    `userdb=${join(s.dir, "turndb")}`,
    `pidfile=${join(s.dir, "turnserver.pid")}`,
    "log-file=stdout",
    "simple-log",
  ];
  if (s.tls) lines.push(`tls-listening-port=${s.tls.port}`, `cert=${s.tls.cert}`, `pkey=${s.tls.key}`, "no-tlsv1", "no-tlsv1_1");
  else lines.push("no-tls");
  lines.push(...(s.extraConfig ?? []));
  return lines.join("\n") + "\n";
}

/**
 * Starts coturn on `node` (listening on and relaying from the node's address) and resolves once
 * its UDP and TCP listeners (and the TLS one) are up. Throws with coturn's output if it exits or
 * does not listen in time; the process is stopped with the topology in any case.
 */
export async function startCoturn(node: NetNode, opts: CoturnOptions = {}): Promise<Coturn> {
  const ip = node.ip;
  const port = opts.port ?? 3478;
  const username = opts.username ?? "tswg";
  const password = opts.password ?? "tswg-test-secret";
  const realm = opts.realm ?? "tswg.test";
  const dir = node.host.bed.tempDir("coturn");
  let tls: { port: number; cert: string; key: string } | undefined;
  let certPem: string | undefined;
  if (opts.tls) {
    tls = { port: opts.tlsPort ?? 5349, cert: join(dir, "cert.pem"), key: join(dir, "key.pem") };
    await selfSignedCertificate(tls.cert, tls.key, ip);
    certPem = readFileSync(tls.cert, "utf8");
  }
  const conf = coturnConfig({
    ip,
    port,
    username,
    password,
    realm,
    dir,
    relayPorts: opts.relayPorts ?? { min: 49152, max: 65535 },
    tls,
    extraConfig: [...(opts.verbose ? ["verbose"] : []), ...(opts.extraConfig ?? [])],
  });
  const confFile = join(dir, "turnserver.conf");
  writeFileSync(confFile, conf, { mode: 0o600 });
  const proc = node.spawn(["turnserver", "-c", confFile]);
  const expected = [`udp ${ip}:${port}`, `tcp ${ip}:${port}`, ...(tls ? [`tcp ${ip}:${tls.port}`] : [])];
  try {
    await waitFor(
      async () => {
        if (!proc.running) throw new Error(`turnserver exited (${describeStatus(proc)}):\n${tail(proc)}`);
        const listening = await listeningSockets(node, proc.pid);
        return expected.every((e) => listening.has(e));
      },
      { what: `coturn on ${node.label} to listen on ${expected.join(", ")}`, timeoutMs: opts.startTimeoutMs ?? 15_000, intervalMs: 100 },
    );
  } catch (e) {
    await proc.stop(500);
    const msg = (e as Error).message;
    // If it exited by itself, its output is in the message already.
    throw new Error(msg.includes("turnserver exited") ? msg : `${msg}\ncoturn's output:\n${tail(proc)}`);
  }
  return new Coturn(node, ip, port, tls?.port, username, password, realm, proc, dir, certPem);
}

/**
 * "udp 1.2.3.4:3478" / "tcp ..." for every socket process `pid` listens on in the node's
 * namespace (by PID, so another program on the same port does not count).
 */
async function listeningSockets(node: NetNode, pid: number): Promise<Set<string>> {
  const r = await node.exec(["ss", "-Hlnutp"], { timeoutMs: 5000 });
  const out = new Set<string>();
  for (const line of r.stdout.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length >= 5 && line.includes(`pid=${pid},`)) out.add(`${f[0]} ${f[4]}`);
  }
  return out;
}

/** A self-signed P-256 certificate for `ip` (as common name and subjectAltName), valid 2 days. */
async function selfSignedCertificate(certFile: string, keyFile: string, ip: string): Promise<void> {
  await runCommand(
    [
      "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
      "-keyout", keyFile, "-out", certFile, "-days", "2", "-subj", `/CN=${ip}`, "-addext", `subjectAltName=IP:${ip}`,
    ],
    { timeoutMs: 15_000 },
  );
}

function describeStatus(p: TrackedProcess): string {
  const s = p.exitStatus;
  if (p.startError) return p.startError.message;
  return s === null ? "running" : s.code !== null ? `code ${s.code}` : `signal ${s.signal ?? "?"}`;
}

function tail(p: TrackedProcess): string {
  return (p.stdout + p.stderr).trim().split("\n").slice(-15).join("\n");
}

/** Null when {@link startCoturn} can work here (topologies work, coturn and openssl are installed); otherwise why not. */
export async function coturnUnavailableReason(): Promise<string | null> {
  const reason = await topologyUnavailableReason();
  if (reason !== null) return reason;
  const missing = missingCommands(["turnserver", "openssl", "ss"]);
  return missing.length > 0 ? `not installed: ${missing.join(", ")}` : null;
}
