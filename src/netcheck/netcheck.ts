/**
 * What the local network allows, for "why is my peer relayed?": asks the given STUN servers from
 * two local UDP sockets what address a NAT maps each to, and tries a TURN Allocate on each TURN
 * server over its transport. Only the servers passed in are contacted.
 *
 * Flow:
 *  1. Resolve server names (IPv4: server-reflexive candidates are IPv4 only in the ICE stack).
 *  2. From each of two sockets, a few Binding transactions per STUN server (RTT per answer).
 *  3. Mapping: one socket's mapped address:port seen by two or more servers — the same for
 *     all = endpoint-independent; different = endpoint-dependent ("symmetric").
 *  4. TURN: an unauthenticated Allocate over udp/tcp/tls; any STUN answer (normally 401) = it answers.
 */
import { createSocket, type Socket } from "node:dgram";
import { lookup } from "node:dns/promises";
import { connect as tcpConnect, isIP, type Socket as TcpSocket } from "node:net";
import { networkInterfaces } from "node:os";
import { connect as tlsConnect } from "node:tls";
import type { IceServer } from "../ice/servers.js";
import { allocateRequest, bindingRequest, parseAllocateResponse, parseBindingResponse, stunFrameLength, transactionIdOf, type MappedAddress } from "../stun/message.js";
import { bindUdp } from "../sockets/ready.js";

export type MappingBehaviour = "endpoint-independent" | "endpoint-dependent" | "unknown";

export interface StunResult {
  url: string;
  address: string;
  port: number;
  /** Mapped address per local socket ("ip:port"), or null when that socket got no answer. */
  mapped: (string | null)[];
  rttMs: number[];
  error?: string;
}

export interface TurnResult {
  url: string;
  transport: "udp" | "tcp" | "tls";
  answers: boolean;
  /** e.g. "401 Unauthorized: the server wants credentials". */
  detail: string;
  rttMs?: number;
}

export interface NetcheckReport {
  udp: boolean;
  localPorts: number[];
  /** Whether a mapped address differs from every local address. */
  behindNat: boolean | null;
  mapping: MappingBehaviour;
  /** Every mapped port equals its socket's local port. */
  portPreserved: boolean | null;
  stun: StunResult[];
  turn: TurnResult[];
  /** What this means for ICE, in words. */
  hints: string[];
}

export interface NetcheckOptions {
  /** Binding transactions per socket and server (default 3). */
  rounds?: number;
  /** Per-transaction timeout (default 1000 ms). */
  timeoutMs?: number;
}

const fmt = (m: MappedAddress): string => (m.family === 6 ? `[${m.address}]:${m.port}` : `${m.address}:${m.port}`);

async function resolve4(host: string): Promise<string> {
  if (isIP(host) !== 0) return host;
  return (await lookup(host, { family: 4 })).address;
}

/** One Binding transaction on `sock`, retransmitted twice within the timeout. */
function bindingOnce(sock: Socket, ip: string, port: number, timeoutMs: number): Promise<{ mapped: MappedAddress; rttMs: number } | null> {
  return new Promise((resolve) => {
    const req = bindingRequest();
    const tid = transactionIdOf(req);
    const started = performance.now();
    const onMessage = (msg: Buffer): void => {
      try {
        const mapped = parseBindingResponse(msg, tid);
        finish({ mapped, rttMs: performance.now() - started });
      } catch {
        // Not ours (another transaction, or not STUN): keep waiting.
      }
    };
    const timers = [0, timeoutMs / 3, (2 * timeoutMs) / 3].map((at) => setTimeout(() => sock.send(req, port, ip, () => {}), at));
    const deadline = setTimeout(() => finish(null), timeoutMs);
    const finish = (r: { mapped: MappedAddress; rttMs: number } | null): void => {
      for (const t of timers) clearTimeout(t);
      clearTimeout(deadline);
      sock.off("message", onMessage);
      resolve(r);
    };
    sock.on("message", onMessage);
  });
}

async function openUdp(): Promise<Socket> {
  const s = createSocket("udp4");
  await bindUdp(s, { port: 0 });
  return s;
}

async function probeStun(servers: IceServer[], rounds: number, timeoutMs: number): Promise<{ results: StunResult[]; localPorts: number[] }> {
  const sockets = [await openUdp(), await openUdp()];
  const localPorts = sockets.map((s) => s.address().port);
  try {
    const results: StunResult[] = [];
    for (const srv of servers) {
      const r: StunResult = { url: srv.url, address: srv.host, port: srv.port, mapped: sockets.map(() => null), rttMs: [] };
      results.push(r);
      let ip: string;
      try {
        ip = await resolve4(srv.host);
      } catch (err) {
        r.error = `cannot resolve ${srv.host}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`;
        continue;
      }
      r.address = ip;
      for (const [i, sock] of sockets.entries()) {
        for (let n = 0; n < rounds; n++) {
          const a = await bindingOnce(sock, ip, srv.port, timeoutMs);
          if (a === null) continue;
          r.mapped[i] = fmt(a.mapped);
          r.rttMs.push(a.rttMs);
        }
      }
      if (r.rttMs.length === 0) r.error = `no answer within ${timeoutMs} ms`;
    }
    return { results, localPorts };
  } finally {
    for (const s of sockets) s.close();
  }
}

/** Sends `req` over a stream and resolves with the first complete STUN message back. */
function streamExchange(sock: TcpSocket, req: Uint8Array, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => done(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    const done = (err: Error | null, msg?: Buffer): void => {
      clearTimeout(timer);
      sock.destroy();
      if (err !== null) reject(err);
      else resolve(msg!);
    };
    sock.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const len = stunFrameLength(buf);
      if (len > 0 && buf.length >= len) done(null, buf.subarray(0, len));
    });
    sock.once("error", (err: NodeJS.ErrnoException) => done(new Error(err.code ?? err.message)));
    sock.once("close", () => done(new Error("connection closed without an answer")));
    sock.write(req);
  });
}

async function probeTurn(srv: IceServer, timeoutMs: number): Promise<TurnResult> {
  const transport = srv.transport;
  const base = { url: srv.url, transport };
  let ip: string;
  try {
    ip = await resolve4(srv.host);
  } catch (err) {
    return { ...base, answers: false, detail: `cannot resolve ${srv.host}: ${(err as NodeJS.ErrnoException).code ?? String(err)}` };
  }
  const req = allocateRequest();
  const tid = transactionIdOf(req);
  const started = performance.now();
  let reply: Buffer;
  try {
    if (transport === "udp") {
      const sock = await openUdp();
      try {
        reply = await new Promise<Buffer>((resolve, reject) => {
          const timers = [0, timeoutMs / 3, (2 * timeoutMs) / 3].map((at) => setTimeout(() => sock.send(req, srv.port, ip, () => {}), at));
          const deadline = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
          sock.on("message", (m: Buffer) => {
            if (m.length < 20 || !m.subarray(8, 20).equals(Buffer.from(tid))) return;
            for (const t of timers) clearTimeout(t);
            clearTimeout(deadline);
            resolve(m);
          });
        });
      } finally {
        sock.close();
      }
    } else {
      const sock =
        transport === "tls"
          ? tlsConnect({ host: ip, port: srv.port, servername: isIP(srv.host) === 0 ? srv.host : undefined })
          : tcpConnect({ host: ip, port: srv.port });
      reply = await streamExchange(sock, req, timeoutMs);
    }
  } catch (err) {
    return { ...base, answers: false, detail: (err as Error).message };
  }
  const rttMs = performance.now() - started;
  try {
    const r = parseAllocateResponse(reply, tid);
    if (r.ok) return { ...base, answers: true, detail: "allocated without credentials", rttMs };
    const why = r.code === 401 ? "the server wants credentials, as expected" : "an unexpected error";
    return { ...base, answers: true, detail: `${r.code} ${r.reason || ""}`.trim() + ` (${why})`, rttMs };
  } catch (err) {
    return { ...base, answers: false, detail: `not a TURN answer: ${(err as Error).message}` };
  }
}

function localAddresses(): Set<string> {
  const out = new Set<string>();
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) out.add(a.address);
  return out;
}

/** Runs the checks against `servers` (stun:, turn:, turns: as parsed from ICEServers). */
export async function netcheck(servers: readonly IceServer[], opts: NetcheckOptions = {}): Promise<NetcheckReport> {
  const rounds = opts.rounds ?? 3;
  const timeoutMs = opts.timeoutMs ?? 1000;
  // TURN servers on UDP answer Binding requests too; use them for the mapping when there is no STUN.
  const stunTargets = servers.filter((s) => s.scheme === "stun");
  const mappingTargets = stunTargets.length > 0 ? stunTargets : servers.filter((s) => s.scheme === "turn" && s.transport === "udp");
  const { results: stun, localPorts } = await probeStun(mappingTargets, rounds, timeoutMs);
  const turn: TurnResult[] = [];
  for (const s of servers.filter((x) => x.scheme !== "stun")) turn.push(await probeTurn(s, Math.max(timeoutMs, 2000)));

  const answered = stun.filter((r) => r.rttMs.length > 0);
  const udp = answered.length > 0 || turn.some((t) => t.transport === "udp" && t.answers);
  let mapping: MappingBehaviour = "unknown";
  // Distinct server endpoints (address:port) that one socket got answers from.
  for (let i = 0; i < localPorts.length; i++) {
    const seen = new Map<string, string>();
    for (const r of stun) if (r.mapped[i] !== null) seen.set(`${r.address}:${r.port}`, r.mapped[i]!);
    if (seen.size < 2) continue;
    const distinct = new Set(seen.values());
    if (distinct.size > 1) mapping = "endpoint-dependent";
    else if (mapping === "unknown") mapping = "endpoint-independent";
  }
  const locals = localAddresses();
  const mappedAll = stun.flatMap((r) => r.mapped.map((m, i) => (m === null ? null : { m, i }))).filter((x): x is { m: string; i: number } => x !== null);
  const behindNat = mappedAll.length === 0 ? null : mappedAll.some(({ m }) => !locals.has(m.replace(/^\[?(.*?)\]?:\d+$/u, "$1")));
  const portPreserved = mappedAll.length === 0 ? null : mappedAll.every(({ m, i }) => Number(m.slice(m.lastIndexOf(":") + 1)) === localPorts[i]);

  const hints: string[] = [];
  if (servers.length === 0) hints.push("no STUN or TURN servers given: nothing was checked");
  else if (!udp) hints.push("no UDP answers: UDP looks blocked; only TURN over TCP/TLS or WireGuard over TCP (UoTLV/1, Endpoint = https://...) can work");
  if (mapping === "endpoint-independent") {
    hints.push("endpoint-independent mapping: hole punching works; direct paths are expected with most peers (one behind a symmetric NAT may still need the relay)");
  } else if (mapping === "endpoint-dependent") {
    hints.push("endpoint-dependent (symmetric) mapping: the address STUN sees is useless to peers; a direct path needs a peer with a public address or a port-preserving NAT; expect peers behind NATs to use the relay (TURN)");
  } else if (udp && answered.length < 2) {
    hints.push("mapping not measured: it needs answers from two STUN servers (different addresses or ports)");
  }
  if (behindNat === false) hints.push("no NAT: the mapped address is a local address, so peers can reach this host directly if the firewall lets them");
  if (turn.length === 0 && servers.length > 0) hints.push("no TURN server configured: peers that cannot meet directly will not connect at all");
  else if (turn.length > 0 && !turn.some((t) => t.answers)) hints.push("no TURN server answers: a relayed path is not possible");
  hints.push("filtering is not measured (that needs an RFC 5780 server); NATs that map per destination almost always filter per address and port too");
  return { udp, localPorts, behindNat, mapping, portPreserved, stun, turn, hints };
}
