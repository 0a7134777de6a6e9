/**
 * Values of the network-stack keys of `[Interface]` (docs/netstack.md): `Netstack`, `SOCKS5`,
 * `HTTPProxy`, `Forward` and `Expose`.
 */
import { isIP } from "node:net";
import { ValueError } from "./values.js";

/** "endpoint": the stack owns the Addresses; "router": it also forwards flows to anywhere. */
export type NetstackMode = "endpoint" | "router";

export interface HostPort {
  /** IP literal (no brackets) or host name. */
  host: string;
  port: number;
}

/** A local proxy listener, with optional credentials (SOCKS5 user/password, HTTP Basic). */
export interface ProxyListen extends HostPort {
  username?: string;
  password?: string;
}

/** `tcp://127.0.0.1:2222 -> 10.0.0.2:22`: connections to `listen` are carried to `target`. */
export interface PortMapping {
  protocol: "tcp" | "udp";
  listen: HostPort;
  target: HostPort;
}

export function parseNetstackMode(value: string): NetstackMode | undefined {
  const v = value.toLowerCase();
  if (v === "true" || v === "on" || v === "endpoint") return "endpoint";
  if (v === "router") return "router";
  if (v === "false" || v === "off") return undefined;
  throw new ValueError(`"${value}" is none of true, false, router`);
}

export function formatNetstackMode(mode: NetstackMode): string {
  return mode === "endpoint" ? "true" : "router";
}

/** host:port with an IPv6 host in brackets; the port 1-65535 (0 with `zeroOk`). */
export function parseHostPort(value: string, zeroOk = false): HostPort {
  const m = /^(?:\[([^\]]+)\]|([^:[\]\s]+)):(\d{1,5})$/u.exec(value.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535 || (port === 0 && !zeroOk)) throw new ValueError(`"${value}" is not host:port (IPv6 in brackets)`);
  const host = m[1] ?? m[2]!;
  if (m[1] !== undefined && isIP(host) !== 6) throw new ValueError(`"${host}" is not an IPv6 address`);
  return { host, port };
}

export function formatHostPort(hp: HostPort): string {
  return `${hp.host.includes(":") ? `[${hp.host}]` : hp.host}:${hp.port}`;
}

/** `[user:password@]host:port` */
export function parseProxyListen(value: string): ProxyListen {
  const at = value.lastIndexOf("@");
  if (at < 0) return parseHostPort(value);
  const cred = value.slice(0, at);
  const colon = cred.indexOf(":");
  if (colon <= 0) throw new ValueError("credentials must be user:password@");
  const username = cred.slice(0, colon);
  const password = cred.slice(colon + 1);
  if (Buffer.byteLength(username) > 255 || Buffer.byteLength(password) > 255) throw new ValueError("user and password are at most 255 bytes each");
  return { ...parseHostPort(value.slice(at + 1)), username, password };
}

export function formatProxyListen(p: ProxyListen): string {
  return (p.username !== undefined ? `${p.username}:${p.password ?? ""}@` : "") + formatHostPort(p);
}

/** `tcp://HOST:PORT -> HOST:PORT` (or udp://); the arrow may be written without spaces. */
export function parsePortMapping(value: string): PortMapping {
  const m = /^(tcp|udp):\/\/(\S+?)\s*->\s*(\S+)$/iu.exec(value.trim());
  if (!m) throw new ValueError(`"${value}" is not tcp://HOST:PORT -> HOST:PORT (or udp://)`);
  return { protocol: m[1]!.toLowerCase() as "tcp" | "udp", listen: parseHostPort(m[2]!), target: parseHostPort(m[3]!) };
}

export function formatPortMapping(p: PortMapping): string {
  return `${p.protocol}://${formatHostPort(p.listen)} -> ${formatHostPort(p.target)}`;
}
