/**
 * "ip:port" endpoint text, as `wg` writes it: "192.0.2.1:51820", "[2001:db8::1]:51820",
 * "[fe80::1%eth0]:51820". IP literals only: name resolution is the caller's business (wg-quick
 * resolves names before it hands endpoints to the device).
 */
import { formatIp, parseIp, unmapIPv4, type IpFamily } from "../allowedips/ip.js";
import { formatHostPort, HostPortError, parseHostPort } from "../hostport/host-port.js";

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
  const fail: (why: string) => never = (why) => {
    throw new EndpointParseError(`invalid endpoint "${text}": ${why}`);
  };
  let hp;
  try {
    hp = parseHostPort(text.trim());
  } catch (err) {
    if (err instanceof HostPortError) fail(err.message);
    throw err;
  }
  if (hp.bracketed && !hp.host.includes(":")) fail("only IPv6 addresses go in brackets");
  let addr;
  try {
    addr = parseIp(hp.host);
  } catch {
    if (/^[A-Za-z0-9.-]+$/.test(hp.host) && /[A-Za-z]/.test(hp.host)) fail("hostnames are not resolved here; give an IP address");
    fail(`"${hp.host}" is not an IP address`);
  }
  addr = unmapIPv4(addr);
  // A mapped address written with a zone has no use for it.
  const zone = addr.family === 4 ? "" : hp.zone;
  return { family: addr.family, bytes: addr.bytes, address: formatIp(addr.bytes), zone, port: hp.port };
}

/** "1.2.3.4:51820" or "[addr%zone]:51820". */
export function formatAddrPort(family: IpFamily, address: string, zone: string, port: number): string {
  return formatHostPort(address, port, family === 4 ? "" : zone);
}
