/**
 * The smallest STUN client part tswg needs (RFC 8489, RFC 8656): a Binding Request and the mapped
 * address out of its Success Response — to ask a STUN server what a NAT turned us into — and an
 * unauthenticated TURN Allocate, whose error answer proves a TURN server listens. Used by
 * `tswg netcheck` and the test bed.
 */
import { randomBytes } from "node:crypto";
import { formatIp } from "../allowedips/ip.js";

const BINDING_REQUEST = 0x0001;
const BINDING_SUCCESS = 0x0101;
const MAGIC_COOKIE = 0x2112a442;
const ATTR_MAPPED_ADDRESS = 0x0001;
const ATTR_XOR_MAPPED_ADDRESS = 0x0020;
const HEADER = 20;
const ALLOCATE_REQUEST = 0x0003;
const ALLOCATE_SUCCESS = 0x0103;
const ALLOCATE_ERROR = 0x0113;
const ATTR_ERROR_CODE = 0x0009;
const ATTR_REQUESTED_TRANSPORT = 0x0019;
const IPPROTO_UDP = 17;

export interface MappedAddress {
  family: 4 | 6;
  address: string;
  port: number;
}

/** A Binding Request with no attributes; `transactionId` (12 bytes) defaults to random. */
export function bindingRequest(transactionId: Uint8Array = randomBytes(12)): Uint8Array {
  if (transactionId.length !== 12) throw new Error(`a STUN transaction id has 12 bytes, not ${transactionId.length}`);
  const msg = new Uint8Array(HEADER);
  const view = new DataView(msg.buffer);
  view.setUint16(0, BINDING_REQUEST);
  view.setUint16(2, 0);
  view.setUint32(4, MAGIC_COOKIE);
  msg.set(transactionId, 8);
  return msg;
}

/** The transaction id of a STUN message (bytes 8..19). */
export function transactionIdOf(msg: Uint8Array): Uint8Array {
  if (msg.length < HEADER) throw new Error("not a STUN message: shorter than its 20-byte header");
  return msg.subarray(8, HEADER);
}

/**
 * The address from a Binding Success Response to `transactionId`: XOR-MAPPED-ADDRESS, or the
 * older MAPPED-ADDRESS if that is all there is. Throws a clear error for anything else.
 */
export function parseBindingResponse(data: Uint8Array, transactionId: Uint8Array): MappedAddress {
  const msg = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (msg.length < HEADER) throw new Error(`not a STUN message: ${msg.length} bytes`);
  if (msg.readUInt32BE(4) !== MAGIC_COOKIE) throw new Error("not a STUN message: wrong magic cookie");
  const type = msg.readUInt16BE(0);
  if (type !== BINDING_SUCCESS) throw new Error(`STUN message type 0x${type.toString(16).padStart(4, "0")} is not a Binding Success Response`);
  const length = msg.readUInt16BE(2);
  if (length % 4 !== 0 || HEADER + length > msg.length) throw new Error(`STUN message length ${length} does not fit the ${msg.length}-byte datagram`);
  if (!msg.subarray(8, HEADER).equals(Buffer.from(transactionId))) throw new Error("STUN response is for another transaction");
  let plain: MappedAddress | undefined;
  for (let off = HEADER; off + 4 <= HEADER + length; ) {
    const attrType = msg.readUInt16BE(off);
    const attrLen = msg.readUInt16BE(off + 2);
    const value = msg.subarray(off + 4, off + 4 + attrLen);
    if (off + 4 + attrLen > HEADER + length) throw new Error(`STUN attribute 0x${attrType.toString(16)} runs past the message`);
    if (attrType === ATTR_XOR_MAPPED_ADDRESS) return readAddress(value, msg.subarray(4, HEADER));
    if (attrType === ATTR_MAPPED_ADDRESS) plain = readAddress(value, null);
    off += 4 + Math.ceil(attrLen / 4) * 4;
  }
  if (plain !== undefined) return plain;
  throw new Error("STUN Binding Success Response has no (XOR-)MAPPED-ADDRESS");
}

/** Reads an address attribute; `xorKey` (cookie + transaction id) for the XOR form. */
function readAddress(value: Buffer, xorKey: Buffer | null): MappedAddress {
  if (value.length < 4) throw new Error("STUN address attribute is too short");
  const familyCode = value[1];
  const size = familyCode === 0x01 ? 4 : familyCode === 0x02 ? 16 : 0;
  if (size === 0) throw new Error(`STUN address family 0x${(familyCode ?? 0).toString(16)} is unknown`);
  if (value.length < 4 + size) throw new Error("STUN address attribute is too short for its family");
  let port = value.readUInt16BE(2);
  const addr = Buffer.from(value.subarray(4, 4 + size));
  if (xorKey !== null) {
    port ^= MAGIC_COOKIE >>> 16;
    for (let i = 0; i < size; i++) addr[i] = addr[i]! ^ xorKey[i]!;
  }
  return { family: size === 4 ? 4 : 6, address: formatIp(addr), port };
}

/** A TURN Allocate Request for a UDP relay, without credentials (the server answers 401). */
export function allocateRequest(transactionId: Uint8Array = randomBytes(12)): Uint8Array {
  if (transactionId.length !== 12) throw new Error(`a STUN transaction id has 12 bytes, not ${transactionId.length}`);
  const msg = Buffer.alloc(HEADER + 8);
  msg.writeUInt16BE(ALLOCATE_REQUEST, 0);
  msg.writeUInt16BE(8, 2);
  msg.writeUInt32BE(MAGIC_COOKIE, 4);
  msg.set(transactionId, 8);
  msg.writeUInt16BE(ATTR_REQUESTED_TRANSPORT, HEADER);
  msg.writeUInt16BE(4, HEADER + 2);
  msg.writeUInt8(IPPROTO_UDP, HEADER + 4);
  return new Uint8Array(msg.buffer, msg.byteOffset, msg.length);
}

/**
 * What a TURN server said to {@link allocateRequest}: success, or its error code (401 = it wants
 * credentials, which proves it is a TURN server that is listening). Throws for anything else.
 */
export function parseAllocateResponse(data: Uint8Array, transactionId: Uint8Array): { ok: true } | { ok: false; code: number; reason: string } {
  const msg = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (msg.length < HEADER || msg.readUInt32BE(4) !== MAGIC_COOKIE) throw new Error("not a STUN message");
  if (!msg.subarray(8, HEADER).equals(Buffer.from(transactionId))) throw new Error("STUN response is for another transaction");
  const type = msg.readUInt16BE(0);
  if (type === ALLOCATE_SUCCESS) return { ok: true };
  if (type !== ALLOCATE_ERROR) throw new Error(`STUN message type 0x${type.toString(16).padStart(4, "0")} is not an Allocate response`);
  const length = Math.min(msg.readUInt16BE(2), msg.length - HEADER);
  for (let off = HEADER; off + 4 <= HEADER + length; ) {
    const attrType = msg.readUInt16BE(off);
    const attrLen = msg.readUInt16BE(off + 2);
    if (attrType === ATTR_ERROR_CODE && attrLen >= 4 && off + 4 + attrLen <= msg.length) {
      const code = (msg[off + 6]! & 0x07) * 100 + msg[off + 7]!;
      return { ok: false, code, reason: msg.subarray(off + 8, off + 4 + attrLen).toString("utf8") };
    }
    off += 4 + Math.ceil(attrLen / 4) * 4;
  }
  throw new Error("Allocate error response without an ERROR-CODE");
}

/** The length of the STUN message at the start of a stream buffer, or 0 while its header is incomplete. */
export function stunFrameLength(buf: Uint8Array): number {
  if (buf.length < HEADER) return 0;
  return HEADER + ((buf[2]! << 8) | buf[3]!);
}
