/**
 * Which candidates an agent offers and which it accepts.
 *
 * Host addresses are chosen here, not by the ICE library: the library skips interfaces named
 * tun*, tap*, veth* and vmnet* (so it would offer nothing inside a network namespace wired with
 * veth pairs) but offers wg* and tswg* ones, i.e. the tunnel's own interface. Offering the
 * tunnel's address would let ICE route the tunnel through itself, and another tunnel's address
 * would route it through that tunnel (or leak it to the peer): every tunnel interface is left
 * out, recognised by name or, on Linux, by kind.
 *
 * Remote candidates come from the network (through the signaling channel, authenticated but
 * not trusted to be well formed): anything that is not a UDP candidate on an IP literal is
 * dropped. In particular ".local" (mDNS) names are refused, since resolving them would send
 * multicast queries on the peer's behalf.
 */
import { existsSync, readFileSync } from "node:fs";
import { isIP, isIPv4 } from "node:net";
import type { NetworkInterfaceInfo } from "node:os";
import { Candidate } from "werift-ice";

/** Candidate types that can be allowed or not. Peer-reflexive ones are learnt, never offered. */
export type CandidateType = "host" | "srflx" | "relay";
export const CANDIDATE_TYPES: readonly CandidateType[] = ["host", "srflx", "relay"];

/** What os.networkInterfaces() returns. */
export type NetworkInterfaceMap = Record<string, readonly NetworkInterfaceInfo[] | undefined>;

export class CandidateFilterError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CandidateFilterError";
  }
}

/** A candidate as status shows it. */
export interface CandidateInfo {
  /** "host", "srflx", "prflx" or "relay". */
  type: string;
  address: string;
  port: number;
}

export interface HostAddressOptions {
  ipv4: boolean;
  ipv6: boolean;
  /** Interface names to leave out; a trailing "*" matches any suffix ("wg*"). */
  excludeInterfaces: readonly string[];
  /**
   * Addresses to offer in addition to the interfaces' (e.g. "127.0.0.1" on a single host, or an
   * address that only a 1:1 NAT knows). Still subject to the family switches, and dropped when
   * an excluded interface holds them.
   */
  extraAddresses: readonly string[];
  /** Whether an interface carries a tunnel and is never offered; default {@link isTunnelInterface}. */
  isTunnel?: (name: string) => boolean;
}

/** Names of tunnel interfaces on any system (WireGuard, TUN/TAP, macOS utun). */
export const TUNNEL_NAME_PATTERNS: readonly string[] = ["wg*", "tswg*", "tun*", "tap*", "utun*"];

/** Link type of devices without a link layer (ARPHRD_NONE): TUN devices and WireGuard. */
const ARPHRD_NONE = "65534";

/**
 * Whether `name` is a tunnel interface: by name, or on Linux by what sysfs says of it (a TUN/TAP
 * device has tun_flags, a kernel WireGuard device a wireguard DEVTYPE, and both have no link
 * layer), so a tunnel named "office" is recognised too.
 */
export function isTunnelInterface(name: string, sysfs = "/sys/class/net"): boolean {
  if (interfaceExcluded(name, TUNNEL_NAME_PATTERNS)) return true;
  if (name.includes("/") || name === "." || name === "..") return false;
  const dir = `${sysfs}/${name}`;
  try {
    if (existsSync(`${dir}/tun_flags`)) return true;
    if (readFileSync(`${dir}/type`, "utf8").trim() === ARPHRD_NONE) return true;
    return /^DEVTYPE=wireguard$/mu.test(readFileSync(`${dir}/uevent`, "utf8"));
  } catch {
    return false;
  }
}

/** True when `name` matches one of the exclusion patterns. */
export function interfaceExcluded(name: string, patterns: readonly string[]): boolean {
  for (const p of patterns) {
    if (p.endsWith("*") ? name.startsWith(p.slice(0, -1)) : name === p) return true;
  }
  return false;
}

/**
 * The addresses to gather host candidates on: extra addresses first, then those of every
 * non-excluded interface in name order. Loopback ("internal") and link-local addresses are
 * skipped (link-local ones would need a zone, which ICE candidates cannot carry).
 */
export function selectHostAddresses(interfaces: NetworkInterfaceMap, opts: HostAddressOptions): string[] {
  const excludedAddresses = new Set<string>();
  const offered: string[] = [];
  for (const name of Object.keys(interfaces).sort()) {
    const infos = interfaces[name] ?? [];
    const excluded = interfaceExcluded(name, opts.excludeInterfaces) || (opts.isTunnel ?? isTunnelInterface)(name);
    for (const info of infos) {
      const address = stripZone(info.address);
      if (excluded) {
        excludedAddresses.add(address);
        continue;
      }
      if (info.internal || isLinkLocal(address)) continue;
      if (!familyAllowed(address, opts)) continue;
      offered.push(address);
    }
  }
  const extras: string[] = [];
  for (const a of opts.extraAddresses) {
    if (isIP(a) === 0) throw new CandidateFilterError(`host address "${a}" is not an IP address`);
    if (excludedAddresses.has(a) || !familyAllowed(a, opts)) continue;
    extras.push(a);
  }
  return [...new Set([...extras, ...offered.filter((a) => !excludedAddresses.has(a))])];
}

/** Parses "host,srflx,relay" (or a list); throws {@link CandidateFilterError} for unknown names. */
export function parseCandidateTypes(input: string | readonly string[]): Set<CandidateType> {
  const names = typeof input === "string" ? input.split(/[\s,]+/).filter((s) => s !== "") : input;
  const out = new Set<CandidateType>();
  for (const raw of names) {
    const n = raw.trim().toLowerCase();
    if (!(CANDIDATE_TYPES as readonly string[]).includes(n)) {
      throw new CandidateFilterError(`unknown candidate type "${raw}" (expected host, srflx or relay)`);
    }
    out.add(n as CandidateType);
  }
  if (out.size === 0) throw new CandidateFilterError("at least one candidate type must be allowed");
  return out;
}

/** Parses "50000-50100" (or takes a pair) and checks it; throws {@link CandidateFilterError}. */
export function parsePortRange(input: string | readonly [number, number]): [number, number] {
  let lo: number;
  let hi: number;
  if (typeof input === "string") {
    const m = /^\s*([0-9]{1,5})\s*[-:]\s*([0-9]{1,5})\s*$/.exec(input);
    if (m === null) throw new CandidateFilterError(`port range "${input}" is not "low-high"`);
    lo = Number(m[1]);
    hi = Number(m[2]);
  } else {
    [lo, hi] = input;
  }
  if (!Number.isInteger(lo) || !Number.isInteger(hi) || lo < 1 || hi > 65535 || lo > hi) {
    throw new CandidateFilterError(`port range ${lo}-${hi} must satisfy 1 <= low <= high <= 65535`);
  }
  return [lo, hi];
}

const MAX_CANDIDATE_LENGTH = 512;
// Peer-reflexive candidates are learnt from checks, never signalled (and the library refuses them).
const REMOTE_TYPES = new Set(["host", "srflx", "relay"]);

/**
 * Parses a remote candidate ("candidate:…" SDP attribute form, with or without the "a=" and
 * "candidate:" prefixes). Returns null for anything unusable: malformed, not UDP, not component
 * 1, not an IP literal, link-local (no zone to send it with), of a disabled address family, or
 * absurdly long.
 */
export function parseRemoteCandidate(text: string, families: { ipv4: boolean; ipv6: boolean }): Candidate | null {
  if (typeof text !== "string" || text.length > MAX_CANDIDATE_LENGTH) return null;
  let s = text.trim();
  if (s.startsWith("a=")) s = s.slice(2);
  if (s.startsWith("candidate:")) s = s.slice("candidate:".length);
  const f = s.split(/\s+/);
  if (f.length < 8 || f[6] !== "typ") return null;
  if (!/^[A-Za-z0-9+/]{1,32}$/.test(f[0]!)) return null;
  if (f[1] !== "1" || f[2]!.toLowerCase() !== "udp") return null;
  if (!/^[0-9]{1,10}$/.test(f[3]!) || Number(f[3]) < 1 || Number(f[3]) > 0xffffffff) return null;
  const host = stripZone(f[4]!);
  if (isIP(host) === 0 || isLinkLocal(host) || !familyAllowed(host, families)) return null;
  if (!/^[0-9]{1,5}$/.test(f[5]!) || Number(f[5]) < 1 || Number(f[5]) > 65535) return null;
  if (!REMOTE_TYPES.has(f[7]!)) return null;
  let c: Candidate;
  try {
    c = Candidate.fromSdp(f.join(" "));
  } catch {
    return null;
  }
  c.host = host;
  c.transport = "udp";
  // The library only nominates a pair whose remote candidate carries no generation or its own
  // local one; generations here are tracked by the signaling layer, not per candidate.
  c.generation = undefined;
  if (c.relatedPort !== undefined && !Number.isInteger(c.relatedPort)) c.relatedPort = undefined;
  return c;
}

/** The SDP attribute form sent to the peer. */
export function formatCandidate(c: Candidate): string {
  return `candidate:${c.toSdp()}`;
}

export function candidateInfo(c: Candidate): CandidateInfo {
  return { type: c.type, address: c.host, port: c.port };
}

function familyAllowed(address: string, f: { ipv4: boolean; ipv6: boolean }): boolean {
  return isIPv4(address) ? f.ipv4 : f.ipv6;
}

function isLinkLocal(address: string): boolean {
  if (isIPv4(address)) return address.startsWith("169.254.");
  return /^fe[89ab][0-9a-f]:/i.test(address);
}

function stripZone(address: string): string {
  const pct = address.indexOf("%");
  return pct >= 0 ? address.slice(0, pct) : address;
}
