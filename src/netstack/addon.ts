/**
 * The tswg_netstack addon (native/netstack/): Debian's lwIP behind one network interface whose
 * packets are exchanged with JavaScript in batches. Types and the loader; never throws on load.
 */
import { createRequire } from "node:module";
import { builtAddonPath, loadAddonFile, type AddonLoad } from "../native/addon-file.js";
import type { NativePacketSink } from "../native/tun.js";

export const NETSTACK_ABI_VERSION = 2;

export const NETSTACK_ADDON_PATH = builtAddonPath("tswg_netstack");

/** One event from the stack; which fields are set depends on `type`. */
export interface StackEvent {
  type: "accept" | "connected" | "data" | "end" | "sent" | "error" | "udp" | "echo" | "flow" | "routerUdp";
  /** Connection, listener or UDP socket id (for "flow" and "routerUdp": the flow id or 0). */
  id: number;
  /** accept: the new connection's id. */
  conn?: number;
  /** accept: the router flow the connection belongs to (0 = none). */
  flow?: number;
  remoteAddress?: string;
  remotePort?: number;
  localAddress?: string;
  localPort?: number;
  data?: Buffer;
  /** sent: bytes acknowledged; error: lwIP's err_t; echo: sequence number. */
  num?: number;
  address?: string;
  port?: number;
  size?: number;
  srcAddress?: string;
  srcPort?: number;
  dstAddress?: string;
  dstPort?: number;
}

export interface StackStats {
  packetsIn: number;
  /** Of those, packets the native data plane handed over by a call (its packet sink). */
  packetsDirect: number;
  inputDropped: number;
  packetsOut: number;
  /** Packets lwIP sent while the queue towards the device was full (TCP resends them). */
  outputDropped: number;
  outputQueued: number;
  connections: number;
  udpSockets: number;
  /** Router mode: TCP flows waiting for their upstream dial. */
  pendingFlows: number;
  /** Router mode: SYNs dropped because too many flows were waiting. */
  synDropped: number;
  /** SYN and SYN-ACK segments sent offering the stack's larger window scale. */
  synScaled: number;
  /** Pure ACKs left out of an output batch because a later ACK of theirs said more. */
  acksSuperseded: number;
  flowsExpired: number;
  /** Router mode: packets neither TCP nor UDP, or fragments (dropped). */
  routerDropped: number;
  routerUdpIn: number;
}

export interface StackOptions {
  mtu: number;
  /** [address, prefix length] */
  ipv4: [string, number] | null;
  ipv6: string[];
  router: boolean;
}

export interface NativeStack {
  /**
   * Opens the stack's packet socket (a SOCK_SEQPACKET socketpair) and returns the descriptor of
   * the other end, which the caller owns (for the native data plane's Tun). Packets then move
   * natively; input()/takePackets() are no longer used.
   */
  openPacketFd(): number;
  /** Closes the packet socket again (its other end already closed); packets go back to batches. */
  closePacketFd(): void;
  /**
   * The stack's input as a sink for the native data plane's Tun over the packet socket: packets
   * then enter lwIP on the data plane's thread, without the socket. Null while the packet
   * socket is closed; absent in addons built before it.
   */
  packetSink?(): NativePacketSink | null;
  input(packets: readonly Uint8Array[]): number;
  takePackets(): { data: Buffer; sizes: Uint32Array } | null;
  takeEvents(): StackEvent[];
  tcpConnect(address: string, port: number): number;
  tcpListen(address: string | null, port: number, backlog: number): { id: number; port: number };
  tcpWrite(id: number, data: Uint8Array): number;
  tcpRecved(id: number, bytes: number): void;
  tcpShutdown(id: number): void;
  tcpClose(id: number, abort: boolean): void;
  tcpKeepAlive(id: number, idleMs: number): void;
  udpBind(address: string | null, port: number): { id: number; port: number };
  udpSend(id: number, data: Uint8Array, address: string, port: number): number;
  udpClose(id: number): void;
  ping(address: string, ident: number, seq: number, size: number): number;
  flowAccept(id: number): boolean;
  flowReject(id: number): void;
  routerUdpSend(srcAddress: string, srcPort: number, dstAddress: string, dstPort: number, data: Uint8Array): boolean;
  stats(): StackStats;
  ref(): void;
  unref(): void;
  close(): void;
}

export interface NetstackAddon {
  abiVersion: number;
  Stack: new (options: StackOptions, onWake: () => void) => NativeStack;
}

let cached: { addon: NetstackAddon; reason: null } | { addon: null; reason: string } | undefined;

/** Loads the addon once; a reason instead when it is not built (liblwip-dev missing) or stale. */
export function loadNetstackAddon(): { addon: NetstackAddon; reason: null } | { addon: null; reason: string } {
  if (cached !== undefined) return cached;
  return (cached = loadAddonFile("tswg_netstack", loadNetstackAddonFrom));
}

/** One addon file; exported so the reasons can be tested on files that are not the addon. */
export function loadNetstackAddonFrom(path: string): AddonLoad<NetstackAddon> {
  try {
    const exports = createRequire(import.meta.url)(path) as Partial<NetstackAddon>;
    return exports.abiVersion === NETSTACK_ABI_VERSION
      ? { addon: exports as NetstackAddon, reason: null }
      : { addon: null, reason: `${path} is stale (rebuild with "npx node-gyp rebuild")` };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const message = (err as Error).message;
    // A prebuilt addon links Debian's lwIP; where the library is not installed it cannot load.
    if (/liblwip\.so/u.test(message)) {
      return { addon: null, reason: `the network stack needs lwIP, which is not installed (apt-get install liblwip0): ${message}` };
    }
    return {
      addon: null,
      reason:
        code === "MODULE_NOT_FOUND"
          ? `the network stack addon is not built: ${path} is missing (install liblwip-dev, then "npx node-gyp rebuild")`
          : `cannot load ${path}: ${message}`,
    };
  }
}

/** lwIP's err_t values that reach JavaScript. */
export const LWIP_ERR = {
  MEM: -1,
  BUF: -2,
  TIMEOUT: -3,
  RTE: -4,
  INPROGRESS: -5,
  VAL: -6,
  WOULDBLOCK: -7,
  USE: -8,
  ALREADY: -9,
  ISCONN: -10,
  CONN: -11,
  IF: -12,
  ABRT: -13,
  RST: -14,
  CLSD: -15,
  ARG: -16,
} as const;
