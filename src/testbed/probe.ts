/**
 * Probes for test topologies: what address and port a NAT gives a socket, seen by reflectors
 * (tiny UDP/TCP servers that answer with the sender's "address:port") or by STUN servers.
 *
 * A probe has to run inside a namespace, so each one is a short Node child process (`node -e`
 * with the small programs below, running in the node's namespace); the parent builds and parses
 * the messages.
 */
import type { ExecOptions, ExecResult, SpawnOptions, TrackedProcess } from "./proc.js";
import { bindingRequest, parseBindingResponse, type MappedAddress } from "../stun/message.js";
import type { NetNode } from "./topology.js";

/** Anything that can run commands in a namespace: a topology node or a test-bed host. */
export interface CommandRunner {
  exec(argv: readonly string[], opts?: ExecOptions): Promise<ExecResult>;
  spawn(argv: readonly string[], opts?: SpawnOptions): TrackedProcess;
}

/** A server's address and port. */
export interface Target {
  ip: string;
  port: number;
}

export interface ExchangeOptions {
  /** Bind the probing socket to this port (default: any free one). */
  localPort?: number;
  /** Bind the probing socket to this address (default: any). */
  localIp?: string;
  /** Give up on servers that have not answered after this long. Default 2000 ms. */
  timeoutMs?: number;
  /** Resend to servers that have not answered yet this often. Default 200 ms. */
  retryMs?: number;
  /**
   * Once every target has answered, keep sending to all of them this much longer (at `retryMs`)
   * before stopping. For hole punching, where the "server" is a peer doing the same and has to
   * hear from us after its own hole is open. Default 0.
   */
  lingerMs?: number;
}

export interface ExchangeResult {
  /** The probing socket's local port. */
  localPort: number;
  /** The first datagram back from each target (same order), or null if none came in time. */
  replies: (Uint8Array | null)[];
}

// Sends every payload from ONE socket (that is the point: a NAT mapping belongs to a socket)
// and collects the first reply from each target, resending until it comes or time runs out.
const EXCHANGE_PROGRAM = `
const dgram = require("node:dgram");
const c = JSON.parse(process.argv[1]);
const ip6 = (c.localIp || c.requests[0].ip).includes(":");
const s = dgram.createSocket(ip6 ? "udp6" : "udp4");
const replies = c.requests.map(() => null);
let done = false;
let lingering = false;
const finish = () => {
  if (done) return;
  done = true;
  process.stdout.write(JSON.stringify({ localPort: s.address().port, replies }) + "\\n", () => process.exit(0));
};
s.on("error", (e) => { process.stderr.write(String(e) + "\\n"); process.exit(2); });
s.on("message", (m, r) => {
  c.requests.forEach((q, i) => {
    if (replies[i] === null && q.ip === r.address && q.port === r.port) replies[i] = m.toString("hex");
  });
  if (replies.every((x) => x !== null) && !lingering) {
    lingering = true;
    setTimeout(finish, c.lingerMs);
  }
});
s.bind(c.localPort || 0, c.localIp || undefined, () => {
  const send = () => c.requests.forEach((q, i) => { if (replies[i] === null || lingering) s.send(Buffer.from(q.hex, "hex"), q.port, q.ip, () => {}); });
  send();
  setInterval(send, c.retryMs);
  setTimeout(finish, c.timeoutMs);
});
`;

/** Sends `payload`s from one UDP socket in `node` and collects the first reply from each target. */
export async function udpExchange(node: CommandRunner, requests: readonly (Target & { payload: Uint8Array })[], opts: ExchangeOptions = {}): Promise<ExchangeResult> {
  if (requests.length === 0) throw new Error("udpExchange: no targets");
  const seen = new Set<string>();
  for (const q of requests) {
    checkTarget(q);
    const key = `${q.ip}:${q.port}`;
    // Replies are told apart by their source only.
    if (seen.has(key)) throw new Error(`udpExchange: target ${key} is listed twice`);
    seen.add(key);
  }
  const timeoutMs = opts.timeoutMs ?? 2000;
  const config = {
    localPort: opts.localPort ?? 0,
    localIp: opts.localIp ?? "",
    timeoutMs,
    retryMs: opts.retryMs ?? 200,
    lingerMs: opts.lingerMs ?? 0,
    requests: requests.map((q) => ({ ip: q.ip, port: q.port, hex: Buffer.from(q.payload).toString("hex") })),
  };
  const r = await node.exec([process.execPath, "-e", EXCHANGE_PROGRAM, JSON.stringify(config)], { timeoutMs: timeoutMs + (opts.lingerMs ?? 0) + 10_000 });
  const out = JSON.parse(r.stdout) as { localPort: number; replies: (string | null)[] };
  return { localPort: out.localPort, replies: out.replies.map((h) => (h === null ? null : new Uint8Array(Buffer.from(h, "hex")))) };
}

export interface ProbeResult<T> {
  localPort: number;
  /** One per server, same order; null when the server did not answer in time. */
  addresses: (T | null)[];
}

/**
 * The "address:port" each reflector (see {@link startReflector}) saw for one socket in `node`.
 * Behind an endpoint-independent NAT all are equal; behind a symmetric one the ports differ.
 */
export async function reflectedAddresses(node: CommandRunner, servers: readonly Target[], opts: ExchangeOptions = {}): Promise<ProbeResult<string>> {
  const r = await udpExchange(
    node,
    servers.map((s) => ({ ...s, payload: Buffer.from("tswg-probe") })),
    opts,
  );
  return { localPort: r.localPort, addresses: r.replies.map((b) => (b === null ? null : parseReflected(Buffer.from(b).toString("utf8")))) };
}

/** The mapped address each STUN server reports for one socket in `node` (Binding Request). */
export async function stunMappedAddresses(node: CommandRunner, servers: readonly Target[], opts: ExchangeOptions = {}): Promise<ProbeResult<MappedAddress>> {
  const requests = servers.map((s) => ({ ...s, payload: bindingRequest() }));
  const r = await udpExchange(node, requests, opts);
  return {
    localPort: r.localPort,
    addresses: r.replies.map((b, i) => {
      if (b === null) return null;
      const q = requests[i]!;
      try {
        return parseBindingResponse(b, q.payload.subarray(8, 20));
      } catch (e) {
        throw new Error(`STUN server ${q.ip}:${q.port}: ${(e as Error).message}`);
      }
    }),
  };
}

// One STUN Binding Request over a TCP or TLS connection; prints the response or the error.
const STREAM_STUN_PROGRAM = `
const c = JSON.parse(process.argv[1]);
let done = false;
const out = (o) => { if (done) return; done = true; process.stdout.write(JSON.stringify(o) + "\\n", () => process.exit(0)); };
const target = { host: c.ip, port: c.port };
const sock = c.tls
  ? require("node:tls").connect({ ...target, ca: c.ca || undefined, rejectUnauthorized: !c.insecure, ALPNProtocols: ["stun.turn"] })
  : require("node:net").connect(target);
sock.on(c.tls ? "secureConnect" : "connect", () => sock.write(Buffer.from(c.hex, "hex")));
let buf = Buffer.alloc(0);
sock.on("data", (d) => {
  buf = Buffer.concat([buf, d]);
  if (buf.length >= 20 && buf.length >= 20 + buf.readUInt16BE(2)) {
    out({ hex: buf.subarray(0, 20 + buf.readUInt16BE(2)).toString("hex"), localPort: sock.localPort, protocol: c.tls ? sock.getProtocol() : null });
  }
});
sock.on("error", (e) => out({ error: e.message }));
sock.on("end", () => out({ error: "connection closed before a response" }));
setTimeout(() => out({ error: "no response in " + c.timeoutMs + " ms" }), c.timeoutMs);
`;

export interface StreamStunOptions {
  /** TURN over TLS ("turns:"): wrap the connection in TLS. Default false (plain TCP). */
  tls?: boolean;
  /** PEM certificate(s) to trust for TLS, e.g. {@link Coturn.certPem}; default the system's store. */
  ca?: string;
  /** Skip certificate verification. Default false. */
  insecure?: boolean;
  /** Default 3000 ms. */
  timeoutMs?: number;
}

export interface StreamStunResult {
  /** The connection's local port. */
  localPort: number;
  address: MappedAddress;
  /** The TLS version negotiated, e.g. "TLSv1.3"; null over plain TCP. */
  tlsVersion: string | null;
}

/**
 * A STUN Binding Request over TCP, or TLS, from `node` to `server` (the transports a TURN client
 * falls back to). Throws with the reason if it cannot connect, TLS verification fails, or no
 * valid answer comes.
 */
export async function stunMappedAddressOverStream(node: CommandRunner, server: Target, opts: StreamStunOptions = {}): Promise<StreamStunResult> {
  checkTarget(server);
  const timeoutMs = opts.timeoutMs ?? 3000;
  const req = bindingRequest();
  const config = { ip: server.ip, port: server.port, hex: Buffer.from(req).toString("hex"), tls: opts.tls ?? false, ca: opts.ca ?? "", insecure: opts.insecure ?? false, timeoutMs };
  const r = await node.exec([process.execPath, "-e", STREAM_STUN_PROGRAM, JSON.stringify(config)], { timeoutMs: timeoutMs + 10_000 });
  const out = JSON.parse(r.stdout) as { error?: string; hex?: string; localPort?: number; protocol?: string | null };
  const where = `STUN over ${opts.tls ? "TLS" : "TCP"} to ${server.ip}:${server.port}`;
  if (out.error !== undefined || out.hex === undefined) throw new Error(`${where}: ${out.error ?? "no answer"}`);
  try {
    return { localPort: out.localPort ?? 0, address: parseBindingResponse(Buffer.from(out.hex, "hex"), req.subarray(8, 20)), tlsVersion: out.protocol ?? null };
  } catch (e) {
    throw new Error(`${where}: ${(e as Error).message}`);
  }
}

// Answers every datagram (or TCP connection) with the sender's address and port.
const REFLECTOR_PROGRAM = `
const c = JSON.parse(process.argv[1]);
const fail = (e) => { process.stderr.write(String(e) + "\\n"); process.exit(2); };
if (c.proto === "tcp") {
  const srv = require("node:net").createServer((sock) => sock.end(sock.remoteAddress + ":" + sock.remotePort));
  srv.on("error", fail);
  srv.listen(c.port, c.ip, () => console.log("listening " + srv.address().port));
} else {
  const s = require("node:dgram").createSocket(c.ip.includes(":") ? "udp6" : "udp4");
  s.on("error", fail);
  s.on("message", (m, r) => s.send(r.address + ":" + r.port, r.port, r.address));
  s.bind(c.port, c.ip, () => console.log("listening " + s.address().port));
}
`;

export interface ReflectorOptions {
  port: number;
  /** Default "udp". */
  proto?: "udp" | "tcp";
  /** Address to listen on; default the node's first address. */
  ip?: string;
}

/** A running reflector; stopped with the topology, or earlier with {@link stop}. */
export interface Reflector {
  ip: string;
  port: number;
  proto: "udp" | "tcp";
  process: TrackedProcess;
  stop(): Promise<void>;
}

/** Starts a reflector on `node` and resolves once it listens. */
export async function startReflector(node: NetNode, opts: ReflectorOptions): Promise<Reflector> {
  const ip = opts.ip ?? node.ip;
  const proto = opts.proto ?? "udp";
  checkTarget({ ip, port: opts.port });
  const proc = node.spawn([process.execPath, "-e", REFLECTOR_PROGRAM, JSON.stringify({ ip, port: opts.port, proto })]);
  try {
    await proc.waitForOutput(/listening \d+/, { timeoutMs: 10_000 });
  } catch (e) {
    await proc.stop(500);
    throw e;
  }
  return {
    ip,
    port: opts.port,
    proto,
    process: proc,
    stop: async () => {
      await proc.stop(500);
    },
  };
}

// Connects, reads until the server closes, prints what came; prints nothing if it cannot connect.
const TCP_PROBE_PROGRAM = `
const c = JSON.parse(process.argv[1]);
let done = false;
const out = (o) => { if (done) return; done = true; process.stdout.write(JSON.stringify(o) + "\\n", () => process.exit(0)); };
const sock = require("node:net").connect({ host: c.ip, port: c.port });
let data = "";
sock.on("data", (d) => { data += d; });
sock.on("end", () => out({ reply: data }));
sock.on("error", (e) => out({ reply: null, why: String(e) }));
setTimeout(() => out({ reply: null, why: "timeout" }), c.timeoutMs);
`;

/** The "address:port" a TCP reflector saw for a connection from `node`, or null if none got through. */
export async function tcpReflectedAddress(node: CommandRunner, server: Target, opts: { timeoutMs?: number } = {}): Promise<string | null> {
  checkTarget(server);
  const timeoutMs = opts.timeoutMs ?? 2000;
  const r = await node.exec([process.execPath, "-e", TCP_PROBE_PROGRAM, JSON.stringify({ ip: server.ip, port: server.port, timeoutMs })], {
    timeoutMs: timeoutMs + 10_000,
  });
  const out = JSON.parse(r.stdout) as { reply: string | null };
  return out.reply === null ? null : parseReflected(out.reply);
}

function parseReflected(text: string): string {
  if (!/^[0-9a-f.:]+:\d{1,5}$/i.test(text)) throw new Error(`unexpected reflector answer ${JSON.stringify(text.slice(0, 80))}`);
  return text;
}

function checkTarget(t: Target): void {
  if (typeof t.ip !== "string" || !/^[0-9a-f.:]+$/i.test(t.ip)) throw new Error(`bad target address ${JSON.stringify(t.ip)}`);
  if (!Number.isInteger(t.port) || t.port < 1 || t.port > 65535) throw new Error(`bad target port ${String(t.port)}`);
}
