/**
 * TCP MSS clamping (`MSSClamp` in [Interface]) for hosts that never hear ICMP "too big".
 *
 * 1. The device calls `apply` for packets leaving through the tunnel (TUN loop) and arriving
 *    from it (delivery), with the inner MTU of the peer's path: a SYN's MSS option says what
 *    its sender can receive, so clamping both directions lowers both senders' segment sizes.
 * 2. Only a TCP header right behind the IP header is looked at (IPv4 unfragmented, IPv6
 *    without extension headers); the MSS is only ever lowered.
 * 3. The TCP checksum is patched incrementally (RFC 1624) over the 16-bit words the option
 *    value touches, so an option at an odd offset is handled too.
 * The native plane does the same in native/src/mss_clamp.*.
 */

/** Off, from the peer's path MTU, or a fixed largest MSS. */
export type MssClampSetting = "off" | "auto" | number;

const PROTO_TCP = 6;
const TCP_SYN = 0x02;

/** Offset of a whole TCP header carried directly in `pkt`, else 0. */
function tcpOffset(pkt: Uint8Array): number {
  if (pkt.length < 20) return 0;
  const version = pkt[0]! >> 4;
  let off: number;
  if (version === 4) {
    off = (pkt[0]! & 0x0f) * 4;
    if (off < 20 || pkt[9] !== PROTO_TCP || (((pkt[6]! << 8) | pkt[7]!) & 0x1fff) !== 0) return 0;
  } else if (version === 6) {
    off = 40;
    if (pkt[6] !== PROTO_TCP) return 0;
  } else {
    return 0;
  }
  if (pkt.length < off + 20) return 0;
  const doff = (pkt[off + 12]! >> 4) * 4;
  return doff < 20 || pkt.length < off + doff ? 0 : off;
}

/** Whether `pkt` is a TCP segment with SYN set. */
export function isTcpSyn(pkt: Uint8Array): boolean {
  const off = tcpOffset(pkt);
  return off !== 0 && (pkt[off + 13]! & TCP_SYN) !== 0;
}

/**
 * The largest MSS for a SYN of IP `version` under `setting` when the peer's path carries inner
 * packets of up to `innerMtu` bytes (0: unknown, then `fallbackMtu`, the tunnel's); 0: leave it.
 */
export function mssLimit(setting: MssClampSetting, version: number, innerMtu: number, fallbackMtu: number): number {
  if (typeof setting === "number") return setting;
  if (setting !== "auto") return 0;
  const mtu = innerMtu !== 0 ? innerMtu : fallbackMtu;
  const headers = version === 4 ? 40 : 60; // IP + TCP without options
  return mtu > headers ? mtu - headers : 0;
}

/** RFC 1624, eqn. 3, for one 16-bit word: HC' = ~(~HC + ~m + m'). */
function patchChecksum(hc: number, oldWord: number, newWord: number): number {
  let sum = (~hc & 0xffff) + (~oldWord & 0xffff) + newWord;
  sum = (sum & 0xffff) + (sum >>> 16);
  sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** Lowers the MSS option of a TCP SYN in `pkt` (in place) to `maxMss`; true when it changed. */
export function clampMss(pkt: Uint8Array, maxMss: number): boolean {
  if (maxMss <= 0 || maxMss > 0xffff) return false;
  const off = tcpOffset(pkt);
  if (off === 0 || (pkt[off + 13]! & TCP_SYN) === 0) return false;
  const tcp = pkt.subarray(off);
  const v = new DataView(tcp.buffer, tcp.byteOffset, tcp.byteLength);
  const doff = (tcp[12]! >> 4) * 4;
  let i = 20;
  while (i < doff) {
    const kind = tcp[i]!;
    if (kind === 0) break;
    if (kind === 1) {
      i++;
      continue;
    }
    if (i + 1 >= doff) break;
    const len = tcp[i + 1]!;
    if (len < 2 || i + len > doff) break; // malformed: leave the segment alone
    if (kind === 2 && len === 4) {
      const at = i + 2;
      if (v.getUint16(at) <= maxMss) return false;
      // The 16-bit words of the header the value bytes fall into (two when `at` is odd).
      const first = at & ~1;
      const words = at === first ? 1 : 2;
      const before = [v.getUint16(first), words === 2 ? v.getUint16(first + 2) : 0];
      v.setUint16(at, maxMss);
      let hc = v.getUint16(16);
      for (let w = 0; w < words; w++) hc = patchChecksum(hc, before[w]!, v.getUint16(first + 2 * w));
      v.setUint16(16, hc);
      return true;
    }
    i += len;
  }
  return false;
}

/** The setting as the native data path takes it: 0 off, -1 auto, else the MSS. */
export function nativeMssClamp(setting: MssClampSetting): number {
  return setting === "off" ? 0 : setting === "auto" ? -1 : setting;
}

export class MssClamp {
  /** SYNs whose MSS was lowered (portable plane and packets JavaScript handles). */
  readonly counters = { clamped: 0 };

  constructor(readonly setting: MssClampSetting) {}

  /**
   * Clamps `pkt` in place when it is a SYN over what the peer's path carries (`innerMtu`, asked
   * only for a SYN, so that other packets cost one comparison).
   */
  apply(pkt: Uint8Array, innerMtu: number | (() => number), tunnelMtu: number): void {
    if (this.setting === "off" || !isTcpSyn(pkt)) return;
    const inner = typeof innerMtu === "number" ? innerMtu : innerMtu();
    if (clampMss(pkt, mssLimit(this.setting, pkt[0]! >> 4, inner, tunnelMtu))) this.counters.clamped++;
  }
}
