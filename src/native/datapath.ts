/**
 * Types of the addon's `DataPath` class (native/src/datapath.cc): the per-packet work of
 * WireGuard on the TUN reader's and UDP receiver's threads, configured from JavaScript.
 */
import type { NativeTun } from "./tun.js";
import type { NativeUdp } from "./udp.js";

export interface NativeDataPathOptions {
  /** Counter limit of a keypair (sending and receiving). */
  rejectAfterMessages: number;
  /** Age limit of a keypair, in milliseconds. */
  rejectAfterTimeMs: number;
  /** Tunnel MTU: padding never grows a packet past it (0: pad to 16 regardless). */
  mtu: number;
}

/** A keypair as the native side needs it. */
export interface NativeKeypairSpec {
  localIndex: number;
  remoteIndex: number;
  sendKey: Uint8Array;
  receiveKey: Uint8Array;
  /** How old the keypair already is, in milliseconds. */
  ageMs: number;
  /** The next send counter (used only when the keypair is new to the native side). */
  sendCounter: number;
}

/** Event types of the callback. */
export const DATAPATH_EVENT_CONFIRMED = 1;
/** Packets moved since `activity()` was last called (sent once until it is called again). */
export const DATAPATH_EVENT_ACTIVITY = 2;

/**
 * (type, peer id, local index): DATAPATH_EVENT_CONFIRMED: the first packet under a `next`
 * keypair arrived; DATAPATH_EVENT_ACTIVITY (ids 0): packets moved, `activity()` says what.
 */
export type NativeDataPathEventCallback = (type: number, peerId: number, localIndex: number) => void;

/** Numbers per peer in {@link NativeDataPath.activity}'s result. */
export const ACTIVITY_RECORD_SIZE = 8;

export interface NativeDataPathStats {
  txPackets: number;
  txTrains: number;
  txPassed: number;
  noRoute: number;
  sendFailed: number;
  rxPackets: number;
  rxKeepalives: number;
  rxPassed: number;
  unknownIndex: number;
  expired: number;
  decryptFailed: number;
  replayed: number;
  badInner: number;
  sourceRejected: number;
  cryptoErrors: number;
  /** Inner packets over the peer's path MTU, answered with ICMP (and still sent, fragmented outside). */
  tooBig: number;
  /** TCP SYNs whose MSS option was lowered (MSSClamp). */
  mssClamped: number;
  tunWrites: number;
  tunCoalesced: number;
  tunWriteDropped: number;
}

export interface NativeDataPath {
  /** Takes transport messages from (and sends through) these sockets; null detaches. */
  setUdp(udp: NativeUdp | null): void;
  setPeer(id: number): void;
  removePeer(id: number): void;
  /** family 0 forgets the endpoint (the peer's packets then go to JavaScript). */
  /** With `channel` (0x4000-0x4FFF) the address is a TURN server's: datagrams go as ChannelData. */
  setEndpoint(id: number, family: 0 | 4 | 6, address?: Uint8Array, port?: number, zone?: string, channel?: number): void;
  /** The peer's endpoint as 24 packed bytes (as in a Udp batch), or null. */
  endpoint(id: number): Uint8Array | null;
  setKeypairs(
    id: number,
    current: NativeKeypairSpec | null,
    previous: NativeKeypairSpec | null,
    next: NativeKeypairSpec | null,
  ): void;
  /** 22 bytes per prefix: family, length, 16 address bytes, peer id (little-endian). */
  setAllowedIps(entries: Uint8Array): void;
  /** The next send counter of a keypair, or -1 when it is not known here. */
  counter(localIndex: number): number;
  /** Takes the next send counter (or -1). */
  takeCounter(localIndex: number): number;
  setCounter(localIndex: number, value: number): void;
  setMtu(mtu: number): void;
  /** TCP MSS clamping: 0 off, -1 auto (the peer's path MTU), else the largest MSS. */
  setMssClamp(setting: number): void;
  /**
   * Per peer with news since the last call, {@link ACTIVITY_RECORD_SIZE} numbers: id, bytes
   * sent, bytes received, ms since the last packet sent, data packet sent, packet received,
   * data packet received (-1: none new), 1 if the endpoint changed (else 0).
   */
  activity(): Float64Array;
  stats(): NativeDataPathStats;
  /** Detaches from the Tun and the Udp and forgets all keys. Idempotent. */
  close(): void;
}

export type NativeDataPathConstructor = new (
  tun: NativeTun,
  udp: NativeUdp | null,
  options: NativeDataPathOptions,
  onEvent: NativeDataPathEventCallback,
) => NativeDataPath;
