/**
 * Where a UoTLV/1 server listens: "0.0.0.0:443", "[::]:443", "192.0.2.1:8080", or a bare port
 * ("443") for every address of both families.
 */
import { isIP } from "node:net";

export interface ListenAddress {
  /** IP address to bind, or undefined for every address. */
  host: string | undefined;
  /** 0 = any free port. */
  port: number;
}

export class ListenAddressError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ListenAddressError";
  }
}

export function parseListenAddress(text: string): ListenAddress {
  const bad = (why: string): ListenAddressError => new ListenAddressError(`invalid listen address ${JSON.stringify(text)}: ${why}`);
  const s = text.trim();
  let host: string | undefined;
  let portText: string;
  if (/^[0-9]+$/.test(s)) {
    host = undefined;
    portText = s;
  } else if (s.startsWith("[")) {
    const close = s.indexOf("]");
    if (close < 0 || s[close + 1] !== ":") throw bad('expected "[IPv6]:port"');
    host = s.slice(1, close);
    portText = s.slice(close + 2);
    if (isIP(host) !== 6) throw bad(`${JSON.stringify(host)} is not an IPv6 address`);
  } else {
    const colon = s.lastIndexOf(":");
    if (colon < 0) throw bad('expected "address:port" or a port');
    host = s.slice(0, colon);
    portText = s.slice(colon + 1);
    if (isIP(host) !== 4) throw bad(host.includes(":") ? "IPv6 addresses need brackets" : `${JSON.stringify(host)} is not an IPv4 address`);
  }
  if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) > 65535) throw bad("port must be a number from 0 to 65535");
  return { host, port: Number(portText) };
}

export function formatListenAddress(a: ListenAddress): string {
  if (a.host === undefined) return String(a.port);
  return a.host.includes(":") ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}
