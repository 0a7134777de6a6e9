/**
 * Types of the addon's stateless helpers (native/src/helpers_binding.cc).
 */

/** One write unit of a coalesced TUN burst. */
export interface NativeCoalescedUnit {
  /** The 10-byte virtio-net header the write would carry. */
  header: Uint8Array;
  packet: Uint8Array;
  /** How many of the input packets it carries. */
  segments: number;
}

export interface NativeHelperFunctions {
  /**
   * Splits what a TUN with IFF_VNET_HDR returned (header and packet) into plain IP packets,
   * completing checksums; null when the header and packet make no sense together.
   */
  vnetSplit(header: Uint8Array, packet: Uint8Array): Uint8Array[] | null;
  /** What writing `packets` to a TUN with IFF_VNET_HDR would consist of, TCP segments joined. */
  tunCoalesce(packets: readonly Uint8Array[]): NativeCoalescedUnit[];
  /** SO_MARK on a socket descriptor opened elsewhere; throws an errno error (code, syscall). */
  setSocketMark(fd: number, mark: number): void;
  /** The kernel's path MTU towards family/address/port (a connected probe socket with `mark`), 0 if unknown. */
  pathMtu(family: 4 | 6, address: Uint8Array, port: number, mark: number): number;
  /** The same with the MTU of the interface holding the local address picked for it (0: not found). */
  pathMtu(family: 4 | 6, address: Uint8Array, port: number, mark: number, detail: true): { mtu: number; interfaceMtu: number };
  /** Lowers a TCP SYN's MSS option in place (native/src/mss_clamp.*); true when it changed. */
  clampMss(packet: Uint8Array, maxMss: number): boolean;
}
