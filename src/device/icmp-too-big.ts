/**
 * "Fragmentation needed" / "packet too big" answers to inner packets larger than a peer's path.
 *
 * 1. The TUN loop calls `check` for each packet bound for a peer, with the peer's inner MTU.
 * 2. Too big: IPv4 with DF set gets ICMP type 3 code 4, IPv6 over 1280 bytes gets ICMPv6 type 2;
 *    the answer is written back into the TUN so the sender's own PMTU discovery lowers its
 *    segment size. The packet itself still goes (the kernel fragments the outer datagram), so a
 *    sender that filters ICMP is slowed, not cut off. IPv4 without DF, IPv6 up to 1280 and ICMP errors go on
 *    (the kernel fragments the outer datagram at the source).
 * 3. The answer's source is the packet's destination: Linux drops a packet that arrives with one
 *    of its own addresses (the tunnel's) as source, while the destination routes through the
 *    tunnel and passes reverse-path filtering. Answers are rate-limited by a token bucket.
 */

const PER_SECOND = 100;
const BURST = 20;

/** The Internet checksum (RFC 1071) of the parts read as one byte stream, complemented. */
function onesComplement(parts: Uint8Array[]): number {
  let sum = 0;
  let odd = false;
  for (const p of parts) {
    for (let i = 0; i < p.length; i++) {
      sum += odd ? p[i]! : p[i]! << 8;
      odd = !odd;
    }
  }
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function isIcmpError(pkt: Uint8Array): boolean {
  if (pkt[0]! >> 4 === 4) {
    const ihl = (pkt[0]! & 0x0f) * 4;
    const t = pkt[ihl];
    return pkt[9] === 1 && t !== undefined && [3, 4, 5, 11, 12].includes(t);
  }
  return pkt[6] === 58 && pkt.length > 40 && pkt[40]! < 128;
}

/** The ICMP error telling the sender of `pkt` to use at most `mtu`; null when not answerable. */
export function buildTooBig(pkt: Uint8Array, mtu: number): Uint8Array | null {
  const version = pkt.length > 0 ? pkt[0]! >> 4 : 0;
  if (version === 4 && pkt.length >= 20) {
    const quote = Math.min(pkt.length, 576 - 28);
    const out = new Uint8Array(28 + quote);
    const v = new DataView(out.buffer);
    out[0] = 0x45;
    out[1] = 0xc0;
    v.setUint16(2, out.length);
    out[8] = 64;
    out[9] = 1;
    out.set(pkt.subarray(16, 20), 12);
    out.set(pkt.subarray(12, 16), 16);
    v.setUint16(10, onesComplement([out.subarray(0, 20)]));
    out[20] = 3;
    out[21] = 4;
    v.setUint16(26, Math.min(mtu, 0xffff));
    out.set(pkt.subarray(0, quote), 28);
    v.setUint16(22, onesComplement([out.subarray(20)]));
    return out;
  }
  if (version === 6 && pkt.length >= 40) {
    const quote = Math.min(pkt.length, 1280 - 48);
    const out = new Uint8Array(48 + quote);
    const v = new DataView(out.buffer);
    out[0] = 0x60;
    v.setUint16(4, 8 + quote);
    out[6] = 58;
    out[7] = 64;
    out.set(pkt.subarray(24, 40), 8);
    out.set(pkt.subarray(8, 24), 24);
    out[40] = 2;
    v.setUint32(44, mtu);
    out.set(pkt.subarray(0, quote), 48);
    const pseudo = new Uint8Array(8);
    new DataView(pseudo.buffer).setUint32(0, 8 + quote);
    pseudo[7] = 58;
    v.setUint16(42, onesComplement([out.subarray(8, 40), pseudo, out.subarray(40)]));
    return out;
  }
  return null;
}

export class TooBigResponder {
  /** Answers written, and oversize packets left unanswered because of the rate limit. */
  readonly counters = { sent: 0, limited: 0 };
  private tokens = BURST;
  private last = -1;

  constructor(private readonly now: () => number = () => performance.now()) {}

  /**
   * For a packet bound for a peer whose path carries `innerMtu` bytes (0: unknown): null when it
   * fits or may be fragmented; otherwise the answer to write into the TUN (null when rate-limited).
   */
  check(pkt: Uint8Array, innerMtu: number): { answer: Uint8Array | null } | null {
    if (innerMtu === 0 || pkt.length <= innerMtu || pkt.length < 20) return null;
    const version = pkt[0]! >> 4;
    let advertised = innerMtu;
    if (version === 4) {
      if ((pkt[6]! & 0x40) === 0 || advertised < 68) return null;
    } else if (version === 6) {
      if (pkt.length < 40 || pkt.length <= 1280) return null;
      advertised = Math.max(advertised, 1280);
    } else {
      return null;
    }
    if (isIcmpError(pkt)) return null;
    const t = this.now();
    if (this.last >= 0) this.tokens = Math.min(BURST, this.tokens + ((t - this.last) / 1000) * PER_SECOND);
    this.last = t;
    if (this.tokens < 1) {
      this.counters.limited++;
      return { answer: null };
    }
    this.tokens -= 1;
    this.counters.sent++;
    return { answer: buildTooBig(pkt, advertised) };
  }
}
