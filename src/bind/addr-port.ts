/**
 * "ip:port" endpoint text, as `wg` writes it: "192.0.2.1:51820", "[2001:db8::1]:51820",
 * "[fe80::1%eth0]:51820". IP literals only: name resolution is the caller's business (wg-quick
 * resolves names before it hands endpoints to the device).
 */
import { isIPv6 } from "node:net";
import { formatIp, parseIp, unmapIPv4, type IpFamily } from "../allowedips/ip.js";

export interface AddrPort {
  family: IpFamily;
  /** 4 or 16 address bytes (IPv4-mapped IPv6 is turned into plain IPv4). */
  bytes: Uint8Array;
  /** Canonical address text, without zone or brackets. */
  address: string;
  /** IPv6 zone (scope) such as "eth0", or "" when there is none. */
  zone: string;
  port: number;
}

export class EndpointParseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "EndpointParseError";
  }
}

/** Parses endpoint text; throws {@link EndpointParseError} naming what is wrong. */
export function parseAddrPort(text: string): AddrPort {
  if (typeof text !== "string") throw new EndpointParseError(`endpoint must be a string, got ${typeof text}`);
  const s = text.trim();
  const fail: (why: string) => never = (why) => {
    throw new EndpointParseError(`invalid endpoint "${text}": ${why}`);
  };
  if (s === "") fail("empty");
  let host: string;
  let portText: string;
  if (s.startsWith("[")) {
    const close = s.indexOf("]");
    if (close < 0) fail('missing "]"');
    host = s.slice(1, close);
    if (s[close + 1] !== ":") fail('expected ":port" after "]"');
    portText = s.slice(close + 2);
    if (!host.includes(":")) fail("only IPv6 addresses go in brackets");
  } else {
    const colon = s.lastIndexOf(":");
    if (colon < 0) fail('no port (expected "address:port")');
    host = s.slice(0, colon);
    portText = s.slice(colon + 1);
    if (host.includes(":")) {
      fail(isIPv6(host) || isIPv6(s) ? 'IPv6 addresses need brackets, as in "[2001:db8::1]:51820"' : "not an address:port pair");
    }
  }
  if (!/^[0-9]{1,5}$/.test(portText)) fail(`port "${portText}" is not a number from 1 to 65535`);
  const port = Number(portText);
  if (port < 1 || port > 65535) fail(`port ${port} is outside 1-65535`);

  let zone = "";
  const pct = host.indexOf("%");
  if (pct >= 0) {
    zone = host.slice(pct + 1);
    host = host.slice(0, pct);
    if (!/^[A-Za-z0-9_.-]{1,15}$/.test(zone)) fail(`zone "${zone}" is not an interface name or index`);
  }
  if (host === "") fail("no address");
  let addr;
  try {
    addr = parseIp(host);
  } catch {
    if (/^[A-Za-z0-9.-]+$/.test(host) && /[A-Za-z]/.test(host)) fail("hostnames are not resolved here; give an IP address");
    fail(`"${host}" is not an IP address`);
  }
  addr = unmapIPv4(addr);
  if (addr.family === 4) zone = ""; // a mapped address written with a zone has no use for it
  return { family: addr.family, bytes: addr.bytes, address: formatIp(addr.bytes), zone, port };
}

/** "1.2.3.4:51820" or "[addr%zone]:51820". */
export function formatAddrPort(family: IpFamily, address: string, zone: string, port: number): string {
  if (family === 4) return `${address}:${port}`;
  return zone ? `[${address}%${zone}]:${port}` : `[${address}]:${port}`;
}
