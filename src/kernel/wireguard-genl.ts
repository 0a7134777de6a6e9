/**
 * The kernel module's control interface: generic netlink family "wireguard" (attributes from the
 * kernel's uapi/linux/wireguard.h), mapped to and from the UAPI's data shapes.
 *
 * Large changes are split over several messages (each well under the socket's limit) the way
 * `wg` does it: device attributes go in the first, a peer whose allowed IPs do not fit goes on
 * in the next message without replacing what the previous one added. Every message of a change
 * is written into one buffer in one pass (sizes are known before a peer is written, so a split
 * never re-encodes anything): a 1000-peer interface is one allocation, not a tree per peer.
 */
import { formatCidr, formatIp, normalizeCidr, parseCidr, type Prefix } from "../allowedips/index.js";
import { parseAddrPort } from "../bind/addr-port.js";
import type { UapiDeviceState, UapiPeerChange, UapiPeerState, UapiSetRequest } from "../uapi/types.js";
import type { WireGuardControl } from "./control.js";
import { NETLINK_GENERIC, NLM_F_DUMP, NetlinkSocket, NlAttrs, NlWriter } from "./netlink.js";

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

/**
 * Attribute bytes per message, far below the socket's limit (and like `wg`, a page or so). Counted
 * are the device's attributes and the peers; the peers' own nest header (4 bytes) is not.
 */
const MESSAGE_BUDGET = 16 * 1024;

/** A key attribute's value that clears the key; also the key of a dump entry that lacks one. */
const ZERO_KEY: Uint8Array = new Uint8Array(32);

/** Encoded sizes, padding included, of the attributes whose size does not depend on the input. */
const KEY_ATTR = 4 + 32;
const U16_ATTR = 8;
const U32_ATTR = 8;
const NEST = 4;
const ENDPOINT6_ATTR = 4 + 28; // struct sockaddr_in6, the larger endpoint
/** One allowed IP: nest, family (u16), address, mask (u8, padded to 8). */
const ALLOWED_IP4 = NEST + U16_ATTR + 4 + 4 + 8;
const ALLOWED_IP6 = NEST + U16_ATTR + 4 + 16 + 8;

const genlHeaders = new Map<number, Buffer>();
function genlHeader(cmd: number, version: number): Buffer {
  const k = (cmd << 8) | version;
  let h = genlHeaders.get(k);
  if (h === undefined) genlHeaders.set(k, (h = Buffer.from([cmd, version, 0, 0])));
  return h;
}

/** The generic netlink id of `family`, or null when the kernel has no such family (module not loaded). */
export function resolveGenlFamily(sock: NetlinkSocket, family: string): number | null {
  try {
    const w = new NlWriter().begin(GENL_ID_CTRL, 0, genlHeader(CTRL_CMD_GETFAMILY, 1));
    w.str(CTRL_ATTR_FAMILY_NAME, family);
    const [m] = sock.request(w.end(), `resolving generic netlink family ${family}`);
    if (m === undefined) return null;
    const a = new NlAttrs(m.payload, 4);
    return a.find(CTRL_ATTR_FAMILY_ID) ? a.u16() : null;
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") return null;
    throw e;
  }
}

// Scratch space for one endpoint (a sockaddr), filled and copied into the message per peer.
const sockaddr4 = Buffer.alloc(16);
const sockaddr6 = Buffer.alloc(28);

/** `text` as the kernel's struct sockaddr_in/sockaddr_in6, in a scratch buffer valid until the next call. */
function encodeEndpoint(text: string): Buffer {
  const ep = parseAddrPort(text);
  const b = ep.family === 4 ? sockaddr4 : sockaddr6;
  // Family in host order, port in network order (byte stores: cheaper than the Buffer methods on a cold start).
  b[0] = ep.family === 4 ? AF_INET : AF_INET6;
  b[2] = ep.port >>> 8;
  b[3] = ep.port & 0xff;
  const at = ep.family === 4 ? 4 : 8;
  for (let i = 0; i < ep.bytes.length; i++) b[at + i] = ep.bytes[i]!;
  if (ep.family === 6) b.writeUInt32LE(/^\d+$/.test(ep.zone) ? Number(ep.zone) : 0, 24);
  return b;
}

function decodeEndpoint(a: NlAttrs): string | undefined {
  const b = a.buf;
  const o = a.start;
  const family = a.u16();
  if (family === AF_INET && a.length >= 16) return `${formatIp(a.view(4, 4))}:${b.readUInt16BE(o + 2)}`;
  if (family === AF_INET6 && a.length >= 28) {
    const scope = b.readUInt32LE(o + 24);
    return `[${formatIp(a.view(8, 16))}${scope !== 0 ? `%${scope}` : ""}]:${b.readUInt16BE(o + 2)}`;
  }
  return undefined;
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
    const w = new NlWriter().begin(this.family, NLM_F_DUMP, genlHeader(WG_CMD_GET_DEVICE, WG_GENL_VERSION));
    w.str(D_IFNAME, this.ifname);
    const msgs = this.sock.request(w.end(), `reading WireGuard interface ${this.ifname}`);
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
    for (const message of setDeviceMessages(this.family, this.ifname, request, current)) {
      this.sock.request(message, `configuring WireGuard interface ${this.ifname}`);
    }
  }
}

/** `change` with its allowed IPs to remove folded into a replace (the kernel cannot remove one). */
function withoutRemovals(change: UapiPeerChange, currentIps: ReadonlyMap<string, readonly string[]>): UapiPeerChange {
  const had = change.replaceAllowedIps ? [] : (currentIps.get(Buffer.from(change.publicKey).toString("base64")) ?? []);
  const drop = new Set(change.removeAllowedIps.map(normalizeCidr));
  const keep = [...had, ...change.allowedIps].map(normalizeCidr).filter((c, i, all) => !drop.has(c) && all.indexOf(c) === i);
  return { ...change, replaceAllowedIps: true, allowedIps: keep, removeAllowedIps: [] };
}

/**
 * The WG_CMD_SET_DEVICE messages for `request` (generic netlink `family`), each within the
 * message budget, as views of one buffer; the socket fills in sequence numbers and request flags.
 * `current` (the device's peers) is needed only for changes that remove allowed IPs.
 */
export function setDeviceMessages(family: number, ifname: string, request: UapiSetRequest, current: readonly UapiPeerState[] = []): Buffer[] {
  const currentIps = new Map(current.map((p) => [Buffer.from(p.publicKey).toString("base64"), p.allowedIps]));
  const ifnameAttr = (NEST + Buffer.byteLength(ifname, "utf8") + 1 + 3) & ~3;
  let ips = 0;
  for (const p of request.peers) ips += p.allowedIps.length;
  // A generous estimate (IPv6 sizes, every optional field, a continuation head per message); the writer grows if it is short.
  const perPeer = NEST + 2 * KEY_ATTR + ENDPOINT6_ATTR + U16_ATTR + U32_ATTR + NEST;
  const estimate = 64 + request.peers.length * perPeer + ips * ALLOWED_IP6;
  const w = new NlWriter(estimate + Math.ceil(estimate / MESSAGE_BUDGET + 1) * (64 + ifnameAttr + perPeer));
  const header = genlHeader(WG_CMD_SET_DEVICE, WG_GENL_VERSION);

  w.begin(family, 0, header);
  w.str(D_IFNAME, ifname);
  if (request.privateKey !== undefined) w.bytes(D_PRIVATE_KEY, request.privateKey ?? ZERO_KEY);
  if (request.listenPort !== undefined) w.u16(D_LISTEN_PORT, request.listenPort);
  if (request.fwmark !== undefined) w.u32(D_FWMARK, request.fwmark);
  if (request.replacePeers) w.u32(D_FLAGS, F_REPLACE_PEERS);
  /** Attribute bytes of the open message (see MESSAGE_BUDGET). */
  let used = w.messageLength - 20;
  let peersNest = -1;
  const next = (): void => {
    if (peersNest >= 0) w.close(peersNest);
    peersNest = -1;
    w.begin(family, 0, header);
    w.str(D_IFNAME, ifname);
    used = ifnameAttr;
  };

  const prefixes: Prefix[] = [];
  for (let change of request.peers) {
    if (!change.remove && change.removeAllowedIps.length > 0) change = withoutRemovals(change, currentIps);
    // Sizes first, so the split is decided before anything of the peer is written.
    let flags = PF_REMOVE_ME;
    let headSize = NEST + KEY_ATTR + U32_ATTR + NEST;
    let endpoint: Buffer | undefined;
    prefixes.length = 0;
    if (!change.remove) {
      flags = (change.updateOnly ? PF_UPDATE_ONLY : 0) | (change.replaceAllowedIps ? PF_REPLACE_ALLOWEDIPS : 0);
      if (change.presharedKey !== undefined) headSize += KEY_ATTR;
      if (change.endpoint !== undefined) {
        endpoint = encodeEndpoint(change.endpoint);
        headSize += 4 + endpoint.length;
      }
      if (change.persistentKeepalive !== undefined) headSize += U16_ATTR;
      for (const cidr of change.allowedIps) prefixes.push(parseCidr(cidr));
    }
    let i = 0;
    do {
      if (used + headSize > MESSAGE_BUDGET && peersNest >= 0) next();
      if (peersNest < 0) peersNest = w.nest(D_PEERS);
      const peer = w.nest(0);
      w.bytes(P_PUBLIC_KEY, change.publicKey);
      if (!change.remove) {
        if (change.presharedKey !== undefined) w.bytes(P_PRESHARED_KEY, change.presharedKey ?? ZERO_KEY);
        if (endpoint !== undefined) w.bytes(P_ENDPOINT, endpoint);
        if (change.persistentKeepalive !== undefined) w.u16(P_KEEPALIVE, change.persistentKeepalive);
      }
      w.u32(P_FLAGS, flags);
      let size = headSize;
      let fit = i;
      while (fit < prefixes.length) {
        const ipSize = prefixes[fit]!.family === 4 ? ALLOWED_IP4 : ALLOWED_IP6;
        if (used + size + ipSize > MESSAGE_BUDGET) break;
        size += ipSize;
        fit++;
      }
      if (fit > i) {
        const list = w.nest(P_ALLOWEDIPS);
        for (; i < fit; i++) {
          const p = prefixes[i]!;
          const entry = w.nest(0);
          w.u16(A_FAMILY, p.family === 4 ? AF_INET : AF_INET6);
          w.bytes(A_IPADDR, p.bytes);
          w.u8(A_CIDR_MASK, p.bits);
          w.close(entry);
        }
        w.close(list);
      }
      w.close(peer);
      used += size;
      // The rest of this peer's prefixes: added to what is there now, and only to this peer.
      flags = (flags & ~PF_REPLACE_ALLOWEDIPS) | PF_UPDATE_ONLY;
      if (i < prefixes.length) next();
    } while (i < prefixes.length);
  }
  if (peersNest >= 0) w.close(peersNest);
  return w.messages();
}

/**
 * The device state from the attributes of a GET_DEVICE dump (one buffer per message, after the
 * generic netlink header). A peer with many allowed IPs continues in the next message, where it
 * carries only its key and more prefixes.
 */
export function parseDeviceDump(parts: readonly Buffer[]): UapiDeviceState {
  const state: UapiDeviceState = { listenPort: 0, fwmark: 0, peers: [] };
  const seen = { handshake: false };
  for (const part of parts) {
    for (const a = new NlAttrs(part); a.next(); ) {
      if (a.type === D_PRIVATE_KEY) state.privateKey = a.copy();
      else if (a.type === D_LISTEN_PORT) state.listenPort = a.u16();
      else if (a.type === D_FWMARK) state.fwmark = a.u32();
      else if (a.type === D_PEERS) {
        for (const entry = a.nested(); entry.next(); ) {
          const peer = decodePeer(entry.nested(), seen);
          const last = state.peers[state.peers.length - 1];
          if (last !== undefined && !seen.handshake && Buffer.from(last.publicKey.buffer, last.publicKey.byteOffset, 32).equals(peer.publicKey)) {
            for (const ip of peer.allowedIps) last.allowedIps.push(ip);
          } else {
            state.peers.push(peer);
          }
        }
      }
    }
  }
  return state;
}

/** One peer of a dump; `seen.handshake` tells whether the message carried its handshake time (a continuation does not). */
function decodePeer(a: NlAttrs, seen: { handshake: boolean }): UapiPeerState {
  const peer: UapiPeerState = { publicKey: ZERO_KEY, persistentKeepalive: 0, allowedIps: [], lastHandshakeMs: 0, txBytes: 0n, rxBytes: 0n, protocolVersion: 1 };
  seen.handshake = false;
  while (a.next()) {
    switch (a.type) {
      case P_PUBLIC_KEY:
        peer.publicKey = a.copy();
        break;
      case P_PRESHARED_KEY:
        if (!a.zero()) peer.presharedKey = a.copy();
        break;
      case P_ENDPOINT: {
        const endpoint = decodeEndpoint(a);
        if (endpoint !== undefined) peer.endpoint = endpoint;
        break;
      }
      case P_KEEPALIVE:
        peer.persistentKeepalive = a.u16();
        break;
      case P_LAST_HANDSHAKE:
        if (a.length >= 16) peer.lastHandshakeMs = Number(a.buf.readBigInt64LE(a.start)) * 1000 + Math.floor(Number(a.buf.readBigInt64LE(a.start + 8)) / 1e6);
        seen.handshake = true;
        break;
      case P_TX_BYTES:
        peer.txBytes = a.u64();
        break;
      case P_RX_BYTES:
        peer.rxBytes = a.u64();
        break;
      case P_ALLOWEDIPS:
        for (const e = a.nested(); e.next(); ) {
          let addr: Uint8Array | undefined;
          let bits = -1;
          for (const ip = e.nested(); ip.next(); ) {
            if (ip.type === A_IPADDR && (ip.length === 4 || ip.length === 16)) addr = ip.view(0, ip.length);
            else if (ip.type === A_CIDR_MASK) bits = ip.u8();
          }
          if (addr !== undefined && bits >= 0) peer.allowedIps.push(formatCidr({ family: addr.length === 4 ? 4 : 6, bytes: addr, bits }));
        }
        break;
    }
  }
  return peer;
}
