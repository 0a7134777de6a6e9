/**
 * The text of UAPI requests and replies, independent of any socket.
 *
 * `set=1` bodies are `key=value` lines: device keys first, then one block per peer opened by
 * `public_key`. `get=1` replies list the device keys, then for each peer its keys in the order
 * the reference implementation writes them (and the `wg` tool reads them), then `errno=0`.
 */
import { formatCidr, formatIp, maskPrefix, parseCidr, parseIp } from "../allowedips/index.js";
import { keyFromHex, keyToHex } from "../crypto/keys.js";
import { UapiErrno, UapiError } from "./error.js";
import { UAPI_EXTRA_PREFIX, type UapiDeviceState, type UapiPeerChange, type UapiPeerState, type UapiSetRequest } from "./types.js";
import { formatHostPort, HostPortError, parseHostPort } from "../hostport/host-port.js";

const DEVICE_KEYS = new Set(["private_key", "listen_port", "fwmark", "replace_peers"]);
const PEER_KEYS = new Set([
  "remove",
  "update_only",
  "preshared_key",
  "endpoint",
  "persistent_keepalive_interval",
  "replace_allowed_ips",
  "allowed_ip",
  "protocol_version",
]);

/**
 * Parses the lines of a `set=1` request: everything after the `set=1` line, without the blank
 * line that ends the request. Throws {@link UapiError}: `PROTOCOL` for a line without "=",
 * `INVALID` for anything else that is wrong. Nothing is applied here, so a request that fails
 * to parse changes nothing.
 */
export function parseSet(lines: readonly string[]): UapiSetRequest {
  const request: UapiSetRequest = { replacePeers: false, peers: [] };
  let peer: UapiPeerChange | undefined;
  for (const line of lines) {
    const eq = line.indexOf("=");
    if (eq < 0) throw new UapiError(UapiErrno.PROTOCOL, `line ${JSON.stringify(clip(line))} is not key=value`);
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    if (key === "public_key") {
      peer = {
        publicKey: hexKey(key, value),
        remove: false,
        updateOnly: false,
        replaceAllowedIps: false,
        allowedIps: [],
        removeAllowedIps: [],
      };
      request.peers.push(peer);
    } else if (peer === undefined) {
      parseDeviceLine(request, key, value);
    } else {
      parsePeerLine(peer, key, value);
    }
  }
  return request;
}

function parseDeviceLine(request: UapiSetRequest, key: string, value: string): void {
  switch (key) {
    case "private_key":
      request.privateKey = nullIfZero(hexKey(key, value));
      return;
    case "listen_port":
      request.listenPort = unsigned(key, value, 0xffff);
      return;
    case "fwmark":
      request.fwmark = unsigned(key, value, 0xffffffff);
      return;
    case "replace_peers":
      request.replacePeers = onlyTrue(key, value);
      return;
  }
  if (PEER_KEYS.has(key)) throw invalid(`peer key ${key} given before any public_key`);
  throw invalid(`unknown device key ${JSON.stringify(clip(key))}`);
}

function parsePeerLine(peer: UapiPeerChange, key: string, value: string): void {
  switch (key) {
    case "remove":
      peer.remove = onlyTrue(key, value);
      return;
    case "update_only":
      peer.updateOnly = onlyTrue(key, value);
      return;
    case "preshared_key":
      peer.presharedKey = nullIfZero(hexKey(key, value));
      return;
    case "endpoint":
      peer.endpoint = parseEndpoint(value);
      return;
    case "persistent_keepalive_interval":
      peer.persistentKeepalive = unsigned(key, value, 0xffff);
      return;
    case "replace_allowed_ips":
      onlyTrue(key, value);
      // Prefixes listed before the replace line are replaced too.
      peer.replaceAllowedIps = true;
      peer.allowedIps = [];
      peer.removeAllowedIps = [];
      return;
    case "allowed_ip": {
      const removing = value.startsWith("-");
      const prefix = parseAllowedIp(removing ? value.slice(1) : value);
      // Keep the two lists disjoint; the later line wins, as if applied one by one.
      peer.allowedIps = peer.allowedIps.filter((p) => p !== prefix);
      peer.removeAllowedIps = peer.removeAllowedIps.filter((p) => p !== prefix);
      (removing ? peer.removeAllowedIps : peer.allowedIps).push(prefix);
      return;
    }
    case "protocol_version":
      if (value !== "1") throw invalid(`unsupported protocol_version ${JSON.stringify(clip(value))}`);
      return;
  }
  if (DEVICE_KEYS.has(key)) throw invalid(`device key ${key} given inside a peer`);
  throw invalid(`unknown peer key ${JSON.stringify(clip(key))}`);
}

/**
 * The body of a `get=1` reply for `state`: every line ends in "\n"; the caller appends the
 * status (see {@link formatStatus}). Throws if the state cannot be represented (a key of the
 * wrong size, a line break in a string, a negative counter).
 */
export function formatGet(state: UapiDeviceState): string {
  const out: string[] = [];
  if (state.privateKey !== undefined && !isZero(state.privateKey)) out.push(`private_key=${keyToHex(state.privateKey)}`);
  if (state.listenPort !== 0) out.push(`listen_port=${integer("listenPort", state.listenPort, 0xffff)}`);
  if (state.fwmark !== 0) out.push(`fwmark=${integer("fwmark", state.fwmark, 0xffffffff)}`);
  formatExtra(state.extra, out);
  for (const peer of state.peers) formatPeer(peer, out);
  return out.map((l) => l + "\n").join("");
}

/** tswg's own keys: validated so a value can never smuggle in a line of its own. */
function formatExtra(extra: Record<string, string> | undefined, out: string[]): void {
  if (extra === undefined) return;
  for (const [k, v] of Object.entries(extra)) {
    if (!k.startsWith(UAPI_EXTRA_PREFIX) || !/^[a-z0-9_]+$/u.test(k)) throw new Error(`invalid extra UAPI key ${JSON.stringify(k)}`);
    out.push(`${k}=${oneLine(k, v)}`);
  }
}

const ZERO_KEY = new Uint8Array(32);

function formatPeer(peer: UapiPeerState, out: string[]): void {
  out.push(`public_key=${keyToHex(peer.publicKey)}`);
  out.push(`preshared_key=${keyToHex(peer.presharedKey ?? ZERO_KEY)}`);
  out.push(`protocol_version=${integer("protocolVersion", peer.protocolVersion, 1)}`);
  if (peer.endpoint !== undefined) out.push(`endpoint=${oneLine("endpoint", peer.endpoint)}`);
  const [sec, nsec] = splitMillis(peer.lastHandshakeMs);
  out.push(`last_handshake_time_sec=${sec}`);
  out.push(`last_handshake_time_nsec=${nsec}`);
  out.push(`tx_bytes=${counter("txBytes", peer.txBytes)}`);
  out.push(`rx_bytes=${counter("rxBytes", peer.rxBytes)}`);
  out.push(`persistent_keepalive_interval=${integer("persistentKeepalive", peer.persistentKeepalive, 0xffff)}`);
  for (const prefix of peer.allowedIps) out.push(`allowed_ip=${oneLine("allowed IP", prefix)}`);
  formatExtra(peer.extra, out);
}

/** The status lines that end every reply: `errno=0` on success, `errno=-N` on failure. */
export function formatStatus(errno: number): string {
  return `errno=${errno === 0 ? 0 : -Math.abs(errno)}\n\n`;
}

// --- values ---

function invalid(message: string): UapiError {
  return new UapiError(UapiErrno.INVALID, message);
}

// Bound what is echoed back into logs and errors: a hostile client controls these strings.
function clip(s: string): string {
  return s.length > 80 ? s.slice(0, 80) + "..." : s;
}

function hexKey(key: string, value: string): Uint8Array {
  try {
    return keyFromHex(value);
  } catch {
    // Do not echo the value: it may be a private key.
    throw invalid(`${key} is not 64 hex digits`);
  }
}

function isZero(key: Uint8Array): boolean {
  return key.every((b) => b === 0);
}

function nullIfZero(key: Uint8Array): Uint8Array | null {
  return isZero(key) ? null : key;
}

function unsigned(key: string, value: string, max: number): number {
  // Decimal digits only; leading zeros are tolerated as the reference implementation does.
  if (!/^[0-9]{1,20}$/.test(value) || Number(value) > max) {
    throw invalid(`${key} ${JSON.stringify(clip(value))} is not a number from 0 to ${max}`);
  }
  return Number(value);
}

function onlyTrue(key: string, value: string): true {
  if (value !== "true") throw invalid(`${key} must be "true", got ${JSON.stringify(clip(value))}`);
  return true;
}

function parseAllowedIp(text: string): string {
  // Unlike config files, the protocol always spells out the prefix length.
  if (!/^[0-9A-Fa-f:.]+\/[0-9]+$/.test(text)) throw invalid(`allowed_ip ${JSON.stringify(clip(text))} is not an IP prefix`);
  try {
    return formatCidr(maskPrefix(parseCidr(text)));
  } catch {
    throw invalid(`allowed_ip ${JSON.stringify(clip(text))} is not an IP prefix`);
  }
}

/** "a.b.c.d:port" or "[v6]:port" / "[v6%zone]:port", as an IP endpoint parser in Go accepts. */
export function parseEndpoint(text: string): string {
  const bad = (why: string): UapiError => invalid(`endpoint ${JSON.stringify(clip(text))}: ${why}`);
  let hp;
  try {
    hp = parseHostPort(text, { minPort: 0 });
  } catch (err) {
    if (err instanceof HostPortError) throw bad(err.message);
    throw err;
  }
  let addr;
  try {
    addr = parseIp(hp.host);
  } catch {
    throw bad(hp.bracketed ? "not an IPv6 address" : "not an IP address");
  }
  if (hp.bracketed && addr.family !== 6) throw bad("brackets around an IPv4 address");
  if (!hp.bracketed && addr.family !== 4) throw bad("an IPv6 address needs brackets");
  return formatHostPort(formatIp(addr.bytes), hp.port, hp.zone);
}

function integer(what: string, n: number, max: number): number {
  if (!Number.isInteger(n) || n < 0 || n > max) throw new RangeError(`${what} ${n} is not an integer from 0 to ${max}`);
  return n;
}

function counter(what: string, n: bigint | number): string {
  if (typeof n === "bigint" ? n < 0n : !Number.isSafeInteger(n) || n < 0) {
    throw new RangeError(`${what} ${String(n)} is not a non-negative integer`);
  }
  return n.toString();
}

function oneLine(what: string, s: string): string {
  if (typeof s !== "string" || s === "" || /[\n\r\0]/.test(s)) throw new RangeError(`${what} ${JSON.stringify(s)} cannot be sent on one line`);
  return s;
}

function splitMillis(ms: number): [number, number] {
  if (!Number.isFinite(ms) || ms <= 0) return [0, 0];
  const sec = Math.floor(ms / 1000);
  const nsec = Math.min(999_999_999, Math.round((ms - sec * 1000) * 1e6));
  return [sec, nsec];
}

/**
 * The lines of a `set=1` request for `request` (the inverse of {@link parseSet}), without the
 * `set=1` line and the blank line that ends the request.
 */
export function formatSet(request: UapiSetRequest): string[] {
  const out: string[] = [];
  if (request.privateKey !== undefined) out.push(`private_key=${keyToHex(request.privateKey ?? new Uint8Array(32))}`);
  if (request.listenPort !== undefined) out.push(`listen_port=${integer("listenPort", request.listenPort, 0xffff)}`);
  if (request.fwmark !== undefined) out.push(`fwmark=${integer("fwmark", request.fwmark, 0xffffffff)}`);
  if (request.replacePeers) out.push("replace_peers=true");
  for (const p of request.peers) {
    out.push(`public_key=${keyToHex(p.publicKey)}`);
    if (p.remove) {
      out.push("remove=true");
      continue;
    }
    if (p.updateOnly) out.push("update_only=true");
    if (p.presharedKey !== undefined) out.push(`preshared_key=${keyToHex(p.presharedKey ?? new Uint8Array(32))}`);
    if (p.endpoint !== undefined) out.push(`endpoint=${parseEndpoint(p.endpoint)}`);
    if (p.persistentKeepalive !== undefined) out.push(`persistent_keepalive_interval=${integer("persistentKeepalive", p.persistentKeepalive, 0xffff)}`);
    if (p.replaceAllowedIps) out.push("replace_allowed_ips=true");
    for (const a of p.allowedIps) out.push(`allowed_ip=${parseAllowedIp(a)}`);
    for (const a of p.removeAllowedIps) out.push(`allowed_ip=-${parseAllowedIp(a)}`);
  }
  return out;
}
