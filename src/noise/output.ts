/**
 * What the control plane returns from every call: datagrams to transmit, packets for the data
 * plane to seal, peers authenticated from a source, events and drops.
 */
import type { PeerHandle } from "./peer.js";

/**
 * Where a datagram came from. Only needed under load (cookies are bound to the address bytes and
 * the rate limiter counts per IP), so both are methods and are called only then. A Bind
 * endpoint fits as is.
 */
export interface Source {
  dstIP(): string;
  dstToBytes(): Uint8Array;
}

/** A datagram to send: to the peer's current endpoint when `peer` is set, else back to `to`. */
export type Transmit<S extends Source = Source> =
  | { peer: PeerHandle; to?: undefined; data: Uint8Array }
  | { peer?: undefined; to: S; data: Uint8Array };

export type EngineEvent =
  | { type: "handshake-initiated"; peer: PeerHandle; retry: boolean }
  | { type: "handshake-complete"; peer: PeerHandle; role: "initiator" | "responder" }
  | { type: "handshake-gave-up"; peer: PeerHandle; droppedPackets: number }
  | { type: "keys-zeroed"; peer: PeerHandle; droppedPackets: number }
  | { type: "queue-overflow"; peer: PeerHandle; droppedPackets: number };

/** Why a received datagram was dropped; for debug logs and tests. */
export type DropReason =
  | "malformed"
  | "no-private-key"
  | "bad-mac1"
  | "cookie-sent"
  | "rate-limited"
  | "handshake-failed"
  | "replayed-initiation"
  | "initiation-flood"
  | "unknown-index"
  | "bad-cookie-reply"
  | "expired-keypair"
  | "transport-message"
  | "internal-error";

export interface Output<S extends Source = Source> {
  /** In order. A device applies {@link Output.authenticated} first: replies go to the new endpoint. */
  transmit: Transmit<S>[];
  /** Packets (empty: keepalives) for the data plane to seal for a peer with its current keypair, in order. */
  seal: { peer: PeerHandle; packets: Uint8Array[] }[];
  /** The peer sent an authenticated message from `src`: the device may roam its endpoint there. */
  authenticated: { peer: PeerHandle; src: S }[];
  events: EngineEvent[];
  dropped: { reason: DropReason; peer?: PeerHandle }[];
}

export function newOutput<S extends Source>(): Output<S> {
  return { transmit: [], seal: [], authenticated: [], events: [], dropped: [] };
}
