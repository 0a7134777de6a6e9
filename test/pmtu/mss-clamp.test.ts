// MSS clamping of TCP SYNs (src/device/mss-clamp.ts and its native twin native/src/mss_clamp.*):
// the option lowered, the checksum still right (recomputed from scratch), everything else untouched.
import { describe, expect, it } from "vitest";
import { clampMss, isTcpSyn, mssLimit, MssClamp } from "../../src/device/mss-clamp.js";
import { loadNative } from "../../src/native/load.js";
import type { NativeHelperFunctions } from "../../src/native/helpers.js";
import { parseConfig } from "../../src/conf/index.js";

const { addon } = loadNative();
const native = (addon?.clampMss !== undefined ? addon : null) as NativeHelperFunctions | null;

function sum(bytes: Uint8Array, start = 0): number {
  let s = start;
  for (let i = 0; i < bytes.length; i += 2) s += (bytes[i]! << 8) | (bytes[i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

/** The ones'-complement sum over the TCP pseudo-header and segment. */
function tcpSum(pkt: Uint8Array): number {
  const v4 = pkt[0]! >> 4 === 4;
  const off = v4 ? (pkt[0]! & 0x0f) * 4 : 40;
  const tcp = pkt.subarray(off);
  const pseudo = new Uint8Array(v4 ? 12 : 40);
  const pv = new DataView(pseudo.buffer);
  if (v4) {
    pseudo.set(pkt.subarray(12, 20), 0);
    pseudo[9] = 6;
    pv.setUint16(10, tcp.length);
  } else {
    pseudo.set(pkt.subarray(8, 40), 0);
    pv.setUint32(32, tcp.length);
    pseudo[39] = 6;
  }
  return sum(tcp, sum(pseudo));
}

/** Whether the stored TCP checksum is right (the whole sums to 0xffff). */
const tcpChecksumOk = (pkt: Uint8Array): boolean => tcpSum(pkt) === 0xffff;

function setChecksum(pkt: Uint8Array): void {
  const off = pkt[0]! >> 4 === 4 ? (pkt[0]! & 0x0f) * 4 : 40;
  pkt[off + 16] = 0;
  pkt[off + 17] = 0;
  const cs = ~tcpSum(pkt) & 0xffff;
  pkt[off + 16] = cs >> 8;
  pkt[off + 17] = cs & 0xff;
}

/** A TCP segment with `options` (padded to 4 bytes) and `payload` bytes of data. */
function segment(version: 4 | 6, flags: number, options: number[], payload = 0): Uint8Array {
  const opts = [...options];
  while (opts.length % 4 !== 0) opts.push(0);
  const ipLen = version === 4 ? 20 : 40;
  const tcpLen = 20 + opts.length;
  const pkt = new Uint8Array(ipLen + tcpLen + payload);
  const v = new DataView(pkt.buffer);
  if (version === 4) {
    pkt[0] = 0x45;
    v.setUint16(2, pkt.length);
    pkt[6] = 0x40;
    pkt[8] = 64;
    pkt[9] = 6;
    pkt.set([10, 81, 0, 1], 12);
    pkt.set([10, 81, 0, 2], 16);
  } else {
    pkt[0] = 0x60;
    v.setUint16(4, pkt.length - 40);
    pkt[6] = 6;
    pkt[7] = 64;
    pkt.set([0xfd, 0x81, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 8);
    pkt.set([0xfd, 0x81, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2], 24);
  }
  const t = ipLen;
  v.setUint16(t, 40000);
  v.setUint16(t + 2, 443);
  v.setUint32(t + 4, 0x12345678);
  pkt[t + 12] = (tcpLen / 4) << 4;
  pkt[t + 13] = flags;
  v.setUint16(t + 14, 64240);
  pkt.set(opts, t + 20);
  for (let i = 0; i < payload; i++) pkt[t + tcpLen + i] = (i * 7) & 0xff;
  setChecksum(pkt);
  return pkt;
}

const SYN = 0x02;
const SYN_ACK = 0x12;
const ACK = 0x10;
const mss = (value: number): number[] => [2, 4, value >> 8, value & 0xff];
// Linux's SYN options: MSS, SACK permitted, timestamps, NOP, window scale.
const linuxOptions = (value: number): number[] => [...mss(value), 4, 2, 8, 10, 1, 2, 3, 4, 0, 0, 0, 0, 1, 3, 3, 7];

function mssOf(pkt: Uint8Array): number | null {
  const off = pkt[0]! >> 4 === 4 ? 20 : 40;
  const doff = (pkt[off + 12]! >> 4) * 4;
  for (let i = off + 20; i < off + doff; ) {
    const kind = pkt[i]!;
    if (kind === 0) return null;
    if (kind === 1) {
      i++;
      continue;
    }
    if (kind === 2) return (pkt[i + 2]! << 8) | pkt[i + 3]!;
    i += pkt[i + 1]!;
  }
  return null;
}

const implementations: [string, ((p: Uint8Array, m: number) => boolean) | null][] = [
  ["TypeScript", clampMss],
  ["native", native === null ? null : (p, m) => native.clampMss(p, m)],
];

describe.each(implementations)("clampMss (%s)", (_name, clamp) => {
  it.skipIf(clamp === null).each([4, 6] as const)("lowers the MSS of a SYN and a SYN-ACK over IPv%i, checksum kept right", (version) => {
    for (const flags of [SYN, SYN_ACK]) {
      const p = segment(version, flags, linuxOptions(version === 4 ? 1460 : 1440));
      expect(tcpChecksumOk(p)).toBe(true);
      expect(clamp!(p, 1160)).toBe(true);
      expect(mssOf(p)).toBe(1160);
      expect(tcpChecksumOk(p)).toBe(true);
    }
  });

  it.skipIf(clamp === null)("handles an MSS option at an odd offset (after a NOP)", () => {
    for (const value of [1460, 0xffff, 1201]) {
      for (const limit of [1200, 536, 1]) {
        const p = segment(4, SYN, [1, ...mss(value), 1, 1, 1]);
        expect(clamp!(p, limit)).toBe(true);
        expect(mssOf(p)).toBe(limit);
        expect(tcpChecksumOk(p)).toBe(true);
      }
    }
  });

  it.skipIf(clamp === null)("never raises an MSS and leaves everything else alone", () => {
    const cases: [Uint8Array, number][] = [
      [segment(4, SYN, mss(1000)), 1200], // already lower
      [segment(4, SYN, mss(1200)), 1200], // equal
      [segment(4, ACK, mss(1460), 100), 1200], // not a SYN
      [segment(6, SYN, [4, 2, 1, 1]), 1200], // no MSS option
      [segment(4, SYN, [8, 1, ...mss(1460)]), 1200], // option length too small: malformed
      [segment(4, SYN, [8, 40, ...mss(1460)]), 1200], // option running past the header
      [segment(4, SYN, [0, ...mss(1460)]), 1200], // behind the end-of-options
      [segment(4, SYN, mss(1460)), 0], // no limit
    ];
    for (const [p, limit] of cases) {
      const before = Uint8Array.from(p);
      expect(clamp!(p, limit)).toBe(false);
      expect(p).toEqual(before);
    }
    // Not TCP, a later IPv4 fragment, an IPv6 extension header, truncated, garbage.
    const udp = segment(4, SYN, mss(1460));
    udp[9] = 17;
    const fragment = segment(4, SYN, mss(1460));
    fragment[7] = 10;
    const ext = segment(6, SYN, mss(1460));
    ext[6] = 0;
    const truncated = segment(4, SYN, linuxOptions(1460)).subarray(0, 44);
    for (const p of [udp, fragment, ext, truncated, new Uint8Array(0), new Uint8Array(19), Uint8Array.from([0x4f, 0, 0, 0])]) {
      const before = Uint8Array.from(p);
      expect(clamp!(p, 1200)).toBe(false);
      expect(p).toEqual(before);
    }
  });

  it.skipIf(clamp === null)("agrees with the checksum from scratch on random SYNs", () => {
    let seed = 12345;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let k = 0; k < 500; k++) {
      const nops = Array.from({ length: rnd(4) }, () => 1);
      const value = 600 + rnd(65000);
      const p = segment(rnd(2) === 0 ? 4 : 6, SYN | (rnd(2) === 0 ? ACK : 0), [...nops, ...mss(value)], rnd(3));
      for (let i = 4; i < 8; i++) p[20 + i] = rnd(256);
      setChecksum(p);
      const limit = 536 + rnd(1000);
      expect(clamp!(p, limit)).toBe(value > limit);
      expect(mssOf(p)).toBe(Math.min(value, limit));
      expect(tcpChecksumOk(p)).toBe(true);
    }
  });
});

describe("MSS limits", () => {
  it("auto follows the peer's inner MTU, the tunnel's while unknown; a number is a fixed MSS", () => {
    expect(mssLimit("auto", 4, 1200, 1420)).toBe(1160);
    expect(mssLimit("auto", 6, 1200, 1420)).toBe(1140);
    expect(mssLimit("auto", 4, 0, 1420)).toBe(1380);
    expect(mssLimit("auto", 4, 0, 0)).toBe(0);
    expect(mssLimit(1300, 6, 1200, 1420)).toBe(1300);
    expect(mssLimit("off", 4, 1200, 1420)).toBe(0);
  });

  it("MssClamp counts what it lowered and does nothing when off", () => {
    const on = new MssClamp("auto");
    const off = new MssClamp("off");
    const a = segment(4, SYN, mss(1460));
    const b = Uint8Array.from(a);
    on.apply(a, () => 1200, 1420);
    off.apply(b, () => 1200, 1420);
    expect(mssOf(a)).toBe(1160);
    expect(mssOf(b)).toBe(1460);
    expect(on.counters.clamped).toBe(1);
    expect(isTcpSyn(a)).toBe(true);
  });
});

describe("MSSClamp in [Interface]", () => {
  const base = "[Interface]\nPrivateKey = yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=\n";
  it("reads off, auto and an MSS", () => {
    expect(parseConfig(`${base}MSSClamp = auto\n`, "t.conf").interface.mssClamp).toBe("auto");
    expect(parseConfig(`${base}mssclamp = OFF\n`, "t.conf").interface.mssClamp).toBe("off");
    expect(parseConfig(`${base}MSSClamp = 1360\n`, "t.conf").interface.mssClamp).toBe(1360);
    expect(parseConfig(base, "t.conf").interface.mssClamp).toBeUndefined();
  });
  it("refuses anything else with the key named", () => {
    for (const bad of ["yes", "100", "65496", "-1", "1360x"]) {
      expect(() => parseConfig(`${base}MSSClamp = ${bad}\n`, "t.conf")).toThrow(/MSSClamp.*neither off, auto nor an MSS/su);
    }
  });
});
