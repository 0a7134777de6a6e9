/**
 * Optional abilities a Bind or an Endpoint may have, asked for by shape rather than by class,
 * so that the device and its data planes work with any transport that offers them.
 */
import type { IpFamily } from "../allowedips/ip.js";
import type { PacketSocket } from "../stun/packet-socket.js";
import type { Bind, Endpoint } from "./bind.js";

/** Maps the source of a received datagram to the endpoint it stands for, or null to keep the plain one. */
export type SourceMapper = (address: string, port: number) => Endpoint | null;

/**
 * A Bind whose socket other transports may share (ICE's STUN rides the WireGuard port): it
 * hands up STUN and ChannelData, sends for them, and lets them claim the sources they own.
 */
export interface SocketSharingBind extends Bind, PacketSocket {
  setSourceMapper(mapper: SourceMapper | null): void;
  /** A TURN server's address on this socket, reached through one of its channels. */
  channelEndpoint(address: string, port: number, channel: number): Endpoint;
  /** A path MTU a prober confirmed for one of its endpoints (a native sender keeps its own table). */
  probedPathMtu?(endpoint: Endpoint, mtu: number): void;
}

/**
 * A Bind that can ride another Bind's socket (see {@link SocketSharingBind}) and then names the
 * endpoints of that socket that carry its own endpoints ({@link CarriedEndpoint}).
 */
export interface SocketRidingBind extends Bind {
  rideSocket(owner: SocketSharingBind | null): void;
  /** The endpoint a datagram from this source on the shared socket belongs to, or null. */
  sourceEndpoint(address: string, port: number): Endpoint | null;
  /** Called when what carries one of its endpoints changes. Returns an unsubscribe function. */
  onCarrierChange(listener: (endpoint: Endpoint) => void): () => void;
}

/**
 * A Bind whose paths can be probed for their path MTU (ICE between tswg peers): `limit` is the
 * kernel's path MTU towards an endpoint of the shared socket (0: unknown), `report` gets a
 * confirmed size for the endpoint that carries one of its endpoints (the table's unit).
 */
export interface PathMtuProbingBind extends Bind {
  probePathMtu(limit: (target: Endpoint) => number, report: (carrier: Endpoint, mtu: number) => void): void;
}

export function probesPathMtu(b: Bind): b is PathMtuProbingBind {
  return typeof (b as Partial<PathMtuProbingBind>).probePathMtu === "function";
}

/**
 * A Bind that wants to hear when a data plane moved datagrams for one of its endpoints without
 * it (carried endpoints): ICE checks the liveness of the path that carries them.
 */
export interface ActivityObservingBind extends Bind {
  noteActivity(endpoint: Endpoint, sent: boolean, received: boolean): void;
}

/** An endpoint whose datagrams currently travel as those of another endpoint (of another Bind). */
export interface CarriedEndpoint extends Endpoint {
  carrier(): Endpoint | null;
}

/** An endpoint that is a plain IP address and port: what a native socket can send to. */
export interface AddressEndpoint extends Endpoint {
  readonly family: IpFamily;
  readonly port: number;
  /** IPv6 zone, or "". */
  readonly zone: string;
  /** A TURN channel when the address is a TURN server's and datagrams go as ChannelData; else 0. */
  readonly channel?: number;
  addressBytes(): Uint8Array;
}

export function sharesSocket(b: Bind): b is SocketSharingBind {
  const x = b as Partial<SocketSharingBind>;
  return (
    typeof x.setSourceMapper === "function" &&
    typeof x.sendPacket === "function" &&
    typeof x.onPacket === "function" &&
    typeof x.channelEndpoint === "function"
  );
}

export function ridesSocket(b: Bind): b is SocketRidingBind {
  const x = b as Partial<SocketRidingBind>;
  return typeof x.rideSocket === "function" && typeof x.sourceEndpoint === "function" && typeof x.onCarrierChange === "function";
}

export function observesActivity(b: Bind): b is ActivityObservingBind {
  return typeof (b as Partial<ActivityObservingBind>).noteActivity === "function";
}

export function isCarried(e: Endpoint): e is CarriedEndpoint {
  return typeof (e as Partial<CarriedEndpoint>).carrier === "function";
}

export function isAddressEndpoint(e: Endpoint): e is AddressEndpoint {
  const x = e as Partial<AddressEndpoint>;
  return (x.family === 4 || x.family === 6) && typeof x.port === "number" && typeof x.addressBytes === "function";
}

/** Where an endpoint's datagrams really go: its carrier's endpoint when it has one. */
export function carrierOf(e: Endpoint | null): Endpoint | null {
  if (e === null) return null;
  return isCarried(e) ? e.carrier() : e;
}

/**
 * What a Bind needs to sort handshake messages while it queues them: the device's checks of
 * mac1 and mac2 (a cookie checker has this shape). Both must be cheap and must not throw.
 */
export interface HandshakeScreen {
  /** True when the handshake message's mac1 is valid for this device. */
  checkMac1(msg: Uint8Array): boolean;
  /** True when its mac2 is valid for a cookie given to `source` (an endpoint's `dstToBytes()`). */
  checkMac2(msg: Uint8Array, source: Uint8Array): boolean;
}

/**
 * A Bind that checks the MACs of handshake messages before queueing them: those with a bad mac1
 * are dropped (counted), those whose mac2 proves the sender's address wait in a lane of their
 * own that a flood cannot fill, and the rest share a lane fairly by source address.
 */
export interface HandshakeScreeningBind extends Bind {
  /** Sets (or with null removes) the checks; without them every datagram is queued alike. */
  setHandshakeScreen(screen: HandshakeScreen | null): void;
}

export function screensHandshakes(b: Bind): b is HandshakeScreeningBind {
  return typeof (b as Partial<HandshakeScreeningBind>).setHandshakeScreen === "function";
}
