import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { normalizeCidr } from "../../src/allowedips/index.js";
import { NlAttrs, NlWriter, decodeMessages } from "../../src/kernel/netlink.js";
import { parseDeviceDump, setDeviceMessages } from "../../src/kernel/wireguard-genl.js";
import { parseSet, formatSet } from "../../src/uapi/protocol.js";
import type { UapiPeerChange, UapiSetRequest } from "../../src/uapi/types.js";
import { genlCases, key } from "./genl-cases.js";

const FAMILY = 0x1a;
const BUDGET = 16 * 1024;

function peer(i: number, ips: string[]): UapiPeerChange {
  return { publicKey: randomBytes(32), remove: false, updateOnly: false, endpoint: `192.0.2.${1 + (i % 250)}:${10000 + i}`, persistentKeepalive: 25, replaceAllowedIps: true, allowedIps: ips, removeAllowedIps: [] };
}

/** The attributes of each SET message as the kernel sees them (after the netlink and generic netlink headers), headers checked on the way. */
function wire(messages: Buffer[]): Buffer[] {
  return messages.map((m) => {
    const [d, extra] = decodeMessages(m);
    expect(extra).toBeUndefined();
    expect(d).toMatchObject({ type: FAMILY, flags: 0 });
    expect([...d!.payload.subarray(0, 4)]).toEqual([1, 1, 0, 0]); // WG_CMD_SET_DEVICE, version 1
    expect(m.readUInt32LE(0)).toBe(m.length);
    return d!.payload.subarray(4);
  });
}

/** A reference reader for the tests, written apart from the library's: [type, nested flag, value]. */
type Tlv = { type: number; nested: boolean; value: Buffer };
function tlvs(buf: Buffer): Tlv[] {
  const out: Tlv[] = [];
  let off = 0;
  while (off < buf.length) {
    const len = buf.readUInt16LE(off);
    const t = buf.readUInt16LE(off + 2);
    if (len < 4 || off + len > buf.length) throw new Error(`bad attribute at ${off}`);
    for (let p = off + len; p < ((off + len + 3) & ~3); p++) if (buf[p] !== 0) throw new Error(`non-zero padding at ${p}`);
    out.push({ type: t & 0x3fff, nested: (t & 0x8000) !== 0, value: buf.subarray(off + 4, off + len) });
    off = (off + len + 3) & ~3;
  }
  if (off !== buf.length) throw new Error("trailing bytes");
  return out;
}
const one = (a: Tlv[], type: number): Tlv | undefined => {
  const found = a.filter((x) => x.type === type);
  if (found.length > 1) throw new Error(`attribute ${type} twice`);
  return found[0];
};

/** What one peer entry of a SET message says, read with the reference reader. */
function readPeer(entry: Tlv) {
  expect(entry.nested).toBe(true);
  const a = tlvs(entry.value);
  const order = [1, 2, 4, 5, 3, 9]; // key, psk, endpoint, keepalive, flags, allowed IPs
  expect(a.map((x) => x.type)).toEqual(order.filter((t) => a.some((x) => x.type === t)));
  const ep = one(a, 4)?.value;
  let endpoint: string | undefined;
  if (ep !== undefined && ep.readUInt16LE(0) === 2) endpoint = `${[...ep.subarray(4, 8)].join(".")}:${ep.readUInt16BE(2)}`;
  else if (ep !== undefined) endpoint = `v6 ${ep.subarray(8, 24).toString("hex")} ${ep.readUInt16BE(2)} ${ep.readUInt32LE(24)}`;
  const ips = (one(a, 9) === undefined ? [] : tlvs(one(a, 9)!.value)).map((e) => {
    const f = tlvs(e.value);
    expect(f.map((x) => x.type)).toEqual([1, 2, 3]);
    return `${f[0]!.value.readUInt16LE(0)} ${f[1]!.value.toString("hex")}/${f[2]!.value[0]}`;
  });
  return { key: one(a, 1)!.value.toString("hex"), psk: one(a, 2)?.value.toString("hex"), endpoint, keepalive: one(a, 5)?.value.readUInt16LE(0), flags: one(a, 3)!.value.readUInt32LE(0), ips };
}

describe("netlink encoding", () => {
  it("writes header, fixed header, attributes and nests byte for byte, padding zeroed", () => {
    const w = new NlWriter(64).begin(16, 0x405, Uint8Array.of(1, 2, 3));
    w.str(3, "wg0");
    const n = w.nest(18);
    w.str(1, "wireguard");
    w.u16(2, 0x1234);
    w.close(n);
    w.u32(4, 1420);
    w.bytes(9, Uint8Array.of(9));
    const expected = [
      "48000000 1000 0504 00000000 00000000", // length 72, type 16, flags, seq, port id
      "01020300", // fixed header, padded
      "0800 0300 77673000", // "wg0\0"
      "1c00 1280", // nest 18, NLA_F_NESTED, 28 bytes
      "0e00 0100 776972656775617264000000", // "wireguard\0" + 2 padding
      "0600 0200 34120000", // u16 + 2 padding
      "0800 0400 8c050000", // u32 1420
      "0500 0900 09000000", // one byte + 3 padding
    ].join("").replace(/ /g, "");
    expect(w.end().toString("hex")).toBe(expected);
  });

  it("reads back what it wrote, nested attributes included, and grows past its first capacity", () => {
    const w = new NlWriter(64).begin(16, 0, Buffer.alloc(16));
    for (let i = 0; i < 5000; i++) w.u32(4, i);
    const nest = w.nest(7);
    w.str(1, "ünïcode");
    w.u8(2, 0xfe);
    w.close(nest);
    const m = decodeMessages(w.end())[0]!;
    const a = new NlAttrs(m.payload, 16);
    for (let i = 0; i < 5000; i++) {
      expect(a.next()).toBe(true);
      expect([a.type, a.u32()]).toEqual([4, i]);
    }
    expect(a.next() && a.type).toBe(7);
    const inner = a.nested();
    expect(inner.find(1) && inner.str()).toBe("ünïcode");
    expect(inner.next() && inner.u8()).toBe(0xfe);
    expect(inner.next()).toBe(false);
    expect(a.next()).toBe(false);
  });

  it("keeps messages apart in one buffer", () => {
    const w = new NlWriter();
    for (let i = 0; i < 3; i++) {
      w.begin(20 + i, i, Uint8Array.of(i, 0, 0, 0));
      w.u16(1, i);
    }
    const msgs = w.messages();
    expect(msgs.map((m) => m.length)).toEqual([28, 28, 28]);
    expect(msgs[0]!.buffer).toBe(msgs[2]!.buffer);
    expect(decodeMessages(Buffer.concat(msgs)).map((m) => [m.type, m.flags, m.payload[0]])).toEqual([
      [20, 0, 0],
      [21, 1, 1],
      [22, 2, 2],
    ]);
  });

  it("refuses a nested attribute longer than its 16-bit length", () => {
    const w = new NlWriter().begin(16, 0, Buffer.alloc(4));
    const n = w.nest(1);
    for (let i = 0; i < 9000; i++) w.u32(2, i);
    expect(() => w.close(n)).toThrow(RangeError);
  });

  it("rejects a truncated message instead of reading past it, and stops at a malformed attribute", () => {
    const w = new NlWriter().begin(16, 0, Buffer.alloc(16));
    w.u32(4, 1);
    const buf = w.end();
    expect(() => decodeMessages(buf.subarray(0, buf.length - 4))).toThrow(/malformed/);
    const bad = Buffer.from("08000100010000000c000200", "hex"); // second attribute claims more than there is
    const a = new NlAttrs(bad);
    expect(a.next() && a.u32()).toBe(1);
    expect(a.next()).toBe(false);
  });
});

describe("WireGuard generic netlink messages", () => {
  const fixture = JSON.parse(readFileSync(new URL("./fixtures/genl-set-device.json", import.meta.url), "utf8")) as { cases: Record<string, ({ hex: string } | { length: number; sha256: string })[]> };

  for (const c of genlCases) {
    it(`encodes "${c.name}" exactly as the fixture`, () => {
      const parts = wire(setDeviceMessages(FAMILY, c.ifname, c.request, c.current));
      const expected = fixture.cases[c.name]!;
      expect(parts.map((p) => p.length)).toEqual(expected.map((e) => ("hex" in e ? e.hex.length / 2 : e.length)));
      parts.forEach((p, i) => {
        const e = expected[i]!;
        if ("hex" in e) expect(p.toString("hex")).toBe(e.hex);
        else expect(createHash("sha256").update(p).digest("hex")).toBe(e.sha256);
      });
    });
  }

  it("says every field of every peer, split within the budget (reference reader)", () => {
    const c = genlCases.find((x) => x.name.startsWith("300 mixed"))!;
    const parts = wire(setDeviceMessages(FAMILY, c.ifname, c.request));
    expect(parts.length).toBeGreaterThan(2);
    const seen: ReturnType<typeof readPeer>[] = [];
    parts.forEach((p, i) => {
      const a = tlvs(p);
      expect(p.length - 4).toBeLessThanOrEqual(BUDGET); // the peers' nest header is outside the budget
      expect(one(a, 2)!.value.toString()).toBe(`${c.ifname}\0`);
      expect(a.map((x) => x.type)).toEqual(i === 0 ? [2, 3, 6, 7, 5, 8] : [2, 8]);
      tlvs(one(a, 8)!.value).forEach((e, j) => {
        const r = readPeer(e);
        const last = seen[seen.length - 1];
        // A peer whose prefixes did not fit goes on first in the next message: same head, update-only, adding.
        if (i > 0 && j === 0 && last !== undefined && last.key === r.key) {
          expect({ ...r, ips: [] }).toEqual({ ...last, ips: [], flags: (last.flags & ~2) | 4 });
          last.ips.push(...r.ips);
        } else seen.push(r);
      });
    });
    const hex = (b: Uint8Array | null | undefined): string | undefined => (b == null ? (b === null ? "00".repeat(32) : undefined) : Buffer.from(b).toString("hex"));
    expect(seen).toHaveLength(c.request.peers.length);
    c.request.peers.forEach((p, i) => {
      const s = seen[i]!;
      expect(s.key).toBe(hex(p.publicKey));
      if (p.remove) {
        expect(s).toEqual({ key: s.key, psk: undefined, endpoint: undefined, keepalive: undefined, flags: 1, ips: [] });
        return;
      }
      expect(s.flags).toBe((p.updateOnly ? 4 : 0) | (p.replaceAllowedIps ? 2 : 0));
      expect(s.psk).toBe(hex(p.presharedKey));
      expect(s.keepalive).toBe(p.persistentKeepalive);
      if (p.endpoint?.startsWith("[") === false) expect(s.endpoint).toBe(p.endpoint);
      else if (p.endpoint !== undefined) {
        const [, addr, scope, port] = /^\[([^%\]]+)(?:%(\d+))?\]:(\d+)$/.exec(p.endpoint)!;
        const full = addr!.startsWith("fe80") ? `fe80${"0".repeat(24)}${addr!.slice(6).padStart(4, "0")}` : `20010db8${"0".repeat(20)}${addr!.slice(10).padStart(4, "0")}`;
        expect(s.endpoint).toBe(`v6 ${full} ${port} ${scope ?? 0}`);
      } else expect(s.endpoint).toBeUndefined();
      expect(s.ips.length).toBe(p.allowedIps.length);
    });
    expect(seen[0]!.ips).toEqual(["2 0a000000/24", `10 fd00${"0".repeat(28)}/64`]);
  });

  it("splits 1000 peers over bounded messages and parses back every field", () => {
    const peers = Array.from({ length: 1000 }, (_, i) => peer(i, [`10.${100 + (i >> 8)}.${i & 255}.0/24`, `fd00:${i.toString(16)}::/64`]));
    peers[3]!.presharedKey = randomBytes(32);
    const privateKey = randomBytes(32);
    const parts = wire(setDeviceMessages(FAMILY, "wg0", { privateKey, listenPort: 51820, fwmark: 7, replacePeers: true, peers }));
    expect(parts.length).toBe(10);
    for (const p of parts.slice(0, -1)) expect(p.length).toBeGreaterThan(BUDGET - 200);
    for (const p of parts) expect(p.length).toBeLessThanOrEqual(BUDGET + 4);
    const state = parseDeviceDump(parts);
    expect(Buffer.from(state.privateKey!)).toEqual(privateKey);
    expect(state.listenPort).toBe(51820);
    expect(state.fwmark).toBe(7);
    expect(state.peers.map((p) => Buffer.from(p.publicKey).toString("hex"))).toEqual(peers.map((p) => Buffer.from(p.publicKey).toString("hex")));
    state.peers.forEach((s, i) => {
      expect(s.allowedIps).toEqual(peers[i]!.allowedIps.map(normalizeCidr));
      expect(s.endpoint).toBe(peers[i]!.endpoint);
      expect(s.persistentKeepalive).toBe(25);
    });
    expect(state.peers[999]!.allowedIps).toEqual(["10.103.231.0/24", "fd00:3e7::/64"]);
    expect(Buffer.from(state.peers[3]!.presharedKey!)).toEqual(Buffer.from(peers[3]!.presharedKey!));
    expect(state.peers.filter((p) => p.presharedKey !== undefined)).toHaveLength(1);
    // Only the first message replaces the peer list.
    expect(parts.filter((p) => one(tlvs(p), 5) !== undefined)).toHaveLength(1);
  });

  it("continues a peer with many allowed IPs in the next message without replacing them again", () => {
    const ips = Array.from({ length: 3000 }, (_, i) => `10.${i >> 8}.${i & 255}.1/32`);
    const parts = wire(setDeviceMessages(FAMILY, "wg0", { replacePeers: false, peers: [peer(1, ips)] }));
    expect(parts.length).toBe(6); // 3000 × 28 bytes in 16 KiB messages
    const entries = parts.map((p) => tlvs(one(tlvs(p), 8)!.value));
    for (const e of entries) expect(e).toHaveLength(1);
    const read = entries.map((e) => readPeer(e[0]!));
    expect(read[0]!.flags).toBe(2); // replace allowed IPs: first part only
    for (const r of read.slice(1)) expect(r.flags).toBe(4); // then update-only, adding
    for (const r of read) expect([r.endpoint, r.keepalive]).toEqual(["192.0.2.2:10001", 25]);
    expect(read.flatMap((r) => r.ips)).toEqual(ips.map((c) => `2 ${Buffer.from(c.slice(0, -3).split(".").map(Number)).toString("hex")}/32`));
    expect(parseDeviceDump(parts).peers[0]!.allowedIps).toEqual(ips);
  });

  it("turns the removal of an allowed IP into a replace with what remains", () => {
    const k = randomBytes(32);
    const current = [{ publicKey: k, allowedIps: ["10.0.0.0/24", "fd00::/64"], persistentKeepalive: 0, lastHandshakeMs: 0, txBytes: 0n, rxBytes: 0n, protocolVersion: 1 as const }];
    const msgs = setDeviceMessages(FAMILY, "wg0", { replacePeers: false, peers: [{ publicKey: k, remove: false, updateOnly: true, replaceAllowedIps: false, allowedIps: ["10.1.0.0/16"], removeAllowedIps: ["fd00:0::/64"] }] }, current);
    expect(parseDeviceDump(wire(msgs)).peers[0]!.allowedIps).toEqual(["10.0.0.0/24", "10.1.0.0/16"]);
  });

  it("refuses a bad allowed IP or endpoint before anything is sent", () => {
    const bad: UapiSetRequest = { replacePeers: false, peers: [peer(1, ["10.0.0.0/33"])] };
    expect(() => setDeviceMessages(FAMILY, "wg0", bad)).toThrow(/prefix length/);
    expect(() => setDeviceMessages(FAMILY, "wg0", { replacePeers: false, peers: [{ ...peer(1, []), endpoint: "example.org:1" }] })).toThrow(/hostnames/);
  });

  it("reads a GET_DEVICE dump: handshake time, counters, a peer continued in the next message", () => {
    const w = new NlWriter();
    const ipEntry = (addr: number[], bits: number): void => {
      const e = w.nest(0);
      w.u16(1, addr.length === 4 ? 2 : 10);
      w.bytes(2, Uint8Array.from(addr));
      w.u8(3, bits);
      w.close(e);
    };
    w.begin(FAMILY, 2, Uint8Array.of(0, 1, 0, 0));
    w.u32(1, 5); // ifindex
    w.str(2, "wg0");
    w.bytes(3, key("priv"));
    w.bytes(4, key("pub"));
    w.u16(6, 51820);
    w.u32(7, 0);
    let peers = w.nest(8);
    let p = w.nest(0);
    w.bytes(1, key("a"));
    w.bytes(2, new Uint8Array(32));
    const sa6 = Buffer.alloc(28);
    sa6.writeUInt16LE(10, 0);
    sa6.writeUInt16BE(51821, 2);
    sa6[8] = 0xfe;
    sa6[9] = 0x80;
    sa6[23] = 1;
    sa6.writeUInt32LE(3, 24);
    w.bytes(4, sa6);
    const hs = Buffer.alloc(16);
    hs.writeBigInt64LE(1_700_000_000n, 0);
    hs.writeBigInt64LE(250_000_000n, 8);
    w.bytes(6, hs);
    const counter = (t: number, v: bigint): void => {
      const b = Buffer.alloc(8);
      b.writeBigUInt64LE(v);
      w.bytes(t, b);
    };
    counter(7, 1234n);
    counter(8, 2n ** 40n);
    w.u16(5, 0);
    let ips = w.nest(9);
    ipEntry([10, 0, 0, 0], 8);
    w.close(ips);
    w.close(p);
    w.close(peers);
    w.begin(FAMILY, 2, Uint8Array.of(0, 1, 0, 0));
    w.str(2, "wg0");
    peers = w.nest(8);
    p = w.nest(0);
    w.bytes(1, key("a"));
    ips = w.nest(9);
    ipEntry([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 32);
    w.close(ips);
    w.close(p);
    p = w.nest(0);
    w.bytes(1, key("b"));
    w.bytes(2, key("psk-b"));
    w.bytes(6, Buffer.alloc(16));
    w.u16(5, 25);
    w.close(p);
    w.close(peers);
    const state = parseDeviceDump(w.messages().map((m) => m.subarray(20)));
    expect(Buffer.from(state.privateKey!)).toEqual(Buffer.from(key("priv")));
    expect([state.listenPort, state.fwmark]).toEqual([51820, 0]);
    expect(state.peers).toEqual([
      { publicKey: Uint8Array.from(key("a")), endpoint: "[fe80::1%3]:51821", persistentKeepalive: 0, allowedIps: ["10.0.0.0/8", "2001:db8::/32"], lastHandshakeMs: 1_700_000_000_250, rxBytes: 1234n, txBytes: 2n ** 40n, protocolVersion: 1 },
      { publicKey: Uint8Array.from(key("b")), presharedKey: Uint8Array.from(key("psk-b")), persistentKeepalive: 25, allowedIps: [], lastHandshakeMs: 0, rxBytes: 0n, txBytes: 0n, protocolVersion: 1 },
    ]);
  });
});

describe("UAPI set requests", () => {
  it("formatSet writes what parseSet reads", () => {
    const req = { privateKey: randomBytes(32), listenPort: 51820, fwmark: 3, replacePeers: true, peers: [peer(1, ["10.0.0.0/24"]), { ...peer(2, []), remove: true }] };
    req.peers[0]!.presharedKey = null;
    req.peers[0]!.removeAllowedIps = ["10.9.0.0/16"];
    const back = parseSet(formatSet(req));
    expect(back.listenPort).toBe(51820);
    expect(back.fwmark).toBe(3);
    expect(back.replacePeers).toBe(true);
    expect(back.peers[0]).toMatchObject({ endpoint: "192.0.2.2:10001", persistentKeepalive: 25, replaceAllowedIps: true, allowedIps: ["10.0.0.0/24"], removeAllowedIps: ["10.9.0.0/16"], presharedKey: null });
    expect(back.peers[1]!.remove).toBe(true);
  });
});
