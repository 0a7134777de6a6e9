/**
 * Parsers for the values of configuration keys. Each takes the trimmed value text and returns
 * the normalised value or throws a {@link ValueError} whose message describes the value; the
 * file parser adds file, line and key.
 */
import { formatCidr, formatIp, maskPrefix, parseCidr, parseIp } from "../allowedips/index.js";
import { parseKey } from "../crypto/keys.js";
import { formatHostPort, HostPortError, parseHostPort } from "../hostport/host-port.js";
import { formatListenAddress, parseListenAddress } from "../uotlv/listen-address.js";
import { looksLikeUrl, parseTunnelUrl } from "../uotlv/url.js";
import { quoted } from "./excerpt.js";

/** A value that does not fit its key. */
export class ValueError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ValueError";
  }
}

/**
 * A peer endpoint as written: an IP literal (canonical form) or a hostname resolved later, or
 * the URL of a UoTLV/1 (WireGuard over TCP) server.
 */
export interface Endpoint {
  /** IP literal without brackets, or a hostname. */
  host: string;
  port: number;
  /** For a UoTLV/1 server: the URL in canonical form; `host` and `port` are the URL's. */
  url?: string;
}

/** The routing table wg-quick-style routes go to. */
export type RouteTable =
  | { kind: "off" }
  | { kind: "auto" }
  | { kind: "id"; id: number }
  | { kind: "name"; name: string };

const quote = quoted;

/** Splits a comma (or whitespace) separated list, dropping empty items, as wg-quick does. */
export function splitList(value: string): string[] {
  return value.split(/[\s,]+/).filter((s) => s !== "");
}

export function parseBase64Key(value: string): Uint8Array {
  try {
    return parseKey(value);
  } catch {
    // The value is not echoed: it may be a private key with a typo.
    throw new ValueError("not a valid key (expected 44 base64 characters encoding 32 bytes)");
  }
}

function decimal(value: string, min: number, max: number): number | undefined {
  if (!/^[0-9]{1,10}$/.test(value)) return undefined;
  const n = Number(value);
  return n >= min && n <= max ? n : undefined;
}

export function parseListenPort(value: string): number {
  const n = decimal(value, 0, 65535);
  if (n === undefined) throw new ValueError(`${quote(value)} is not a port number from 0 to 65535`);
  return n;
}

export function parseMtu(value: string): number {
  const n = decimal(value, 68, 65535);
  if (n === undefined) throw new ValueError(`${quote(value)} is not an MTU from 68 to 65535`);
  return n;
}

/** TCP MSS clamping: off, auto (from each peer's path MTU) or the largest MSS. */
export type MssClamp = "off" | "auto" | number;

/** "off", "auto" or an MSS from 536 (the IPv4 default) to 65495. */
export function parseMssClamp(value: string): MssClamp {
  const lower = value.toLowerCase();
  if (lower === "off" || lower === "auto") return lower;
  const n = decimal(value, 536, 65495);
  if (n === undefined) throw new ValueError(`${quote(value)} is neither off, auto nor an MSS from 536 to 65495`);
  return n;
}

/** "off", decimal or 0x-hexadecimal 32-bit mark; 0 means off. */
export function parseFwMark(value: string): number {
  if (value.toLowerCase() === "off") return 0;
  const n = /^0x[0-9a-fA-F]{1,8}$/.test(value) ? parseInt(value.slice(2), 16) : decimal(value, 0, 0xffffffff);
  if (n === undefined) throw new ValueError(`${quote(value)} is neither off nor a number from 0 to 0xffffffff`);
  return n;
}

export function parseTable(value: string): RouteTable {
  const lower = value.toLowerCase();
  if (lower === "off") return { kind: "off" };
  if (lower === "auto") return { kind: "auto" };
  if (/^[0-9]+$/.test(value)) {
    const id = decimal(value, 1, 0xffffffff);
    if (id === undefined) throw new ValueError(`${quote(value)} is not a table number from 1 to 4294967295`);
    return { kind: "id", id };
  }
  if (!/^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/.test(value)) {
    throw new ValueError(`${quote(value)} is not off, auto, a table number or a table name`);
  }
  return { kind: "name", name: value };
}

export function formatTable(table: RouteTable): string {
  switch (table.kind) {
    case "off":
    case "auto":
      return table.kind;
    case "id":
      return String(table.id);
    case "name":
      return table.name;
  }
}

/** "true" or "false", any case. */
export function parseBoolean(value: string): boolean {
  const lower = value.toLowerCase();
  if (lower === "true") return true;
  if (lower === "false") return false;
  throw new ValueError(`${quote(value)} is neither true nor false`);
}

/** "off" or 0-65535 seconds; 0 means off. */
export function parsePersistentKeepalive(value: string): number {
  if (value.toLowerCase() === "off") return 0;
  const n = decimal(value, 0, 65535);
  if (n === undefined) throw new ValueError(`${quote(value)} is neither off nor a number of seconds from 1 to 65535`);
  return n;
}

/** An interface address: host bits are kept; a bare address means /32 or /128. */
export function parseAddress(item: string): string {
  try {
    return formatCidr(parseCidr(item));
  } catch {
    throw new ValueError(`${quote(item)} is not a valid IP address or address/prefix`);
  }
}

/** A routed prefix: host bits are cleared; a bare address means /32 or /128. */
export function parseAllowedIp(item: string): string {
  try {
    return formatCidr(maskPrefix(parseCidr(item)));
  } catch {
    throw new ValueError(`${quote(item)} is not a valid IP prefix`);
  }
}

const LABEL = /^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;

function isHostname(name: string): boolean {
  const bare = name.endsWith(".") ? name.slice(0, -1) : name;
  if (bare === "" || bare.length > 253) return false;
  // All-numeric names would be taken for (bad) IPv4 addresses by resolvers.
  if (/^[0-9.]+$/.test(bare)) return false;
  return bare.split(".").every((l) => LABEL.test(l));
}

/**
 * "host:port" or "[IPv6]:port"; the host is an IP literal or a hostname. Or an http:// or
 * https:// URL: a UoTLV/1 server, reached over TCP.
 */
export function parseEndpoint(value: string): Endpoint {
  const bad = (why: string): ValueError => new ValueError(`${quote(value)} ${why}`);
  if (looksLikeUrl(value)) {
    try {
      const u = parseTunnelUrl(value);
      return { host: u.hostname, port: u.port, url: u.href };
    } catch (err) {
      throw new ValueError(err instanceof Error ? err.message : String(err));
    }
  }
  let hp;
  try {
    hp = parseHostPort(value);
  } catch (err) {
    if (err instanceof HostPortError) throw bad(err.message);
    throw err;
  }
  let host = hp.host;
  if (hp.bracketed) {
    let addr;
    try {
      addr = parseIp(host);
    } catch {
      throw bad("does not have an IPv6 address inside the brackets");
    }
    if (addr.family !== 6) throw bad("does not have an IPv6 address inside the brackets");
    host = formatIp(addr.bytes) + (hp.zone === "" ? "" : `%${hp.zone}`);
  } else if (/^[0-9.]+$/.test(host)) {
    try {
      host = formatIp(parseIp(host).bytes);
    } catch {
      throw bad("does not have a valid IPv4 address");
    }
  } else if (!isHostname(host)) {
    throw bad("does not have a valid host name");
  }
  return { host, port: hp.port };
}

export function formatEndpoint(endpoint: Endpoint): string {
  if (endpoint.url !== undefined) return endpoint.url;
  return formatHostPort(endpoint.host, endpoint.port);
}

/**
 * One DNS item, sorted like wg-quick does: digits and dots, or anything with a colon, is a
 * server address; anything else is a search domain.
 */
export function parseDnsItem(item: string): { server: string } | { search: string } {
  if (/^[0-9.]+$/.test(item) || item.includes(":")) {
    try {
      return { server: formatIp(parseIp(item).bytes) };
    } catch {
      throw new ValueError(`${quote(item)} is not a valid DNS server address`);
    }
  }
  if (!isHostname(item)) throw new ValueError(`${quote(item)} is neither a DNS server address nor a search domain`);
  return { search: item };
}

/** A TCP address to accept UoTLV/1 on: "0.0.0.0:443", "[::]:443", or a bare port for all addresses. */
export function parseTcpListen(item: string): string {
  try {
    return formatListenAddress(parseListenAddress(item));
  } catch (err) {
    throw new ValueError(err instanceof Error ? err.message.replace(/^invalid listen address /, "") : String(err));
  }
}

/** Where to serve metrics: "127.0.0.1:9586" or "[::1]:9586"; an IP literal, port 1-65535. */
export function parseMetricsListen(value: string): string {
  let hp;
  try {
    hp = parseHostPort(value);
  } catch (err) {
    throw new ValueError(`${quote(value)} ${err instanceof Error ? err.message : String(err)}`);
  }
  let addr;
  try {
    addr = parseIp(hp.host);
  } catch {
    throw new ValueError(`${quote(value)} does not start with an IP address (names are not resolved here)`);
  }
  if (hp.zone !== "" || (addr.family === 6) !== hp.bracketed) throw new ValueError(`${quote(value)} is not "IPv4:port" or "[IPv6]:port"`);
  return formatHostPort(formatIp(addr.bytes), hp.port);
}
