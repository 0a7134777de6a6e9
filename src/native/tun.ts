/**
 * Types of the addon's `Tun` class (native/src/tun_device.cc): one open Linux TUN interface
 * with a reader thread that delivers packets in batches.
 */

/** Counters kept by the native side. */
export interface NativeTunStats {
  /** IP packets read (segments of split super-packets counted one by one). */
  packetsRead: number;
  bytesRead: number;
  batchesRead: number;
  /** Times the reader stopped polling because every batch it may hand over was unacknowledged. */
  readerPauses: number;
  /** Batches handed to JavaScript and not yet acknowledged. */
  pendingBatches: number;
  /** GSO super-packets split into segments (with offloads). */
  superPackets: number;
  /** Reads whose virtio-net header or packet made no sense (dropped). */
  malformed: number;
  /** Packets the native data path dealt with without JavaScript. */
  handledNatively: number;
  /** Packets the data path passed on while JavaScript had no room for them (dropped). */
  passedDropped: number;
  packetsWritten: number;
  /** write system calls (one carries several packets when they were joined). */
  writes: number;
  /** Packets written joined to a previous one. */
  coalesced: number;
  writeDropped: number;
  /** errno name of the latest refused write ("EIO", "EINVAL"…), or null. */
  lastWriteError: string | null;
}

/**
 * Called on the JavaScript thread with one batch: the packets back to back in `data`, their
 * lengths in `sizes`. When reading stops on an error (the interface was deleted), called once
 * with `data` and `sizes` null and the errno name in `error`.
 */
export type NativeTunBatchCallback = (
  data: Buffer | null,
  sizes: Uint32Array | null,
  error: string | null,
) => void;

declare const packetSinkBrand: unique symbol;
/**
 * Another addon's input for IP packets, taken by a call (native/src/packet_sink.h): the network
 * stack's. Opaque to JavaScript, which only passes it from the stack to a `NativeTun`.
 */
export interface NativePacketSink {
  readonly [packetSinkBrand]: true;
}

export interface NativeTun {
  /**
   * Starts the reader thread. At most `maxPending` batches are handed over without an `ack()`;
   * then the reader waits, and new packets queue (and overflow) in the kernel.
   */
  start(callback: NativeTunBatchCallback, batchSize: number, maxPending: number): void;
  /** Acknowledges one delivered batch. */
  ack(): void;
  /**
   * Writes the packets: with a virtio-net header, consecutive segments of a TCP flow (and
   * equal-sized datagrams of a UDP flow) go out joined as one GSO write. Returns how many were
   * refused (counted, never thrown).
   */
  write(packets: readonly Uint8Array[]): number;
  /** Whether pending deliveries keep the event loop alive; unreferenced after start(). */
  ref(): void;
  unref(): void;
  /** Stops and joins the reader, closes the descriptor (which deletes the interface). Idempotent. */
  close(): void;
  /** Current interface name, following renames. */
  name(): string;
  /** MTU and IFF_* flags through ioctls in the namespace the interface was created in; throw on failure. */
  getMtu(): number;
  setMtu(mtu: number): void;
  getFlags(): number;
  stats(): NativeTunStats;
  offloads(): NativeTunOffloads;
  /**
   * For a packet descriptor: packets the native data plane writes go to `sink` by a call instead
   * of into the descriptor. False when not taken (not a sink, not a packet descriptor, already
   * set). Absent in addons built before it.
   */
  setPacketSink?(sink: NativePacketSink): boolean;
}

/** What the kernel accepted of the offloads asked for. */
export interface NativeTunOffloads {
  /** Packets carry a virtio-net header (IFF_VNET_HDR). */
  vnetHdr: boolean;
  /** TUN_F_* flags of TUNSETOFFLOAD: 1 checksum, 2 TSO4, 4 TSO6, 0x20 USO4, 0x40 USO6. */
  flags: number;
}

/**
 * Errors thrown by the constructor carry `code` (errno name) and `syscall`. With `offload`,
 * the interface is created with IFF_VNET_HDR and the kernel's segmentation offloads.
 */
export type NativeTunConstructor = {
  new (name: string, netnsPath: string | null, offload?: boolean): NativeTun;
  /**
   * Adopts a plain packet descriptor that is not a TUN (a SOCK_SEQPACKET or SOCK_DGRAM socket,
   * non-blocking, one IP packet per message): no offloads; `getMtu` answers `mtu`, `getFlags`
   * up and running. The descriptor is closed with the device.
   */
  new (fd: number, name: string, mtu: number): NativeTun;
};
