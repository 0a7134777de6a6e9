/**
 * STUN and TURN server URLs (RFC 7064, RFC 7065), as the `ICEServers` setting gives them:
 *
 *   stun:stun.example.org            stun:192.0.2.1:3478
 *   turn:turn.example.org?transport=tcp      turns:turn.example.org:5349
 *   turn:user:secret@turn.example.org:3478   (credentials inline; percent-encoded as needed)
 *
 * TURN servers need a username and credential, given inline or next to the URLs. The ICE library
 * used here speaks STUN over UDP to IPv4 servers only and TURN over UDP (IPv4), TCP or TLS; URLs
 * it cannot serve are refused here with an error that says so, rather than failing later.
 */
import { isIP, isIPv6 } from "node:net";

export type IceServerScheme = "stun" | "turn" | "turns";
export type TurnTransport = "udp" | "tcp" | "tls";

export interface IceServer {
  scheme: IceServerScheme;
  /** Host name or IP literal (IPv6 without brackets). */
  host: string;
  port: number;
  /** How the server is reached: always "udp" for STUN; "tls" for turns:. */
  transport: TurnTransport;
  username?: string;
  credential?: string;
  /** The URL without credentials, for logs and status. */
  url: string;
}

/** A server entry in the shape of WebRTC's RTCIceServer. */
export interface IceServerSpec {
  urls: string | readonly string[];
  username?: string;
  credential?: string;
}

export class IceServerUrlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "IceServerUrlError";
  }
}

const DEFAULT_PORT: Record<IceServerScheme, number> = { stun: 3478, turn: 3478, turns: 5349 };
const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

/**
 * Parses one URL. `credentials` apply when the URL carries none inline.
 * Throws {@link IceServerUrlError} naming what is wrong.
 */
export function parseIceServer(text: string, credentials: { username?: string; credential?: string } = {}): IceServer {
  if (typeof text !== "string") throw new IceServerUrlError(`ICE server URL must be a string, got ${typeof text}`);
  const raw = text.trim();
  const fail: (why: string) => never = (why) => {
    throw new IceServerUrlError(`invalid ICE server URL "${redact(raw)}": ${why}`);
  };
  if (raw === "") fail("empty");
  const colon = raw.indexOf(":");
  if (colon < 0) fail('expected "stun:", "turn:" or "turns:" followed by a host');
  const schemeText = raw.slice(0, colon).toLowerCase();
  if (schemeText === "stuns") fail("STUN over TLS (stuns:) is not supported; use stun: or a turns: server");
  if (schemeText !== "stun" && schemeText !== "turn" && schemeText !== "turns") {
    fail(`unknown scheme "${schemeText}" (expected stun, turn or turns)`);
  }
  const scheme: IceServerScheme = schemeText;
  let rest = raw.slice(colon + 1);
  if (rest.startsWith("//")) fail('no "//" after the scheme (write "turn:host:port")');

  let query = "";
  const q = rest.indexOf("?");
  if (q >= 0) {
    query = rest.slice(q + 1);
    rest = rest.slice(0, q);
  }

  let username: string | undefined;
  let credential: string | undefined;
  const at = rest.lastIndexOf("@");
  if (at >= 0) {
    if (scheme === "stun") fail("STUN servers take no credentials");
    const userinfo = rest.slice(0, at);
    rest = rest.slice(at + 1);
    const sep = userinfo.indexOf(":");
    if (sep < 0) fail('inline credentials must be "user:credential@host"');
    username = decode(userinfo.slice(0, sep), "username", fail);
    credential = decode(userinfo.slice(sep + 1), "credential", fail);
  }

  let host: string;
  let portText: string | undefined;
  if (rest.startsWith("[")) {
    const close = rest.indexOf("]");
    if (close < 0) fail('missing "]" after an IPv6 address');
    host = rest.slice(1, close);
    if (!isIPv6(host)) fail(`"${host}" is not an IPv6 address`);
    const after = rest.slice(close + 1);
    if (after !== "") {
      if (!after.startsWith(":")) fail('expected ":port" after "]"');
      portText = after.slice(1);
    }
  } else {
    const c = rest.indexOf(":");
    if (c >= 0) {
      if (rest.indexOf(":", c + 1) >= 0) fail('IPv6 addresses need brackets, as in "stun:[2001:db8::1]:3478"');
      host = rest.slice(0, c);
      portText = rest.slice(c + 1);
    } else {
      host = rest;
    }
    if (host === "") fail("no host");
    if (isIP(host) === 0 && !HOSTNAME.test(host)) fail(`"${host}" is neither an IP address nor a host name`);
  }

  let port = DEFAULT_PORT[scheme];
  if (portText !== undefined) {
    if (!/^[0-9]{1,5}$/.test(portText)) fail(`port "${portText}" is not a number from 1 to 65535`);
    port = Number(portText);
    if (port < 1 || port > 65535) fail(`port ${port} is outside 1-65535`);
  }

  let transport: TurnTransport = scheme === "turns" ? "tls" : "udp";
  if (query !== "") {
    if (scheme === "stun") fail("STUN URLs take no parameters");
    const m = /^transport=([A-Za-z]+)$/.exec(query);
    if (m === null) fail(`unknown parameter "${query}" (only "transport=udp" or "transport=tcp")`);
    const t = m[1]!.toLowerCase();
    if (t !== "udp" && t !== "tcp") fail(`transport "${t}" is not udp or tcp`);
    if (scheme === "turns") {
      if (t === "udp") fail("TURN over DTLS (turns: with transport=udp) is not supported; use transport=tcp");
    } else {
      transport = t;
    }
  }

  if (isIPv6(host) && (scheme === "stun" || transport === "udp")) {
    fail(`${scheme === "stun" ? "STUN" : "TURN over UDP"} needs an IPv4 address or a host name (the ICE library queries it over IPv4)`);
  }

  if (scheme !== "stun") {
    username ??= credentials.username;
    credential ??= credentials.credential;
    if (username === undefined || username === "" || credential === undefined || credential === "") {
      fail('TURN servers need a username and credential ("turn:user:secret@host" or given next to the URL)');
    }
  }

  const hostText = isIPv6(host) ? `[${host}]` : host;
  const url = `${scheme}:${hostText}:${port}${scheme === "turn" && transport === "tcp" ? "?transport=tcp" : ""}`;
  const server: IceServer = { scheme, host, port, transport, url };
  if (username !== undefined) server.username = username;
  if (credential !== undefined) server.credential = credential;
  return server;
}

/**
 * Parses a list: a string of URLs separated by commas or white space (the configuration form),
 * or an array of URLs and RTCIceServer-like entries.
 */
export function parseIceServers(input: string | readonly (string | IceServerSpec)[]): IceServer[] {
  if (typeof input === "string") {
    return input
      .split(/[\s,]+/)
      .filter((s) => s !== "")
      .map((s) => parseIceServer(s));
  }
  const out: IceServer[] = [];
  for (const entry of input) {
    if (typeof entry === "string") {
      out.push(parseIceServer(entry));
      continue;
    }
    const urls = typeof entry.urls === "string" ? [entry.urls] : entry.urls;
    if (urls.length === 0) throw new IceServerUrlError("ICE server entry has no URLs");
    const creds: { username?: string; credential?: string } = {};
    if (entry.username !== undefined) creds.username = entry.username;
    if (entry.credential !== undefined) creds.credential = entry.credential;
    for (const u of urls) out.push(parseIceServer(u, creds));
  }
  return out;
}

export interface SelectedServers {
  /** Where server-reflexive candidates are learnt, or null: then no STUN request leaves the host. */
  stun: IceServer | null;
  /** Where relay candidates are allocated, or null. */
  turn: IceServer | null;
  /** Servers beyond the first of each kind (fall-backs). */
  unused: IceServer[];
  /** Every STUN server in order (with the UDP TURN stand-in when none is listed). */
  stunServers: IceServer[];
  /** Every TURN server in order. */
  turnServers: IceServer[];
}

/**
 * Sorts the servers an agent uses: STUN servers in order (the first that answers is used, the
 * rest are fall-backs) and TURN servers in order (each gets a relay lane). With no STUN server
 * but TURN servers reached over UDP, those answer STUN too (every TURN server is a STUN server),
 * so srflx candidates still come from configured servers only.
 */
export function selectIceServers(servers: readonly IceServer[]): SelectedServers {
  let stun: IceServer | null = null;
  let turn: IceServer | null = null;
  const unused: IceServer[] = [];
  const stunServers: IceServer[] = [];
  const turnServers: IceServer[] = [];
  for (const s of servers) {
    if (s.scheme === "stun") stunServers.push(s);
    else turnServers.push(s);
    if (s.scheme === "stun" && stun === null) stun = s;
    else if (s.scheme !== "stun" && turn === null) turn = s;
    else unused.push(s);
  }
  if (stun === null) {
    for (const t of turnServers) {
      if (t.transport !== "udp") continue;
      const standIn: IceServer = { scheme: "stun", host: t.host, port: t.port, transport: "udp", url: `stun:${t.host}:${t.port}` };
      stun ??= standIn;
      stunServers.push(standIn);
    }
  }
  return { stun, turn, unused, stunServers, turnServers };
}

function decode(s: string, what: string, fail: (why: string) => never): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return fail(`the ${what} is not valid percent-encoding`);
  }
}

/** The URL with inline credentials blanked, so that error messages and logs never show them. */
function redact(url: string): string {
  return url.replace(/^([A-Za-z]+:)[^@/?]*@/, "$1***@");
}
