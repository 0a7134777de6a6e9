// The virtio-net offload helpers of the native addon: splitting the kernel's GSO super-packets
// (TUN reads) and joining TCP segments (TUN writes), checked against checksums computed here.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { loadNative } from "../../src/native/load.js";
import type { NativeHelperFunctions } from "../../src/native/helpers.js";
import { bytes, checksumsValid, parseVnetHeader, superPacket, tcpFields, tcpPacket, udpPacket, vnetHeader } from "./support/packets.js";

const { addon, reason } = loadNative();
const helpers = (addon?.vnetSplit !== undefined ? addon : null) as NativeHelperFunctions | null;
const title = helpers === null ? `virtio-net offloads (skipped: ${reason ?? "not on this platform"})` : "virtio-net offloads";

const concat = (parts: Uint8Array[]): Uint8Array => Uint8Array.from(parts.flatMap((p) => [...p]));

describe.skipIf(helpers === null)(title, () => {
  const h = helpers!;

  describe("splitting GSO super-packets", () => {
    it.each([false, true])("cuts a TCP super-packet into MSS segments with fixed-up headers (IPv6: %s)", (v6) => {
      const payload = bytes(10_000, 7);
      const { header, packet } = superPacket({ v6, seq: 0xfffff000, payload, mss: 1380, flags: 0x18, id: 100, options: [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2] });
      const segs = h.vnetSplit(header, packet)!;
      expect(segs).toHaveLength(Math.ceil(10_000 / 1380));
      let seq = 0xfffff000;
      segs.forEach((s, i) => {
        const f = tcpFields(s);
        expect(checksumsValid(s)).toBe(true);
        expect(f.totalLength).toBe(s.length);
        expect(f.seq).toBe(seq >>> 0);
        seq += f.payload.length;
        // PSH only on the last segment; ACK everywhere.
        expect(f.flags).toBe(i === segs.length - 1 ? 0x18 : 0x10);
        if (!v6) expect(f.id).toBe(100 + i);
        expect(f.payload.length).toBe(i === segs.length - 1 ? 10_000 - 1380 * (segs.length - 1) : 1380);
      });
      expect(concat(segs.map((s) => tcpFields(s).payload))).toEqual(payload);
    });

    it("splits a UDP (USO) super-packet into datagrams with their own lengths and checksums", () => {
      const payload = bytes(3000, 3);
      const full = udpPacket(payload);
      const header = vnetHeader({ flags: 1, gsoType: 5, hdrLen: 28, gsoSize: 1200, csumStart: 20, csumOffset: 6 });
      const segs = h.vnetSplit(header, full)!;
      expect(segs.map((s) => s.length)).toEqual([1228, 1228, 628]);
      for (const s of segs) {
        expect(checksumsValid(s)).toBe(true);
        expect((s[24]! << 8) | s[25]!).toBe(s.length - 20);
      }
      expect(concat(segs.map((s) => s.subarray(28)))).toEqual(payload);
    });

    it("completes a checksum the kernel left partial, and passes plain packets through unchanged", () => {
      const pkt = tcpPacket({ seq: 5, payload: bytes(333) });
      const partial = pkt.slice();
      // Replace the checksum with the pseudo-header sum only, as with CHECKSUM_PARTIAL.
      const sum = [12, 14, 16, 18].reduce((s, o) => s + ((partial[o]! << 8) | partial[o + 1]!), 6 + (pkt.length - 20));
      const folded = (sum & 0xffff) + (sum >>> 16);
      partial[36] = folded >> 8;
      partial[37] = folded & 0xff;
      expect(h.vnetSplit(vnetHeader({ flags: 1, csumStart: 20, csumOffset: 16 }), partial)).toEqual([pkt]);
      expect(h.vnetSplit(vnetHeader({}), pkt)).toEqual([pkt]);
    });

    it("refuses nonsense without crashing", () => {
      expect(h.vnetSplit(vnetHeader({ gsoType: 1, gsoSize: 0, csumStart: 20 }), tcpPacket({ seq: 1, payload: bytes(100) }))).toBeNull();
      expect(h.vnetSplit(vnetHeader({ gsoType: 9, gsoSize: 100, csumStart: 20 }), tcpPacket({ seq: 1, payload: bytes(100) }))).toBeNull();
      expect(h.vnetSplit(vnetHeader({ flags: 1, csumStart: 500, csumOffset: 16 }), tcpPacket({ seq: 1, payload: bytes(10) }))).toBeNull();
      expect(h.vnetSplit(vnetHeader({}), new Uint8Array([0x45]))).toBeNull();
      expect(() => h.vnetSplit(new Uint8Array(3), new Uint8Array(40))).toThrow(TypeError);
      fc.assert(
        fc.property(fc.uint8Array({ minLength: 10, maxLength: 10 }), fc.uint8Array({ maxLength: 300 }), (hdr, pkt) => {
          const r = h.vnetSplit(hdr, pkt);
          expect(r === null || Array.isArray(r)).toBe(true);
        }),
        { numRuns: 2000 },
      );
    });
  });

  describe("joining TCP segments for one write", () => {
    const segments = (n: number, opts: { v6?: boolean; seq?: number; mss?: number; last?: number; sport?: number } = {}): Uint8Array[] => {
      const mss = opts.mss ?? 1380;
      let seq = opts.seq ?? 1000;
      return Array.from({ length: n }, (_, i) => {
        const len = i === n - 1 && opts.last !== undefined ? opts.last : mss;
        const p = tcpPacket({ v6: opts.v6, seq, sport: opts.sport, payload: bytes(len, 11 + i), id: 50 + i });
        seq += len;
        return p;
      });
    };

    it.each([false, true])("joins consecutive segments of a flow into one GSO packet that splits back (IPv6: %s)", (v6) => {
      const segs = segments(10, { v6, last: 500 });
      const units = h.tunCoalesce(segs);
      expect(units).toHaveLength(1);
      const u = units[0]!;
      expect(u.segments).toBe(10);
      const hdr = parseVnetHeader(u.header);
      expect(hdr).toMatchObject({ flags: 1, gsoType: v6 ? 4 : 1, gsoSize: 1380, csumStart: v6 ? 40 : 20, csumOffset: 16, hdrLen: (v6 ? 40 : 20) + 20 });
      expect(tcpFields(u.packet).totalLength).toBe(u.packet.length);
      // What the kernel would do with it gives back the very segments (IDs aside).
      const back = h.vnetSplit(u.header, u.packet)!;
      expect(back.map((p) => tcpFields(p).payload)).toEqual(segs.map((p) => tcpFields(p).payload));
      expect(back.map((p) => tcpFields(p).seq)).toEqual(segs.map((p) => tcpFields(p).seq));
      for (const p of back) expect(checksumsValid(p)).toBe(true);
    });

    it("keeps gaps, short segments, other flows and other protocols apart, in order", () => {
      const a = segments(3, { seq: 0 });
      const gap = segments(2, { seq: 100_000 });
      const shortThenMore = [...segments(2, { seq: 200_000, last: 100 }), ...segments(1, { seq: 200_000 + 1380 + 100 })];
      const other = segments(2, { sport: 41000 });
      const udp = udpPacket(bytes(50));
      const units = h.tunCoalesce([...a, ...gap, udp, ...shortThenMore, ...other]);
      expect(units.map((u) => u.segments)).toEqual([3, 2, 1, 2, 1, 2]);
      // Single packets go out unchanged, marked as already verified.
      expect(units[2]!.packet).toEqual(udp);
      expect(parseVnetHeader(units[2]!.header)).toMatchObject({ flags: 2, gsoType: 0 });
    });

    it("does not join segments with SYN/FIN/RST, or differing options, and ends a group at PSH", () => {
      const syn = tcpPacket({ seq: 0, flags: 0x02, payload: new Uint8Array(0) });
      const fin = tcpPacket({ seq: 1380 * 2, flags: 0x11, payload: bytes(10) });
      const [s1, s2] = segments(2, { seq: 0 });
      expect(h.tunCoalesce([syn, s1!, s2!, fin]).map((u) => u.segments)).toEqual([1, 2, 1]);
      const o1 = tcpPacket({ seq: 0, payload: bytes(1380), options: [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2] });
      const o2 = tcpPacket({ seq: 1380, payload: bytes(1380), options: [1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 2] });
      expect(h.tunCoalesce([o1, o2]).map((u) => u.segments)).toEqual([1, 1]);
      const p1 = tcpPacket({ seq: 0, flags: 0x18, payload: bytes(1380) });
      const p2 = tcpPacket({ seq: 1380, payload: bytes(1380) });
      expect(h.tunCoalesce([p1, p2]).map((u) => u.segments)).toEqual([1, 1]);
    });

    it.each([false, true])("joins equal-sized UDP datagrams of a flow into one USO packet (IPv6: %s)", (v6) => {
      const datagrams = [...[1, 2, 3, 4].map((i) => udpPacket(bytes(1200, i), v6)), udpPacket(bytes(300, 9), v6)];
      const units = h.tunCoalesce(datagrams);
      expect(units).toHaveLength(1);
      const hdr = parseVnetHeader(units[0]!.header);
      const ihl = v6 ? 40 : 20;
      expect(hdr).toMatchObject({ flags: 1, gsoType: 5, gsoSize: 1200, csumStart: ihl, csumOffset: 6, hdrLen: ihl + 8 });
      expect(units[0]!.segments).toBe(5);
      // Split back as the kernel would: the same datagrams (IPv4 IDs aside), valid checksums.
      const back = h.vnetSplit(units[0]!.header, units[0]!.packet)!;
      expect(back.map((p) => p.subarray(ihl))).toEqual(datagrams.map((p) => p.subarray(ihl)));
      for (const p of back) expect(checksumsValid(p)).toBe(true);
      // A longer datagram after a shorter one starts afresh; so does one of another size.
      const mixed = h.tunCoalesce([udpPacket(bytes(500), v6), udpPacket(bytes(900), v6), udpPacket(bytes(900), v6)]);
      expect(mixed.map((u) => u.segments)).toEqual([1, 2]);
    });

    it("never loses, duplicates or reorders a flow's bytes, whatever the mix", () => {
      const flowSegment = fc.record({
        flow: fc.integer({ min: 0, max: 2 }),
        len: fc.oneof(fc.constant(1000), fc.integer({ min: 1, max: 1000 })),
        skip: fc.boolean(),
        psh: fc.boolean(),
      });
      fc.assert(
        fc.property(fc.array(flowSegment, { minLength: 1, maxLength: 60 }), (items) => {
          const seqs = [1, 1, 1];
          const packets = items.map((it, i) => {
            if (it.skip) seqs[it.flow]! += 7;
            const p = tcpPacket({ seq: seqs[it.flow]!, sport: 30000 + it.flow, flags: it.psh ? 0x18 : 0x10, payload: bytes(it.len, i + 1) });
            seqs[it.flow]! += it.len;
            return p;
          });
          const units = h.tunCoalesce(packets);
          expect(units.reduce((s, u) => s + u.segments, 0)).toBe(packets.length);
          const outPerFlow = new Map<number, string[]>();
          for (const u of units) {
            const parts = u.segments > 1 ? h.vnetSplit(u.header, u.packet)! : [u.packet];
            for (const p of parts) {
              const sport = (p[20]! << 8) | p[21]!;
              const list = outPerFlow.get(sport) ?? [];
              list.push(`${tcpFields(p).seq}:${Buffer.from(tcpFields(p).payload).toString("hex")}`);
              outPerFlow.set(sport, list);
            }
          }
          for (let f = 0; f < 3; f++) {
            const expected = packets
              .filter((p) => ((p[20]! << 8) | p[21]!) === 30000 + f)
              .map((p) => `${tcpFields(p).seq}:${Buffer.from(tcpFields(p).payload).toString("hex")}`);
            expect(outPerFlow.get(30000 + f) ?? []).toEqual(expected);
          }
        }),
        { numRuns: 300 },
      );
    });
  });
});
