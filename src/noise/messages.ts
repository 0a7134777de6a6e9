/**
 * Strict codecs for WireGuard's four message types (whitepaper section 5.4).
 *
 * Every datagram starts with a type byte and three zero bytes. Parsers check the exact length of
 * each handshake message (transport messages: at least {@link TRANSPORT_MIN_SIZE}) and return
 * `null` for anything else; they never throw. Parsed fields are views into the datagram, not
 * copies: callers copy what they keep beyond the call.
 */
import {
  COOKIE_NONCE_SIZE,
  COOKIE_REPLY_SIZE,
  COOKIE_SIZE,
  INITIATION_SIZE,
  KEY_SIZE,
  MAC_SIZE,
  MESSAGE_COOKIE_REPLY,
  MESSAGE_INITIATION,
  MESSAGE_RESPONSE,
  MESSAGE_TRANSPORT,
  RESPONSE_SIZE,
  TAG_SIZE,
  TIMESTAMP_SIZE,
  TRANSPORT_HEADER_SIZE,
  TRANSPORT_MIN_SIZE,
} from "./constants.js";

export interface InitiationMessage {
  sender: number;
  ephemeral: Uint8Array;
  /** The initiator's static public key, sealed (32 + 16 bytes). */
  encryptedStatic: Uint8Array;
  /** The TAI64N timestamp, sealed (12 + 16 bytes). */
  encryptedTimestamp: Uint8Array;
  mac1: Uint8Array;
  mac2: Uint8Array;
}

export interface ResponseMessage {
  sender: number;
  receiver: number;
  ephemeral: Uint8Array;
  /** The sealed empty payload: just a tag. */
  encryptedNothing: Uint8Array;
  mac1: Uint8Array;
  mac2: Uint8Array;
}

export interface CookieReplyMessage {
  receiver: number;
  nonce: Uint8Array;
  /** The 16-byte cookie, sealed with XChaCha20-Poly1305 (16 + 16 bytes). */
  encryptedCookie: Uint8Array;
}

export interface TransportMessage {
  receiver: number;
  /**
   * The 64-bit counter as a number. Values of 2^53 and above are not exact (they round to a
   * float that is itself at least 2^53), which is enough to reject them: see constants.ts.
   */
  counter: number;
  /** The counter's 8 wire bytes, exact, for building the nonce. */
  counterBytes: Uint8Array;
  /** Ciphertext and tag. */
  sealed: Uint8Array;
}

// Field offsets, shared by the codecs and by the MAC code (which covers the bytes before mac1).
export const INITIATION_EPHEMERAL_OFFSET = 8;
export const INITIATION_STATIC_OFFSET = INITIATION_EPHEMERAL_OFFSET + KEY_SIZE;
export const INITIATION_TIMESTAMP_OFFSET = INITIATION_STATIC_OFFSET + KEY_SIZE + TAG_SIZE;
export const INITIATION_MAC1_OFFSET = INITIATION_TIMESTAMP_OFFSET + TIMESTAMP_SIZE + TAG_SIZE;
export const RESPONSE_EPHEMERAL_OFFSET = 12;
export const RESPONSE_EMPTY_OFFSET = RESPONSE_EPHEMERAL_OFFSET + KEY_SIZE;
export const RESPONSE_MAC1_OFFSET = RESPONSE_EMPTY_OFFSET + TAG_SIZE;
export const COOKIE_NONCE_OFFSET = 8;
export const COOKIE_ENCRYPTED_OFFSET = COOKIE_NONCE_OFFSET + COOKIE_NONCE_SIZE;

export function readU32(buf: Uint8Array, offset: number): number {
  return (buf[offset]! | (buf[offset + 1]! << 8) | (buf[offset + 2]! << 16) | (buf[offset + 3]! << 24)) >>> 0;
}

export function writeU32(buf: Uint8Array, offset: number, value: number): void {
  buf[offset] = value & 0xff;
  buf[offset + 1] = (value >>> 8) & 0xff;
  buf[offset + 2] = (value >>> 16) & 0xff;
  buf[offset + 3] = (value >>> 24) & 0xff;
}

/**
 * The message type of a datagram, or 0 when it has none: shorter than 4 bytes, an unknown type,
 * or non-zero reserved bytes. Lengths are checked by the individual parsers.
 */
export function messageType(datagram: Uint8Array): number {
  if (datagram.length < 4) return 0;
  const type = readU32(datagram, 0);
  return type >= MESSAGE_INITIATION && type <= MESSAGE_TRANSPORT ? type : 0;
}

function field(buf: Uint8Array, offset: number, length: number): Uint8Array {
  return buf.subarray(offset, offset + length);
}

function requireSize(what: string, buf: Uint8Array, size: number): void {
  if (buf.length !== size) throw new RangeError(`${what} must be ${size} bytes, got ${buf.length}`);
}

export function parseInitiation(datagram: Uint8Array): InitiationMessage | null {
  if (datagram.length !== INITIATION_SIZE || messageType(datagram) !== MESSAGE_INITIATION) return null;
  return {
    sender: readU32(datagram, 4),
    ephemeral: field(datagram, INITIATION_EPHEMERAL_OFFSET, KEY_SIZE),
    encryptedStatic: field(datagram, INITIATION_STATIC_OFFSET, KEY_SIZE + TAG_SIZE),
    encryptedTimestamp: field(datagram, INITIATION_TIMESTAMP_OFFSET, TIMESTAMP_SIZE + TAG_SIZE),
    mac1: field(datagram, INITIATION_MAC1_OFFSET, MAC_SIZE),
    mac2: field(datagram, INITIATION_MAC1_OFFSET + MAC_SIZE, MAC_SIZE),
  };
}

/** Builds an initiation; absent MACs are left zero (the cookie code fills them in place). */
export function encodeInitiation(m: Omit<InitiationMessage, "mac1" | "mac2"> & Partial<InitiationMessage>): Uint8Array {
  requireSize("ephemeral", m.ephemeral, KEY_SIZE);
  requireSize("encrypted static", m.encryptedStatic, KEY_SIZE + TAG_SIZE);
  requireSize("encrypted timestamp", m.encryptedTimestamp, TIMESTAMP_SIZE + TAG_SIZE);
  const out = new Uint8Array(INITIATION_SIZE);
  out[0] = MESSAGE_INITIATION;
  writeU32(out, 4, m.sender);
  out.set(m.ephemeral, INITIATION_EPHEMERAL_OFFSET);
  out.set(m.encryptedStatic, INITIATION_STATIC_OFFSET);
  out.set(m.encryptedTimestamp, INITIATION_TIMESTAMP_OFFSET);
  if (m.mac1) {
    requireSize("mac1", m.mac1, MAC_SIZE);
    out.set(m.mac1, INITIATION_MAC1_OFFSET);
  }
  if (m.mac2) {
    requireSize("mac2", m.mac2, MAC_SIZE);
    out.set(m.mac2, INITIATION_MAC1_OFFSET + MAC_SIZE);
  }
  return out;
}

export function parseResponse(datagram: Uint8Array): ResponseMessage | null {
  if (datagram.length !== RESPONSE_SIZE || messageType(datagram) !== MESSAGE_RESPONSE) return null;
  return {
    sender: readU32(datagram, 4),
    receiver: readU32(datagram, 8),
    ephemeral: field(datagram, RESPONSE_EPHEMERAL_OFFSET, KEY_SIZE),
    encryptedNothing: field(datagram, RESPONSE_EMPTY_OFFSET, TAG_SIZE),
    mac1: field(datagram, RESPONSE_MAC1_OFFSET, MAC_SIZE),
    mac2: field(datagram, RESPONSE_MAC1_OFFSET + MAC_SIZE, MAC_SIZE),
  };
}

/** Builds a response; absent MACs are left zero. */
export function encodeResponse(m: Omit<ResponseMessage, "mac1" | "mac2"> & Partial<ResponseMessage>): Uint8Array {
  requireSize("ephemeral", m.ephemeral, KEY_SIZE);
  requireSize("encrypted nothing", m.encryptedNothing, TAG_SIZE);
  const out = new Uint8Array(RESPONSE_SIZE);
  out[0] = MESSAGE_RESPONSE;
  writeU32(out, 4, m.sender);
  writeU32(out, 8, m.receiver);
  out.set(m.ephemeral, RESPONSE_EPHEMERAL_OFFSET);
  out.set(m.encryptedNothing, RESPONSE_EMPTY_OFFSET);
  if (m.mac1) {
    requireSize("mac1", m.mac1, MAC_SIZE);
    out.set(m.mac1, RESPONSE_MAC1_OFFSET);
  }
  if (m.mac2) {
    requireSize("mac2", m.mac2, MAC_SIZE);
    out.set(m.mac2, RESPONSE_MAC1_OFFSET + MAC_SIZE);
  }
  return out;
}

export function parseCookieReply(datagram: Uint8Array): CookieReplyMessage | null {
  if (datagram.length !== COOKIE_REPLY_SIZE || messageType(datagram) !== MESSAGE_COOKIE_REPLY) return null;
  return {
    receiver: readU32(datagram, 4),
    nonce: field(datagram, COOKIE_NONCE_OFFSET, COOKIE_NONCE_SIZE),
    encryptedCookie: field(datagram, COOKIE_ENCRYPTED_OFFSET, COOKIE_SIZE + TAG_SIZE),
  };
}

export function encodeCookieReply(m: CookieReplyMessage): Uint8Array {
  requireSize("cookie nonce", m.nonce, COOKIE_NONCE_SIZE);
  requireSize("encrypted cookie", m.encryptedCookie, COOKIE_SIZE + TAG_SIZE);
  const out = new Uint8Array(COOKIE_REPLY_SIZE);
  out[0] = MESSAGE_COOKIE_REPLY;
  writeU32(out, 4, m.receiver);
  out.set(m.nonce, COOKIE_NONCE_OFFSET);
  out.set(m.encryptedCookie, COOKIE_ENCRYPTED_OFFSET);
  return out;
}

export function parseTransport(datagram: Uint8Array): TransportMessage | null {
  if (datagram.length < TRANSPORT_MIN_SIZE || messageType(datagram) !== MESSAGE_TRANSPORT) return null;
  return {
    receiver: readU32(datagram, 4),
    counter: readU32(datagram, 8) + readU32(datagram, 12) * 0x1_0000_0000,
    counterBytes: field(datagram, 8, 8),
    sealed: datagram.subarray(TRANSPORT_HEADER_SIZE),
  };
}

/**
 * Writes a transport header (type, receiver, counter) into the first 16 bytes of `out`.
 * The counter must be a safe integer; the sealed payload follows at {@link TRANSPORT_HEADER_SIZE}.
 */
export function writeTransportHeader(out: Uint8Array, receiver: number, counter: number): void {
  if (!Number.isSafeInteger(counter) || counter < 0) throw new RangeError(`bad transport counter ${counter}`);
  out[0] = MESSAGE_TRANSPORT;
  out[1] = 0;
  out[2] = 0;
  out[3] = 0;
  writeU32(out, 4, receiver);
  const lo = counter % 0x1_0000_0000;
  writeU32(out, 8, lo);
  writeU32(out, 12, (counter - lo) / 0x1_0000_0000);
}

/** Builds a complete transport message around an already sealed payload. */
export function encodeTransport(receiver: number, counter: number, sealed: Uint8Array): Uint8Array {
  if (sealed.length < TAG_SIZE) throw new RangeError(`sealed payload must be at least ${TAG_SIZE} bytes`);
  const out = new Uint8Array(TRANSPORT_HEADER_SIZE + sealed.length);
  writeTransportHeader(out, receiver, counter);
  out.set(sealed, TRANSPORT_HEADER_SIZE);
  return out;
}
