/**
 * IP address text <-> bytes.
 *
 * Validation is left to node:net (`isIPv4`/`isIPv6`) so that what counts as an address here is
 * exactly what Node's sockets accept; the conversion to bytes and the canonical text form
 * (RFC 5952 for IPv6) are done here because Node offers neither.
 */
import { isIPv4, isIPv6 } from "node:net";

export type IpFamily = 4 | 6;

export interface IpAddress {
  family: IpFamily;
  /** 4 bytes for IPv4, 16 for IPv6, network order. */
  bytes: Uint8Array;
}

/** Thrown for malformed address or prefix text; the message names the offending input. */
export class IpParseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "IpParseError";
  }
}

/**
 * Parses an IPv4 or IPv6 literal. Zone suffixes ("%eth0") and hostnames are rejected; an
 * IPv4-mapped IPv6 address ("::ffff:1.2.3.4") stays IPv6 (callers that want it unmapped use
 * {@link unmapIPv4}).
 */
export function parseIp(text: string): IpAddress {
  if (typeof text !== "string") throw new IpParseError(`IP address must be a string, got ${typeof text}`);
  const quad = parseDottedQuad(text);
  if (quad !== null) return { family: 4, bytes: quad };
  const plain = parsePlainV6(text);
  if (plain !== null) return { family: 6, bytes: plain };
  if (isIPv4(text)) return { family: 4, bytes: parseV4(text) };
  if (text.includes("%")) throw new IpParseError(`IP address "${text}" has a zone suffix, which is not allowed here`);
  if (isIPv6(text)) return { family: 6, bytes: parseV6(text) };
  throw new IpParseError(`"${text}" is not an IPv4 or IPv6 address`);
}

// The two hand-written readers below cover the common forms in one pass over the text. Node's
// isIPv4/isIPv6 are regular expressions (isIPv6's is large) that cost tens of microseconds per
// call until V8 has compiled them, which a configuration with thousands of prefixes pays in full
// (an emulated machine many times over). Each reader accepts only text the matching Node check
// accepts and returns null for anything else, which then goes to Node's check as before.

/** "a.b.c.d", each 0-255 without leading zeros (isIPv4's grammar), or null. */
function parseDottedQuad(text: string): Uint8Array | null {
  const n = text.length;
  if (n < 7 || n > 15) return null;
  const out = new Uint8Array(4);
  let part = 0;
  let v = 0;
  let digits = 0;
  for (let i = 0; i <= n; i++) {
    const c = i < n ? text.charCodeAt(i) : 0x2e;
    if (c === 0x2e) {
      if (digits === 0 || v > 255 || part > 3) return null;
      out[part++] = v;
      v = 0;
      digits = 0;
    } else if (c >= 0x30 && c <= 0x39) {
      if ((digits > 0 && v === 0) || ++digits > 3) return null; // a leading zero, or too long
      v = v * 10 + (c - 0x30);
    } else {
      return null;
    }
  }
  return part === 4 ? out : null;
}

/** IPv6 as hex groups with at most one "::" (no embedded IPv4, no zone), or null. */
function parsePlainV6(text: string): Uint8Array | null {
  const n = text.length;
  if (n < 2 || n > 39) return null;
  const groups: number[] = [];
  let gap = -1;
  let v = 0;
  let digits = 0;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x3a) {
      const empty = digits === 0;
      if (!empty) groups.push(v);
      v = 0;
      digits = 0;
      if (text.charCodeAt(i + 1) === 0x3a) {
        if (gap >= 0 || text.charCodeAt(i + 2) === 0x3a) return null;
        gap = groups.length;
        i++;
      } else if (empty || i === n - 1) {
        return null;
      }
      continue;
    }
    const h = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : c >= 0x41 && c <= 0x46 ? c - 0x37 : -1;
    if (h < 0 || ++digits > 4) return null;
    v = v * 16 + h;
  }
  if (digits > 0) groups.push(v);
  if (gap < 0 ? groups.length !== 8 : groups.length > 7) return null;
  const out = new Uint8Array(16);
  const head = gap < 0 ? 8 : gap;
  for (let k = 0; k < groups.length; k++) {
    const at = k < head ? k : 8 - (groups.length - k);
    out[2 * at] = groups[k]! >>> 8;
    out[2 * at + 1] = groups[k]! & 0xff;
  }
  return out;
}

function parseV4(text: string): Uint8Array {
  const parts = text.split(".");
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) out[i] = Number(parts[i]);
  return out;
}

/** Expects text already accepted by isIPv6 and without a zone. */
function parseV6(text: string): Uint8Array {
  const out = new Uint8Array(16);
  const halves = text.split("::");
  const head = halves[0] === "" ? [] : halves[0]!.split(":");
  const tail = halves.length > 1 ? (halves[1] === "" ? [] : halves[1]!.split(":")) : [];
  const words = (groups: string[]): number[] => {
    const res: number[] = [];
    for (const g of groups) {
      if (g.includes(".")) {
        const v4 = parseV4(g);
        res.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        res.push(parseInt(g, 16));
      }
    }
    return res;
  };
  const hw = words(head);
  const tw = words(tail);
  const all = hw.concat(new Array<number>(8 - hw.length - tw.length).fill(0), tw);
  for (let i = 0; i < 8; i++) {
    out[2 * i] = all[i]! >>> 8;
    out[2 * i + 1] = all[i]! & 0xff;
  }
  return out;
}

/** True for ::ffff:0:0/96, the IPv4-mapped IPv6 range. */
export function isMappedIPv4(bytes: Uint8Array): boolean {
  if (bytes.length !== 16) return false;
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return false;
  return bytes[10] === 0xff && bytes[11] === 0xff;
}

/** Turns "::ffff:a.b.c.d" into the plain IPv4 address; other addresses are returned as they are. */
export function unmapIPv4(addr: IpAddress): IpAddress {
  if (addr.family === 6 && isMappedIPv4(addr.bytes)) return { family: 4, bytes: addr.bytes.slice(12, 16) };
  return addr;
}

/**
 * Canonical text of 4 or 16 address bytes: dotted quad, or RFC 5952 IPv6 (lower case, the
 * longest run of two or more zero groups shortened to "::", IPv4-mapped in mixed notation).
 */
export function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  if (bytes.length !== 16) throw new IpParseError(`an IP address has 4 or 16 bytes, not ${bytes.length}`);
  if (isMappedIPv4(bytes)) return `::ffff:${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push((bytes[2 * i]! << 8) | bytes[2 * i + 1]!);
  let bestStart = -1;
  let bestLen = 1; // a single zero group is not shortened (RFC 5952 section 4.2.2)
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  // Built by hand rather than with slice/map/join: dumps of large interfaces format thousands.
  let text = "";
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) {
      text += "::";
      i += bestLen - 1;
      continue;
    }
    if (text !== "" && !text.endsWith(":")) text += ":";
    text += groups[i]!.toString(16);
  }
  return text;
}
