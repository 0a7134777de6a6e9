/**
 * DNS queries and answers (RFC 1035), only as much as name resolution through the tunnel
 * needs: one question of type A or AAAA out, the addresses of the answer section back.
 */
import { isIP } from "node:net";

export const DNS_TYPE_A = 1;
export const DNS_TYPE_AAAA = 28;

/** A recursive query for `name`. */
export function encodeQuery(id: number, name: string, type: number): Buffer {
  const labels = name.replace(/\.$/u, "").split(".");
  const parts: Buffer[] = [Buffer.from([id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0])];
  for (const l of labels) {
    const b = Buffer.from(l, "utf8");
    if (b.length === 0 || b.length > 63) throw new Error(`invalid host name "${name}"`);
    parts.push(Buffer.from([b.length]), b);
  }
  parts.push(Buffer.from([0, type >> 8, type & 0xff, 0, 1]));
  return Buffer.concat(parts);
}

function skipName(msg: Uint8Array, off: number): number {
  for (let hops = 0; hops < 128; hops++) {
    if (off >= msg.length) return -1;
    const len = msg[off]!;
    if (len === 0) return off + 1;
    if ((len & 0xc0) === 0xc0) return off + 2;
    off += 1 + len;
  }
  return -1;
}

export interface DnsAnswer {
  id: number;
  /** RCODE: 0 no error, 3 no such name… */
  rcode: number;
  addresses: string[];
}

/** The addresses of type `type` in an answer; null for anything that is not a DNS response. */
export function decodeAnswer(msg: Uint8Array, type: number): DnsAnswer | null {
  if (msg.length < 12 || (msg[2]! & 0x80) === 0) return null;
  const id = (msg[0]! << 8) | msg[1]!;
  const rcode = msg[3]! & 0x0f;
  const qd = (msg[4]! << 8) | msg[5]!;
  const an = (msg[6]! << 8) | msg[7]!;
  let off = 12;
  for (let i = 0; i < qd; i++) {
    off = skipName(msg, off);
    if (off < 0) return null;
    off += 4;
  }
  const addresses: string[] = [];
  for (let i = 0; i < an; i++) {
    off = skipName(msg, off);
    if (off < 0 || off + 10 > msg.length) return null;
    const rtype = (msg[off]! << 8) | msg[off + 1]!;
    const rdlen = (msg[off + 8]! << 8) | msg[off + 9]!;
    off += 10;
    if (off + rdlen > msg.length) return null;
    const rdata = msg.subarray(off, off + rdlen);
    if (rtype === type && type === DNS_TYPE_A && rdlen === 4) addresses.push(rdata.join("."));
    if (rtype === type && type === DNS_TYPE_AAAA && rdlen === 16) {
      const words: string[] = [];
      for (let j = 0; j < 16; j += 2) words.push(((rdata[j]! << 8) | rdata[j + 1]!).toString(16));
      const a = words.join(":");
      if (isIP(a) === 6) addresses.push(a);
    }
    off += rdlen;
  }
  return { id, rcode, addresses };
}
