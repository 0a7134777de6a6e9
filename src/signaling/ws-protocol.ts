/**
 * The frames spoken between `tswg signal` and its clients, one per binary WebSocket message; the
 * first byte is the frame type.
 *
 *   server → client
 *     0x01 HELLO       version(1) || server ephemeral X25519 public key(32) || nonce(32)
 *     0x02 SUBSCRIBED  (empty): the subscription is active
 *     0x03 DELIVER     blob: a blob addressed to the subscribed key
 *     0x04 ERROR       UTF-8 reason; the server closes the connection after it
 *   client → server
 *     0x11 SUBSCRIBE   public key(32) || proof(32)
 *     0x12 SEND        recipient public key(32) || blob
 *
 * The proof shows the client holds the private key of the key it subscribes to, so nobody else
 * can collect (or take over) the blobs addressed to it:
 *   proof = HMAC-BLAKE2s(X25519(client private, server ephemeral),
 *                        "tswg signaling subscribe v1" || nonce || client public || server ephemeral)
 * The server checks it with X25519(server ephemeral private, client public). Ephemeral key and
 * nonce are fresh per connection, so a recorded proof is worthless on another connection.
 */
import { KEY_LENGTH, concatBytes, type CryptoBackend } from "../crypto/index.js";

export const WS_PROTOCOL_VERSION = 1;
export const NONCE_LENGTH = 32;
export const PROOF_LENGTH = 32;

export const FrameType = {
  Hello: 0x01,
  Subscribed: 0x02,
  Deliver: 0x03,
  Error: 0x04,
  Subscribe: 0x11,
  Send: 0x12,
} as const;

const PROOF_LABEL = new TextEncoder().encode("tswg signaling subscribe v1");

export type ServerFrame =
  | { type: "hello"; version: number; serverKey: Uint8Array; nonce: Uint8Array }
  | { type: "subscribed" }
  | { type: "deliver"; blob: Uint8Array }
  | { type: "error"; reason: string };

export type ClientFrame =
  | { type: "subscribe"; publicKey: Uint8Array; proof: Uint8Array }
  | { type: "send"; to: Uint8Array; blob: Uint8Array };

export function encodeHello(serverKey: Uint8Array, nonce: Uint8Array): Uint8Array {
  return concatBytes(Uint8Array.of(FrameType.Hello, WS_PROTOCOL_VERSION), serverKey, nonce);
}

export function encodeSubscribed(): Uint8Array {
  return Uint8Array.of(FrameType.Subscribed);
}

export function encodeDeliver(blob: Uint8Array): Uint8Array {
  return concatBytes(Uint8Array.of(FrameType.Deliver), blob);
}

export function encodeError(reason: string): Uint8Array {
  return concatBytes(Uint8Array.of(FrameType.Error), new TextEncoder().encode(reason));
}

export function encodeSubscribe(publicKey: Uint8Array, proof: Uint8Array): Uint8Array {
  return concatBytes(Uint8Array.of(FrameType.Subscribe), publicKey, proof);
}

export function encodeSend(to: Uint8Array, blob: Uint8Array): Uint8Array {
  return concatBytes(Uint8Array.of(FrameType.Send), to, blob);
}

/** Parses a frame from the server; null when it is not one. */
export function decodeServerFrame(data: Uint8Array): ServerFrame | null {
  switch (data[0]) {
    case FrameType.Hello:
      if (data.length !== 2 + KEY_LENGTH + NONCE_LENGTH) return null;
      return { type: "hello", version: data[1]!, serverKey: data.slice(2, 2 + KEY_LENGTH), nonce: data.slice(2 + KEY_LENGTH) };
    case FrameType.Subscribed:
      return data.length === 1 ? { type: "subscribed" } : null;
    case FrameType.Deliver:
      return data.length > 1 ? { type: "deliver", blob: data.slice(1) } : null;
    case FrameType.Error:
      return { type: "error", reason: new TextDecoder().decode(data.subarray(1)).slice(0, 200) };
    default:
      return null;
  }
}

/** Parses a frame from a client; null when it is not one. */
export function decodeClientFrame(data: Uint8Array): ClientFrame | null {
  switch (data[0]) {
    case FrameType.Subscribe:
      if (data.length !== 1 + KEY_LENGTH + PROOF_LENGTH) return null;
      return { type: "subscribe", publicKey: data.slice(1, 1 + KEY_LENGTH), proof: data.slice(1 + KEY_LENGTH) };
    case FrameType.Send:
      if (data.length <= 1 + KEY_LENGTH) return null;
      return { type: "send", to: data.slice(1, 1 + KEY_LENGTH), blob: data.slice(1 + KEY_LENGTH) };
    default:
      return null;
  }
}

/**
 * The subscription proof, computed by the client from its private key or by the server from its
 * ephemeral private key (X25519 is symmetric). Throws ZeroSharedSecretError for low-order keys.
 */
export function subscriptionProof(
  backend: CryptoBackend,
  ownPrivate: Uint8Array,
  otherPublic: Uint8Array,
  nonce: Uint8Array,
  clientKey: Uint8Array,
  serverKey: Uint8Array,
): Uint8Array {
  const shared = backend.dh(ownPrivate, otherPublic);
  try {
    return backend.hmac(shared, PROOF_LABEL, nonce, clientKey, serverKey);
  } finally {
    shared.fill(0);
  }
}
