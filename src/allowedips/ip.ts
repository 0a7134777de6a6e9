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
  if (isIPv4(text)) return { family: 4, bytes: parseV4(text) };
  if (text.includes("%")) throw new IpParseError(`IP address "${text}" has a zone suffix, which is not allowed here`);
  if (isPlainIPv6(text) || isIPv6(text)) return { family: 6, bytes: parseV6(text) };
  throw new IpParseError(`"${text}" is not an IPv4 or IPv6 address`);
}

/**
 * True for the common IPv6 form, hex groups and at most one "::" (no embedded IPv4, no zone),
 * checked by hand: Node's isIPv6 is a large regular expression that costs tens of microseconds
 * per call until V8 has compiled it, which a configuration with thousands of prefixes pays in full
 * (and an emulated machine many times over). Only ever says yes to text isIPv6 accepts; anything
 * else (false) is left to isIPv6.
 */
function isPlainIPv6(text: string): boolean {
  const n = text.length;
  if (n < 2 || n > 39) return false;
  let groups = 0;
  let digits = 0;
  let double = false;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x3a) {
      if (text.charCodeAt(i + 1) === 0x3a) {
        if (double || text.charCodeAt(i + 2) === 0x3a) return false;
        double = true;
        i++;
      } else if (digits === 0 || i === n - 1) {
        return false;
      }
      if (digits > 0) groups++;
      digits = 0;
    } else if ((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46)) {
      if (++digits > 4) return false;
    } else {
      return false;
    }
  }
  if (digits > 0) groups++;
  return double ? groups <= 7 : groups === 8;
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
  const hex = (gs: number[]): string => gs.map((g) => g.toString(16)).join(":");
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}
