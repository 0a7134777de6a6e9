/**
 * Telling apart what arrives on a UDP socket shared by WireGuard and ICE.
 *
 * 1. STUN (RFC 8489): the top two bits of byte 0 are clear, bytes 4-7 hold the magic cookie
 *    0x2112A442, and the length at bytes 2-3 (a multiple of 4) covers the rest exactly.
 * 2. TURN ChannelData (RFC 8656 §12.4): a channel number 0x4000-0x4FFF, so byte 0 is 0x40-0x4F,
 *    then a length no larger than what follows (UDP may pad to a multiple of 4).
 * 3. Anything else is WireGuard's (types 1-4 followed by three zero bytes), or garbage that the
 *    WireGuard side drops and counts.
 *
 * The native data path passes everything that is not a WireGuard transport message up, so
 * these rules decide for both planes.
 */

export const STUN_MAGIC_COOKIE = 0x2112a442;
const STUN_HEADER = 20;
const CHANNEL_HEADER = 4;

export function isStunMessage(b: Uint8Array): boolean {
  if (b.length < STUN_HEADER || (b[0]! & 0xc0) !== 0) return false;
  if (b[4] !== 0x21 || b[5] !== 0x12 || b[6] !== 0xa4 || b[7] !== 0x42) return false;
  const len = (b[2]! << 8) | b[3]!;
  return (len & 3) === 0 && len + STUN_HEADER === b.length;
}

export function isChannelData(b: Uint8Array): boolean {
  if (b.length < CHANNEL_HEADER || b[0]! < 0x40 || b[0]! > 0x4f) return false;
  const len = (b[2]! << 8) | b[3]!;
  return len + CHANNEL_HEADER <= b.length;
}

/** STUN or TURN ChannelData: the ICE side's business, not WireGuard's. */
export function isIceTraffic(b: Uint8Array): boolean {
  return isStunMessage(b) || isChannelData(b);
}

export type StunClass = "request" | "indication" | "success" | "error";

/** The class of a STUN message (bits C1 C0 of the message type). */
export function stunClass(b: Uint8Array): StunClass {
  const c = ((b[0]! & 0x01) << 1) | ((b[1]! & 0x10) >> 4);
  return c === 0 ? "request" : c === 1 ? "indication" : c === 2 ? "success" : "error";
}

/** The 12-byte transaction ID as hex (how the ICE library keys its transactions). */
export function stunTransactionId(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset + 8, 12).toString("hex");
}

const ATTR_USERNAME = 0x0006;

/** The USERNAME attribute as text, or null when there is none (or it is malformed). */
export function stunUsername(b: Uint8Array): string | null {
  let off = STUN_HEADER;
  while (off + 4 <= b.length) {
    const type = (b[off]! << 8) | b[off + 1]!;
    const len = (b[off + 2]! << 8) | b[off + 3]!;
    const start = off + 4;
    if (start + len > b.length) return null;
    if (type === ATTR_USERNAME) return Buffer.from(b.buffer, b.byteOffset + start, len).toString("utf8");
    off = start + ((len + 3) & ~3);
  }
  return null;
}
