/**
 * Where a UoTLV/1 server listens: "0.0.0.0:443", "[::]:443", "192.0.2.1:8080", or a bare port
 * ("443") for every address of both families.
 */
import { isIP } from "node:net";
import { formatHostPort, HostPortError, parseHostPort } from "../hostport/host-port.js";

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
  let hp;
  try {
    hp = parseHostPort(text.trim(), { minPort: 0, barePort: true });
  } catch (err) {
    if (err instanceof HostPortError) throw bad(err.message);
    throw err;
  }
  if (hp.host === "") return { host: undefined, port: hp.port };
  if (hp.zone !== "") throw bad("zones are not supported here");
  const family = isIP(hp.host);
  if (hp.bracketed && family !== 6) throw bad(`${JSON.stringify(hp.host)} is not an IPv6 address`);
  if (!hp.bracketed && family !== 4) throw bad(`${JSON.stringify(hp.host)} is not an IPv4 address`);
  return { host: hp.host, port: hp.port };
}

export function formatListenAddress(a: ListenAddress): string {
  return a.host === undefined ? String(a.port) : formatHostPort(a.host, a.port);
}
