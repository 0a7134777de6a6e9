/**
 * The address of a UoTLV/1 server: an http:// or https:// URL whose path is sent in the upgrade
 * request, e.g. "https://vpn.example.org/proxyguard".
 */
import { isIP } from "node:net";
import { hasControlChars } from "./http-head.js";

export class TunnelUrlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TunnelUrlError";
  }
}

export interface TunnelUrl {
  /** Canonical text: lower-case scheme and host, default port left out, "/" for an empty path. */
  href: string;
  /** https: TLS around the connection. */
  secure: boolean;
  /** Host name or IP address, IPv6 without brackets. */
  hostname: string;
  port: number;
  /** Path and query, as sent in the request line. */
  path: string;
  /** The Host header: the host as written in the URL, with the port if it is not the default. */
  hostHeader: string;
}

/** Whether `text` is written as a URL ("scheme://..."), as opposed to "host:port". */
export function looksLikeUrl(text: string): boolean {
  return /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(text);
}

/** Parses and checks a server URL; throws {@link TunnelUrlError} saying what is wrong. */
export function parseTunnelUrl(text: string): TunnelUrl {
  const bad = (why: string): TunnelUrlError => new TunnelUrlError(`invalid URL ${JSON.stringify(text)}: ${why}`);
  // The URL parser silently drops blanks and line breaks; refuse them instead.
  if (hasControlChars(text, true)) throw bad("contains blanks or control characters");
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw bad("not a URL");
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") throw bad(`scheme must be http or https, not ${u.protocol.slice(0, -1)}`);
  if (u.username !== "" || u.password !== "") throw bad("user names and passwords are not supported");
  if (u.hash !== "") throw bad("a #fragment has no meaning here");
  let hostname = u.hostname;
  if (hostname.startsWith("[") && hostname.endsWith("]")) hostname = hostname.slice(1, -1);
  if (hostname === "") throw bad("no host");
  if (hostname.includes(":") && isIP(hostname) !== 6) throw bad("malformed IPv6 address");
  const secure = u.protocol === "https:";
  const port = u.port === "" ? (secure ? 443 : 80) : Number(u.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw bad("port must be 1-65535");
  return { href: u.href, secure, hostname, port, path: u.pathname + u.search, hostHeader: u.host };
}
