/**
 * One transport message, sealed or opened: the header (type 4, receiver index, 64-bit counter),
 * the padding rule and the AEAD, written once for the TypeScript data plane (the native one
 * has its counterpart in native/src/datapath.cc; test/dataplane holds the vectors both meet).
 *
 * 1. seal: pad the packet to a multiple of 16 (never past the MTU unless the packet is),
 *    encrypt under the keypair's send key with the counter as nonce, prefix the header.
 * 2. open: parse the header, reject an expired keypair or a counter at the limit, decrypt,
 *    then (only for authentic messages) check the replay window, then the inner length.
 */
import type { CryptoBackend } from "../crypto/backend.js";
import { counterNonce } from "../crypto/index.js";
import { PADDING_MULTIPLE, REJECT_AFTER_TIME, TRANSPORT_HEADER_SIZE } from "../noise/constants.js";
import type { Keypair } from "../noise/keypair.js";
import { parseTransport, writeTransportHeader, type TransportMessage } from "../noise/messages.js";

/** The padded plaintext length of a `length`-byte packet under `mtu` (0: pad regardless). */
export function paddedLength(length: number, mtu: number): number {
  let padded = length === 0 ? 0 : Math.ceil(length / PADDING_MULTIPLE) * PADDING_MULTIPLE;
  if (mtu > 0 && padded > mtu) padded = Math.max(length, mtu);
  return padded;
}

/** Seals `packet` (empty: a keepalive) with `counter` under the keypair's send key. */
export function sealTransport(
  backend: CryptoBackend,
  keypair: Keypair,
  counter: number,
  packet: Uint8Array,
  mtu: number,
  nonce: Uint8Array = new Uint8Array(12),
): Uint8Array {
  const padded = paddedLength(packet.length, mtu);
  let plaintext = packet;
  if (padded !== packet.length) {
    plaintext = new Uint8Array(padded);
    plaintext.set(packet);
  }
  const sealed = backend.aeadSeal(keypair.sendKey, counterNonce(counter, nonce), plaintext);
  const out = new Uint8Array(TRANSPORT_HEADER_SIZE + sealed.length);
  writeTransportHeader(out, keypair.remoteIndex, counter);
  out.set(sealed, TRANSPORT_HEADER_SIZE);
  return out;
}

/** Why an opened message is not delivered (the words the device counts drops by). */
export type OpenFailure = "expired-keypair" | "decryption-failed" | "replayed-counter" | "bad-inner-packet";

/**
 * Opens a parsed transport message with its keypair. Returns the inner packet with the padding
 * cut (empty for a keepalive) or why it was refused. The replay window is only advanced by
 * authentic messages.
 */
export function openTransport(
  backend: CryptoBackend,
  keypair: Keypair,
  msg: TransportMessage,
  now: number,
  limit: number,
  nonce: Uint8Array = new Uint8Array(12),
): Uint8Array | OpenFailure {
  if (now - keypair.created > REJECT_AFTER_TIME || msg.counter >= limit) return "expired-keypair";
  nonce.fill(0, 0, 4);
  nonce.set(msg.counterBytes, 4);
  const plaintext = backend.aeadOpen(keypair.receiveKey, nonce, msg.sealed);
  if (plaintext === null) return "decryption-failed";
  if (!keypair.replay.check(msg.counter, limit)) return "replayed-counter";
  if (plaintext.length === 0) return plaintext;
  const length = innerPacketLength(plaintext);
  return length < 0 ? "bad-inner-packet" : plaintext.subarray(0, length);
}

export { parseTransport };

/** The length of the IP packet at the start of `p`, or -1 when it is not a sane IPv4/IPv6 packet. */
export function innerPacketLength(p: Uint8Array): number {
  const version = p[0]! >> 4;
  if (version === 4) {
    if (p.length < 20) return -1;
    const length = (p[2]! << 8) | p[3]!;
    return length < 20 || length > p.length ? -1 : length;
  }
  if (version === 6) {
    if (p.length < 40) return -1;
    const length = ((p[4]! << 8) | p[5]!) + 40;
    return length > p.length ? -1 : length;
  }
  return -1;
}
