// IPv4/IPv6 TCP and UDP packets for the offload tests, with checksums computed here
// independently of the native code under test.

export interface TcpSpec {
  v6?: boolean;
  src?: number[];
  dst?: number[];
  sport?: number;
  dport?: number;
  seq: number;
  ack?: number;
  /** TCP flags byte; default ACK (0x10). */
  flags?: number;
  window?: number;
  /** TCP options (length a multiple of 4). */
  options?: number[];
  payload: Uint8Array;
  id?: number;
  ttl?: number;
}

const V4_SRC = [10, 9, 0, 1];
const V4_DST = [10, 9, 0, 2];
const V6_SRC = [0xfd, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const V6_DST = [0xfd, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

export function sum16(bytes: Uint8Array, start = 0, end = bytes.length, initial = 0): number {
  let s = initial;
  for (let i = start; i < end; i += 2) s += (bytes[i]! << 8) | (i + 1 < end ? bytes[i + 1]! : 0);
  return s;
}

export function fold(s: number): number {
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}

function pseudo(pkt: Uint8Array, v6: boolean, proto: number, length: number): number {
  const addrStart = v6 ? 8 : 12;
  const addrLen = v6 ? 32 : 8;
  return sum16(pkt, addrStart, addrStart + addrLen) + proto + length;
}

/** True when the packet's transport checksum (and IPv4 header checksum) verify. */
export function checksumsValid(pkt: Uint8Array): boolean {
  const v6 = pkt[0]! >> 4 === 6;
  const ihl = v6 ? 40 : (pkt[0]! & 0xf) * 4;
  if (!v6 && fold(sum16(pkt, 0, ihl)) !== 0xffff) return false;
  const proto = v6 ? pkt[6]! : pkt[9]!;
  const tlen = pkt.length - ihl;
  return fold(sum16(pkt, ihl, pkt.length, pseudo(pkt, v6, proto, tlen))) === 0xffff;
}

function setTransportChecksum(pkt: Uint8Array, v6: boolean, ihl: number, proto: number, field: number): void {
  pkt[ihl + field] = 0;
  pkt[ihl + field + 1] = 0;
  let c = ~fold(sum16(pkt, ihl, pkt.length, pseudo(pkt, v6, proto, pkt.length - ihl))) & 0xffff;
  if (proto === 17 && c === 0) c = 0xffff;
  pkt[ihl + field] = c >> 8;
  pkt[ihl + field + 1] = c & 0xff;
}

function ipHeader(pkt: Uint8Array, v6: boolean, proto: number, spec: { src?: number[]; dst?: number[]; id?: number; ttl?: number }): number {
  if (v6) {
    pkt[0] = 0x60;
    const pl = pkt.length - 40;
    pkt[4] = pl >> 8;
    pkt[5] = pl & 0xff;
    pkt[6] = proto;
    pkt[7] = spec.ttl ?? 64;
    pkt.set(spec.src ?? V6_SRC, 8);
    pkt.set(spec.dst ?? V6_DST, 24);
    return 40;
  }
  pkt[0] = 0x45;
  pkt[2] = pkt.length >> 8;
  pkt[3] = pkt.length & 0xff;
  const id = spec.id ?? 0x1234;
  pkt[4] = id >> 8;
  pkt[5] = id & 0xff;
  pkt[6] = 0x40; // DF
  pkt[8] = spec.ttl ?? 64;
  pkt[9] = proto;
  pkt.set(spec.src ?? V4_SRC, 12);
  pkt.set(spec.dst ?? V4_DST, 16);
  const c = ~fold(sum16(pkt, 0, 20)) & 0xffff;
  pkt[10] = c >> 8;
  pkt[11] = c & 0xff;
  return 20;
}

/** A complete TCP segment with valid checksums. */
export function tcpPacket(spec: TcpSpec): Uint8Array {
  const v6 = spec.v6 ?? false;
  const opts = spec.options ?? [];
  const thl = 20 + opts.length;
  const ihl = v6 ? 40 : 20;
  const pkt = new Uint8Array(ihl + thl + spec.payload.length);
  ipHeader(pkt, v6, 6, spec);
  const t = ihl;
  const w = (off: number, v: number, n: number) => {
    for (let i = 0; i < n; i++) pkt[t + off + i] = (v >>> (8 * (n - 1 - i))) & 0xff;
  };
  w(0, spec.sport ?? 40000, 2);
  w(2, spec.dport ?? 5201, 2);
  w(4, spec.seq >>> 0, 4);
  w(8, (spec.ack ?? 777) >>> 0, 4);
  pkt[t + 12] = (thl / 4) << 4;
  pkt[t + 13] = spec.flags ?? 0x10;
  w(14, spec.window ?? 512, 2);
  pkt.set(opts, t + 20);
  pkt.set(spec.payload, t + thl);
  setTransportChecksum(pkt, v6, ihl, 6, 16);
  return pkt;
}

/** A complete UDP datagram with valid checksums. */
export function udpPacket(payload: Uint8Array, v6 = false): Uint8Array {
  const ihl = v6 ? 40 : 20;
  const pkt = new Uint8Array(ihl + 8 + payload.length);
  ipHeader(pkt, v6, 17, {});
  pkt[ihl] = 0x9c;
  pkt[ihl + 1] = 0x40;
  pkt[ihl + 2] = 0x14;
  pkt[ihl + 3] = 0x51;
  const ul = 8 + payload.length;
  pkt[ihl + 4] = ul >> 8;
  pkt[ihl + 5] = ul & 0xff;
  pkt.set(payload, ihl + 8);
  setTransportChecksum(pkt, v6, ihl, 17, 6);
  return pkt;
}

/** The virtio-net header bytes (little-endian fields, as on x86 and arm64). */
export function vnetHeader(h: { flags?: number; gsoType?: number; hdrLen?: number; gsoSize?: number; csumStart?: number; csumOffset?: number }): Uint8Array {
  const b = new Uint8Array(10);
  const dv = new DataView(b.buffer);
  b[0] = h.flags ?? 0;
  b[1] = h.gsoType ?? 0;
  dv.setUint16(2, h.hdrLen ?? 0, true);
  dv.setUint16(4, h.gsoSize ?? 0, true);
  dv.setUint16(6, h.csumStart ?? 0, true);
  dv.setUint16(8, h.csumOffset ?? 0, true);
  return b;
}

export function parseVnetHeader(b: Uint8Array): { flags: number; gsoType: number; hdrLen: number; gsoSize: number; csumStart: number; csumOffset: number } {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return { flags: b[0]!, gsoType: b[1]!, hdrLen: dv.getUint16(2, true), gsoSize: dv.getUint16(4, true), csumStart: dv.getUint16(6, true), csumOffset: dv.getUint16(8, true) };
}

/** Fields of a TCP segment needed by the assertions. */
export function tcpFields(pkt: Uint8Array): { seq: number; flags: number; payload: Uint8Array; id: number; totalLength: number } {
  const v6 = pkt[0]! >> 4 === 6;
  const ihl = v6 ? 40 : (pkt[0]! & 0xf) * 4;
  const thl = (pkt[ihl + 12]! >> 4) * 4;
  const dv = new DataView(pkt.buffer, pkt.byteOffset, pkt.byteLength);
  return {
    seq: dv.getUint32(ihl + 4),
    flags: pkt[ihl + 13]!,
    payload: pkt.subarray(ihl + thl),
    id: v6 ? 0 : dv.getUint16(4),
    totalLength: v6 ? dv.getUint16(4) + 40 : dv.getUint16(2),
  };
}

/**
 * What a kernel hands over for a TSO super-packet: the joined segment with the TCP checksum
 * field holding only the pseudo-header sum (partial checksum) and a GSO virtio-net header.
 */
export function superPacket(spec: TcpSpec & { mss: number }): { header: Uint8Array; packet: Uint8Array } {
  const pkt = tcpPacket(spec);
  const v6 = spec.v6 ?? false;
  const ihl = v6 ? 40 : 20;
  const thl = 20 + (spec.options?.length ?? 0);
  const partial = fold(pseudo(pkt, v6, 6, pkt.length - ihl));
  pkt[ihl + 16] = partial >> 8;
  pkt[ihl + 17] = partial & 0xff;
  return {
    header: vnetHeader({ flags: 1, gsoType: v6 ? 4 : 1, hdrLen: ihl + thl, gsoSize: spec.mss, csumStart: ihl, csumOffset: 16 }),
    packet: pkt,
  };
}

export function bytes(n: number, seed = 1): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}
