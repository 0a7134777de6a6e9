/**
 * The data plane: what seals, opens, routes and moves a device's transport data, behind one
 * interface with two implementations (portable.ts in TypeScript, native.ts on the addon's
 * threads). The device chooses one when it comes up and drives the control plane (the
 * protocol engine: handshakes, cookies, timers) from the events the plane pushes.
 *
 * Division of labour, as in the kernel's send.c/receive.c beside timers.c:
 * - the control plane derives keypairs and installs and retires them here ({@link DataPlane.setKeypairs});
 * - the device owns peers and their AllowedIPs (one table); the plane reads it through a lookup
 *   or is told when it changed ({@link DataPlane.routesChanged});
 * - the plane pushes back per burst what the timers need ({@link DataPlaneEvents}).
 */
import type { Bind, Endpoint } from "../bind/bind.js";
import type { NativeDataPathStats } from "../native/datapath.js";
import type { DataPathActivity, PeerHandle, SessionKeypairs } from "../noise/engine.js";

/** Where a datagram came from, as far as a data plane cares: equal endpoints have equal keys. */
export interface SourceKey {
  readonly key: string;
}

/** The device's view of a peer that a data plane needs. */
export interface PlanePeer<E extends SourceKey = Endpoint> {
  readonly handle: PeerHandle;
  /** A small number naming the peer to the native side. */
  readonly nativeId: number;
  endpoint: E | null;
}

/** Why packets wait for a handshake instead of being sealed. */
export type HandshakeNeed = "no-keypair" | "keypair-exhausted" | "keypair-expired";

/**
 * What a data plane tells the control plane, per burst of packets (the events of the kernel's
 * timers.h, reported after the fact instead of polled for).
 */
export interface DataPlaneEvents<P extends PlanePeer<E>, E extends SourceKey = Endpoint> {
  /** Packets moved for the peer: bytes, and how long ago it last sent/received (see DataPathActivity). */
  activity(peer: P, activity: DataPathActivity): void;
  /** The first packet under the peer's unconfirmed (`next`) keypair arrived: it is the one to send with now. */
  confirmed(peer: P, localIndex: number): void;
  /** Packets for the peer could not be sealed; they are handed back to wait for a new session. */
  handshakeNeeded(peer: P, why: HandshakeNeed, waiting: Uint8Array[]): void;
  /** An authenticated packet of the peer came from another endpoint. */
  roamed(peer: P, endpoint: E): void;
}

/** Options both implementations take. */
export interface DataPlaneOptions<P extends PlanePeer<E>, E extends SourceKey = Endpoint> {
  events: DataPlaneEvents<P, E>;
  /** Cryptokey routing, inbound: whether the inner source address of `packet` is one of the peer's AllowedIPs. */
  sourceAllowed(peer: P, packet: Uint8Array): boolean;
  /** Each peer's AllowedIPs as text (what the native side copies). */
  allowedIps(peer: P): string[];
  /** Counter limit of a keypair, sending and receiving. */
  rejectAfterMessages: number;
  /** Tunnel MTU: padding never grows a packet past it (0: pad to 16 regardless). */
  mtu: number;
  /** Monotonic milliseconds (keypair ages). */
  now(): number;
}

/** A transport message's inner packet, for the TUN. */
export interface Delivery<P> {
  peer: P;
  packet: Uint8Array;
}

export interface DataPlane<P extends PlanePeer<E>, E extends SourceKey = Endpoint> {
  readonly kind: "native" | "portable";
  /** For the log: what the plane runs on (offloads and the like). */
  readonly description: string;
  addPeer(peer: P): void;
  removePeer(peer: P): void;
  /** A peer's keypair slots now; keypairs no longer named are retired. */
  setKeypairs(peer: P, keypairs: SessionKeypairs): void;
  /** The peer's endpoint, or what carries it, changed. */
  setEndpoint(peer: P): void;
  /** The device's AllowedIPs changed. */
  routesChanged(): void;
  setMtu(mtu: number): void;
  /** The Binds were reopened (new listen port). */
  rebind(binds: readonly Bind[]): void;
  /**
   * Seals `packets` (empty ones are keepalives) for a peer on the JavaScript path and appends
   * the datagrams to `out`, in order; what cannot be sealed goes to `handshakeNeeded`.
   */
  send(peer: P, packets: Uint8Array[], out: Uint8Array[]): void;
  /**
   * Opens a transport message that arrived on the JavaScript path. Inner packets that pass the
   * source check are appended to `out`; anything else is counted as a drop.
   */
  receive(datagram: Uint8Array, src: E, out: Delivery<P>[]): void;
  /** Ends a burst of calls from JavaScript: pushes the activity they gathered. */
  flush(): void;
  /** Pushes everything not yet reported, from every thread (before timers run). */
  report(): void;
  /** True when the plane moves the peer's packets without JavaScript. */
  carries(peer: P): boolean;
  /** Packets dropped so far, by reason (the device's vocabulary). */
  drops(): Record<string, number>;
  /** The native counters, or null on the portable plane. */
  stats(): NativeDataPathStats | null;
  /** Forgets every key and stops. Idempotent. */
  close(): void;
}
