/**
 * The kernel module's control interface: generic netlink family "wireguard" (attributes from the
 * kernel's uapi/linux/wireguard.h), mapped to and from the UAPI's data shapes.
 *
 * Large changes are split over several messages (each well under the socket's limit) the way
 * `wg` does it: device attributes go in the first, a peer whose allowed IPs do not fit goes on
 * in the next message without replacing what the previous one added.
 */
import { formatCidr, formatIp, normalizeCidr, parseCidr } from "../allowedips/index.js";
import { parseAddrPort } from "../bind/addr-port.js";
import type { UapiDeviceState, UapiPeerChange, UapiPeerState, UapiSetRequest } from "../uapi/types.js";
import type { WireGuardControl } from "./control.js";
import { NETLINK_GENERIC, NLM_F_DUMP, NetlinkSocket, attr, attrLength, attrsLength, bytes, decodeAttrs, nested, str, u16, u32, u8, type NlAttr, type NlAttrView } from "./netlink.js";

const GENL_ID_CTRL = 0x10;
const CTRL_CMD_GETFAMILY = 3;
const CTRL_ATTR_FAMILY_ID = 1;
const CTRL_ATTR_FAMILY_NAME = 2;
const WG_CMD_GET_DEVICE = 0;
const WG_CMD_SET_DEVICE = 1;
const WG_GENL_VERSION = 1;

const D_IFNAME = 2;
const D_PRIVATE_KEY = 3;
const D_FLAGS = 5;
const D_LISTEN_PORT = 6;
const D_FWMARK = 7;
const D_PEERS = 8;
const F_REPLACE_PEERS = 1;

const P_PUBLIC_KEY = 1;
const P_PRESHARED_KEY = 2;
const P_FLAGS = 3;
const P_ENDPOINT = 4;
const P_KEEPALIVE = 5;
const P_LAST_HANDSHAKE = 6;
const P_RX_BYTES = 7;
const P_TX_BYTES = 8;
const P_ALLOWEDIPS = 9;
const PF_REMOVE_ME = 1;
const PF_REPLACE_ALLOWEDIPS = 2;
const PF_UPDATE_ONLY = 4;

const A_FAMILY = 1;
const A_IPADDR = 2;
const A_CIDR_MASK = 3;
const AF_INET = 2;
const AF_INET6 = 10;

/** Payload budget per message, far below the socket's limit (and like `wg`, a page or so). */
const MESSAGE_BUDGET = 16 * 1024;

function genlHeader(cmd: number, version: number): Buffer {
  return Buffer.from([cmd, version, 0, 0]);
}

/** The generic netlink id of `family`, or null when the kernel has no such family (module not loaded). */
export function resolveGenlFamily(sock: NetlinkSocket, family: string): number | null {
  try {
    const [m] = sock.request(GENL_ID_CTRL, 0, genlHeader(CTRL_CMD_GETFAMILY, 1), [str(CTRL_ATTR_FAMILY_NAME, family)], `resolving generic netlink family ${family}`);
    const id = m === undefined ? undefined : attr(decodeAttrs(m.payload.subarray(4)), CTRL_ATTR_FAMILY_ID);
    return id === undefined ? null : id.readUInt16LE(0);
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") return null;
    throw e;
  }
}

function encodeEndpoint(text: string): Buffer {
  const ep = parseAddrPort(text);
  if (ep.family === 4) {
    const b = Buffer.alloc(16);
    b.writeUInt16LE(AF_INET, 0);
    b.writeUInt16BE(ep.port, 2);
    b.set(ep.bytes, 4);
    return b;
  }
  const b = Buffer.alloc(28);
  b.writeUInt16LE(AF_INET6, 0);
  b.writeUInt16BE(ep.port, 2);
  b.set(ep.bytes, 8);
  b.writeUInt32LE(/^\d+$/.test(ep.zone) ? Number(ep.zone) : 0, 24);
  return b;
}

function decodeEndpoint(b: Buffer): string | undefined {
  const family = b.readUInt16LE(0);
  if (family === AF_INET && b.length >= 16) return `${formatIp(b.subarray(4, 8))}:${b.readUInt16BE(2)}`;
  if (family === AF_INET6 && b.length >= 28) {
    const scope = b.readUInt32LE(24);
    return `[${formatIp(b.subarray(8, 24))}${scope !== 0 ? `%${scope}` : ""}]:${b.readUInt16BE(2)}`;
  }
  return undefined;
}

function allowedIp(cidr: string): NlAttr {
  const p = parseCidr(cidr);
  return nested(0, [u16(A_FAMILY, p.family === 4 ? AF_INET : AF_INET6), bytes(A_IPADDR, p.bytes), u8(A_CIDR_MASK, p.bits)]);
}

/** Peer attributes without allowed IPs, and the allowed-IP entries, for one change. */
function peerParts(p: UapiPeerChange): { head: NlAttr[]; flags: number; ips: NlAttr[] } {
  const head: NlAttr[] = [bytes(P_PUBLIC_KEY, p.publicKey)];
  if (p.remove) return { head, flags: PF_REMOVE_ME, ips: [] };
  let flags = p.updateOnly ? PF_UPDATE_ONLY : 0;
  if (p.replaceAllowedIps) flags |= PF_REPLACE_ALLOWEDIPS;
  if (p.presharedKey !== undefined) head.push(bytes(P_PRESHARED_KEY, p.presharedKey ?? new Uint8Array(32)));
  if (p.endpoint !== undefined) head.push(bytes(P_ENDPOINT, encodeEndpoint(p.endpoint)));
  if (p.persistentKeepalive !== undefined) head.push(u16(P_KEEPALIVE, p.persistentKeepalive));
  return { head, flags, ips: p.allowedIps.map(allowedIp) };
}

/** The kernel module's interface `ifname` over generic netlink. */
export class KernelWireGuard implements WireGuardControl {
  readonly kind = "kernel";
  private readonly sock = new NetlinkSocket(NETLINK_GENERIC);
  private readonly family: number;

  constructor(readonly ifname: string) {
    const id = resolveGenlFamily(this.sock, "wireguard");
    if (id === null) {
      this.sock.close();
      throw new Error("the kernel has no WireGuard generic netlink family (module not loaded)");
    }
    this.family = id;
  }

  close(): void {
    this.sock.close();
  }

  get(): Promise<UapiDeviceState> {
    return Promise.resolve(this.getSync());
  }

  getSync(): UapiDeviceState {
    const msgs = this.sock.request(this.family, NLM_F_DUMP, genlHeader(WG_CMD_GET_DEVICE, WG_GENL_VERSION), [str(D_IFNAME, this.ifname)], `reading WireGuard interface ${this.ifname}`);
    return parseDeviceDump(msgs.map((m) => m.payload.subarray(4)));
  }

  set(request: UapiSetRequest): Promise<void> {
    try {
      this.setSync(request);
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e as Error);
    }
  }

  /** Applies `request`; peers with allowed IPs to remove are rewritten as a replace (the 6.1 module cannot remove one). */
  setSync(request: UapiSetRequest): void {
    const needsCurrent = request.peers.some((p) => !p.remove && p.removeAllowedIps.length > 0);
    const current = needsCurrent ? this.getSync().peers : [];
    for (const attrs of setDeviceMessages(this.ifname, request, current)) {
      this.sock.request(this.family, 0, genlHeader(WG_CMD_SET_DEVICE, WG_GENL_VERSION), attrs, `configuring WireGuard interface ${this.ifname}`);
    }
  }
}

/**
 * The attributes of the SET_DEVICE messages for `request`, each within the message budget.
 * `current` (the device's peers) is needed only for changes that remove allowed IPs.
 */
export function setDeviceMessages(ifname: string, request: UapiSetRequest, current: readonly UapiPeerState[] = []): NlAttr[][] {
  const currentIps = new Map(current.map((p) => [Buffer.from(p.publicKey).toString("base64"), p.allowedIps]));
  const device: NlAttr[] = [str(D_IFNAME, ifname)];
  if (request.privateKey !== undefined) device.push(bytes(D_PRIVATE_KEY, request.privateKey ?? new Uint8Array(32)));
  if (request.listenPort !== undefined) device.push(u16(D_LISTEN_PORT, request.listenPort));
  if (request.fwmark !== undefined) device.push(u32(D_FWMARK, request.fwmark));
  if (request.replacePeers) device.push(u32(D_FLAGS, F_REPLACE_PEERS));

  const messages: NlAttr[][] = [];
  let cur: NlAttr[] = device;
  let peersOfCur: NlAttr[] = [];
  let used = attrsLength(device);
  const flush = (): void => {
    if (peersOfCur.length > 0) cur.push(nested(D_PEERS, peersOfCur));
    messages.push(cur);
    cur = [str(D_IFNAME, ifname)];
    peersOfCur = [];
    used = attrsLength(cur);
  };
  for (let change of request.peers) {
    if (!change.remove && change.removeAllowedIps.length > 0) {
      const had = change.replaceAllowedIps ? [] : (currentIps.get(Buffer.from(change.publicKey).toString("base64")) ?? []);
      const drop = new Set(change.removeAllowedIps.map(normalizeCidr));
      const keep = [...had, ...change.allowedIps].map(normalizeCidr).filter((c, i, all) => !drop.has(c) && all.indexOf(c) === i);
      change = { ...change, replaceAllowedIps: true, allowedIps: keep, removeAllowedIps: [] };
    }
    const { head, flags, ips } = peerParts(change);
    // The peer's nest header, its head and flags, and the allowed-IPs nest header.
    const headSize = 4 + attrsLength(head) + 8 + 4;
    let flagsNow = flags;
    let i = 0;
    do {
      if (used + headSize > MESSAGE_BUDGET && peersOfCur.length > 0) flush();
      const peer: NlAttr[] = [...head, u32(P_FLAGS, flagsNow)];
      let size = headSize;
      const chunk: NlAttr[] = [];
      while (i < ips.length) {
        const ipSize = (attrLength(ips[i]!) + 3) & ~3;
        if (used + size + ipSize > MESSAGE_BUDGET) break;
        size += ipSize;
        chunk.push(ips[i++]!);
      }
      if (chunk.length > 0) peer.push(nested(P_ALLOWEDIPS, chunk));
      peersOfCur.push(nested(0, peer));
      used += size;
      // The rest of this peer's prefixes: added to what is there now, and only to this peer.
      flagsNow = (flags & ~PF_REPLACE_ALLOWEDIPS) | PF_UPDATE_ONLY;
      if (i < ips.length) flush();
    } while (i < ips.length);
  }
  if (peersOfCur.length > 0 || messages.length === 0) flush();
  return messages;
}

/**
 * The device state from the attributes of a GET_DEVICE dump (one buffer per message, after the
 * generic netlink header). A peer with many allowed IPs continues in the next message, where it
 * carries only its key and more prefixes.
 */
export function parseDeviceDump(parts: readonly Buffer[]): UapiDeviceState {
  const state: UapiDeviceState = { listenPort: 0, fwmark: 0, peers: [] };
  for (const part of parts) {
    const attrs = decodeAttrs(part);
    const priv = attr(attrs, D_PRIVATE_KEY);
    if (priv !== undefined) state.privateKey = Uint8Array.from(priv);
    const port = attr(attrs, D_LISTEN_PORT);
    if (port !== undefined) state.listenPort = port.readUInt16LE(0);
    const mark = attr(attrs, D_FWMARK);
    if (mark !== undefined) state.fwmark = mark.readUInt32LE(0);
    const peers = attr(attrs, D_PEERS);
    if (peers === undefined) continue;
    for (const entry of decodeAttrs(peers)) {
      const peer = decodePeer(decodeAttrs(entry.data));
      const last = state.peers[state.peers.length - 1];
      if (last !== undefined && Buffer.from(last.publicKey).equals(peer.publicKey) && peer.lastHandshakeMs === -1) last.allowedIps.push(...peer.allowedIps);
      else state.peers.push({ ...peer, lastHandshakeMs: Math.max(0, peer.lastHandshakeMs) });
    }
  }
  return state;
}

/** One peer of a dump; lastHandshakeMs is -1 when the message carried no handshake time (a continuation). */
function decodePeer(a: readonly NlAttrView[]): UapiPeerState & { publicKey: Uint8Array; lastHandshakeMs: number } {
  const psk = attr(a, P_PRESHARED_KEY);
  const ep = attr(a, P_ENDPOINT);
  const hs = attr(a, P_LAST_HANDSHAKE);
  const allowed: string[] = [];
  for (const e of decodeAttrs(attr(a, P_ALLOWEDIPS) ?? Buffer.alloc(0))) {
    const ip = decodeAttrs(e.data);
    const addr = attr(ip, A_IPADDR);
    const mask = attr(ip, A_CIDR_MASK);
    if (addr !== undefined && mask !== undefined) allowed.push(formatCidr({ family: addr.length === 4 ? 4 : 6, bytes: addr, bits: mask.readUInt8(0) }));
  }
  const peer: UapiPeerState = {
    publicKey: Uint8Array.from(attr(a, P_PUBLIC_KEY) ?? Buffer.alloc(32)),
    persistentKeepalive: attr(a, P_KEEPALIVE)?.readUInt16LE(0) ?? 0,
    allowedIps: allowed,
    lastHandshakeMs: hs === undefined ? -1 : Number(hs.readBigInt64LE(0)) * 1000 + Math.floor(Number(hs.readBigInt64LE(8)) / 1e6),
    txBytes: attr(a, P_TX_BYTES)?.readBigUInt64LE(0) ?? 0n,
    rxBytes: attr(a, P_RX_BYTES)?.readBigUInt64LE(0) ?? 0n,
    protocolVersion: 1,
  };
  if (psk !== undefined && psk.some((x) => x !== 0)) peer.presharedKey = Uint8Array.from(psk);
  const endpoint = ep === undefined ? undefined : decodeEndpoint(ep);
  if (endpoint !== undefined) peer.endpoint = endpoint;
  return peer;
}
