/**
 * Types of the addon's `Udp` class (native/src/udp_port.cc): an IPv4 and an IPv6-only UDP
 * socket on one port with a receive thread (recvmmsg, UDP GRO) and batched sends
 * (sendmmsg, UDP GSO), SO_MARK and large buffers.
 */

export interface NativeUdpOptions {
  /** 0 = any free port (both families share it). */
  port: number;
  ipv4?: boolean;
  ipv6?: boolean;
  /** Local addresses to bind; default any. */
  address4?: string;
  address6?: string;
  /** Socket buffer size to ask for (as root beyond net.core.*mem_max); default 7 MiB. */
  bufferBytes?: number;
}

/** Bytes per sender address in a received batch (see {@link NativeUdpBatchCallback}). */
export const NATIVE_ADDRESS_SIZE = 24;

/**
 * Called on the JavaScript thread with one batch: the datagrams back to back in `data`, their
 * lengths in `sizes`, and 24 bytes per datagram in `addrs`: family (4 or 6), 0, port
 * (big-endian), IPv6 scope id (little-endian 32 bits), 16 address bytes (IPv4 in the first 4).
 */
export type NativeUdpBatchCallback = (data: Buffer, sizes: Uint32Array, addrs: Uint8Array) => void;

export interface NativeUdpInfo {
  ipv4: boolean;
  ipv6: boolean;
  /** UDP GSO (UDP_SEGMENT) in use for trains of datagrams. */
  gso: boolean;
  /** UDP GRO in use on receive. */
  gro: boolean;
  bufferBytes: number;
}

export interface NativeUdpStats {
  received: number;
  groReceives: number;
  sent: number;
  gsoSends: number;
  /** GSO trains sent as single datagrams because a segment exceeded the path MTU. */
  pmtuSplits: number;
  sendErrors: number;
  /** Datagrams the native data path dealt with itself. */
  handledNatively: number;
  /** Datagrams dropped because JavaScript had not taken the previous batches. */
  passedDropped: number;
  pendingBatches: number;
  lastError: string | null;
}

export interface NativeUdp {
  /**
   * Starts the receive thread. At most `maxPending` batches are handed over without an
   * `ack()`; then reading waits (or, with a data path attached, what it leaves is dropped).
   */
  start(callback: NativeUdpBatchCallback, maxPending: number): void;
  ack(): void;
  /** Sends each buffer as one datagram; returns how many failed (counted, never thrown). */
  send(packets: readonly Uint8Array[], family: 4 | 6, address: Uint8Array, port: number, zone: string): number;
  /** SO_MARK on both sockets; throws an errno error. */
  setMark(mark: number): void;
  /** A path MTU confirmed by a prober, for the sender's table (absent from older builds). */
  setPathMtu?(family: 4 | 6, address: Uint8Array, port: number, zone: string, mtu: number): void;
  ref(): void;
  unref(): void;
  /** Stops the receive thread and releases the sockets. Idempotent. */
  close(): void;
  port(): number;
  info(): NativeUdpInfo;
  stats(): NativeUdpStats;
}

/** Errors thrown by the constructor carry `code` (errno name) and `syscall`. */
export type NativeUdpConstructor = new (options: NativeUdpOptions) => NativeUdp;
