// IPv4 ICMP echo packets for the TUN tests: build requests, recognise them, answer them.

/** Internet checksum (RFC 1071) of bytes[start, end). */
export function internetChecksum(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let sum = 0;
  for (let i = start; i + 1 < end; i += 2) sum += (bytes[i] << 8) | bytes[i + 1];
  if ((end - start) % 2 === 1) sum += bytes[end - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function parseAddress(address: string): number[] {
  const parts = address.split(".").map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw new Error(`not an IPv4 address: ${address}`);
  }
  return parts;
}

export interface IcmpEcho {
  src: string;
  dst: string;
  /** 8 request, 0 reply. */
  type: number;
  id: number;
  seq: number;
  payload: Uint8Array;
}

export const ECHO_REQUEST = 8;
export const ECHO_REPLY = 0;

export function buildEcho(
  type: number,
  src: string,
  dst: string,
  id: number,
  seq: number,
  payload: Uint8Array,
): Uint8Array {
  const packet = new Uint8Array(20 + 8 + payload.length);
  const view = new DataView(packet.buffer);
  packet[0] = 0x45;
  view.setUint16(2, packet.length);
  view.setUint16(4, seq & 0xffff);
  view.setUint16(6, 0x4000); // don't fragment
  packet[8] = 64;
  packet[9] = 1; // ICMP
  packet.set(parseAddress(src), 12);
  packet.set(parseAddress(dst), 16);
  view.setUint16(10, internetChecksum(packet, 0, 20));
  packet[20] = type;
  view.setUint16(24, id);
  view.setUint16(26, seq & 0xffff);
  packet.set(payload, 28);
  view.setUint16(22, internetChecksum(packet, 20, packet.length));
  return packet;
}

/** The echo request or reply in `packet`, or null for anything else (or a bad checksum). */
export function parseEcho(packet: Uint8Array): IcmpEcho | null {
  if (packet.length < 28 || packet[0] >> 4 !== 4 || packet[9] !== 1) return null;
  const ihl = (packet[0] & 0x0f) * 4;
  const view = new DataView(packet.buffer, packet.byteOffset, packet.byteLength);
  const total = view.getUint16(2);
  if (ihl < 20 || total > packet.length || total < ihl + 8) return null;
  const type = packet[ihl];
  if (type !== ECHO_REQUEST && type !== ECHO_REPLY) return null;
  if (internetChecksum(packet, 0, ihl) !== 0 || internetChecksum(packet, ihl, total) !== 0) return null;
  return {
    src: Array.from(packet.subarray(12, 16)).join("."),
    dst: Array.from(packet.subarray(16, 20)).join("."),
    type,
    id: view.getUint16(ihl + 4),
    seq: view.getUint16(ihl + 6),
    payload: packet.slice(ihl + 8, total),
  };
}

/** The reply a host would send to an echo request. */
export function replyTo(request: IcmpEcho): Uint8Array {
  return buildEcho(ECHO_REPLY, request.dst, request.src, request.id, request.seq, request.payload);
}
