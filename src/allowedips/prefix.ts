/**
 * CIDR prefixes ("10.0.0.0/8", "fd00::/64") as bytes plus a length.
 */
import { formatIp, IpParseError, parseIp, type IpFamily } from "./ip.js";

export interface Prefix {
  family: IpFamily;
  /** 4 or 16 bytes; host bits are kept as written (see {@link maskPrefix}). */
  bytes: Uint8Array;
  /** Prefix length: 0..32 for IPv4, 0..128 for IPv6. */
  bits: number;
}

/** A prefix given either as text or as raw address bytes and a length. */
export type PrefixInput = string | { bytes: Uint8Array; bits: number };

/**
 * Parses "address/bits". A bare address means a host route (/32 or /128), as `wg` accepts.
 * Host bits are kept, since interface addresses ("10.0.0.1/24") need them; mask with
 * {@link maskPrefix} for routing.
 */
export function parseCidr(text: string): Prefix {
  if (typeof text !== "string") throw new IpParseError(`CIDR prefix must be a string, got ${typeof text}`);
  const trimmed = text.trim();
  const slash = trimmed.indexOf("/");
  const addrText = slash < 0 ? trimmed : trimmed.slice(0, slash);
  if (addrText === "") throw new IpParseError(`CIDR prefix "${text}" has no address`);
  let addr;
  try {
    addr = parseIp(addrText);
  } catch (e) {
    throw new IpParseError(`CIDR prefix "${text}": ${(e as Error).message}`);
  }
  const max = addr.family === 4 ? 32 : 128;
  if (slash < 0) return { family: addr.family, bytes: addr.bytes, bits: max };
  const bitsText = trimmed.slice(slash + 1);
  // Digits only, without leading zeros, so "/08" or "/1e1" cannot mean something surprising.
  if (!/^(0|[1-9][0-9]{0,2})$/.test(bitsText)) {
    throw new IpParseError(`CIDR prefix "${text}": prefix length "${bitsText}" is not a number from 0 to ${max}`);
  }
  const bits = Number(bitsText);
  if (bits > max) throw new IpParseError(`CIDR prefix "${text}": prefix length ${bits} exceeds ${max} for IPv${addr.family}`);
  return { family: addr.family, bytes: addr.bytes, bits };
}

/** Validates and converts either input form to a {@link Prefix} (bytes copied). */
export function toPrefix(input: PrefixInput): Prefix {
  if (typeof input === "string") return parseCidr(input);
  if (input === null || typeof input !== "object" || !(input.bytes instanceof Uint8Array)) {
    throw new IpParseError("prefix must be CIDR text or {bytes: Uint8Array, bits: number}");
  }
  const len = input.bytes.length;
  if (len !== 4 && len !== 16) throw new IpParseError(`prefix address must have 4 or 16 bytes, not ${len}`);
  const max = len * 8;
  if (!Number.isInteger(input.bits) || input.bits < 0 || input.bits > max) {
    throw new IpParseError(`prefix length ${String(input.bits)} is not an integer from 0 to ${max}`);
  }
  return { family: len === 4 ? 4 : 6, bytes: input.bytes.slice(), bits: input.bits };
}

/** A copy with every bit after the prefix length cleared. */
export function maskPrefix(p: Prefix): Prefix {
  const bytes = p.bytes.slice();
  for (let i = 0; i < bytes.length; i++) {
    const keep = p.bits - i * 8;
    if (keep >= 8) continue;
    bytes[i] = keep <= 0 ? 0 : bytes[i]! & (0xff << (8 - keep));
  }
  return { family: p.family, bytes, bits: p.bits };
}

/** "address/bits" exactly as given (no masking). */
export function formatCidr(p: Prefix): string {
  return `${formatIp(p.bytes)}/${p.bits}`;
}

/** Canonical form of a prefix text: host bits cleared, address in canonical notation. */
export function normalizeCidr(text: string): string {
  return formatCidr(maskPrefix(parseCidr(text)));
}
