/**
 * Endpoint hostnames in a configuration are resolved once, when the interface comes up, as
 * wg-quick (through wg) does; the device itself only ever sees IP literals.
 */
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import type { Endpoint } from "../conf/values.js";

/** "host:port" text the UDP Bind understands: "1.2.3.4:51820" or "[fd00::1]:51820". */
export async function resolveEndpoint(ep: Endpoint): Promise<string> {
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
