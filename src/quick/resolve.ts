/**
 * Endpoint hostnames in a configuration are resolved once, when the interface comes up, as
 * wg-quick (through wg) does; the device itself only ever sees IP literals.
 */
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import type { Endpoint } from "../conf/values.js";

/**
 * "host:port" text the UDP Bind understands: "1.2.3.4:51820" or "[fd00::1]:51820". A UoTLV/1
 * URL stays a URL: the TCP Bind connects to it (see {@link resolveHostAddresses}).
 */
export async function resolveEndpoint(ep: Endpoint): Promise<string> {
  if (ep.url !== undefined) return ep.url;
  let host = ep.host;
  if (isIP(host) === 0) {
    try {
      // Prefer IPv4 like wg does when both exist: it is the family most likely to work.
      host = (await lookup(host, { verbatim: false })).address;
    } catch (err) {
      throw new Error(`cannot resolve endpoint host "${ep.host}": ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  }
  return isIP(host) === 6 ? `[${host}]:${ep.port}` : `${host}:${ep.port}`;
}

/**
 * Every address of a UoTLV/1 server's host, resolved when the interface comes up like any other
 * endpoint: a typo fails early, and reconnecting later needs no DNS (which may by then be
 * reachable only through the tunnel itself).
 */
export async function resolveHostAddresses(host: string): Promise<string[]> {
  if (isIP(host) !== 0) return [host];
  try {
    return (await lookup(host, { all: true, verbatim: false })).map((a) => a.address);
  } catch (err) {
    throw new Error(`cannot resolve endpoint host "${host}": ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}
