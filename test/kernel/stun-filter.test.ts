import dgram from "node:dgram";
import { describe, expect, it } from "vitest";
import { encodeFilter, stunFilter, STUN_MAGIC_COOKIE, type BpfInstruction } from "../../src/kernel/stun-filter.js";

/** A classic-BPF interpreter for the instructions the filter uses (the kernel's semantics: out of bounds drops). */
function runFilter(prog: readonly BpfInstruction[], pkt: Buffer): number {
  let a = 0;
  let x = 0;
  for (let pc = 0; pc < prog.length; pc++) {
    const { code, jt, jf, k } = prog[pc]!;
    const load = (off: number, size: 1 | 2 | 4): number | null => (off + size > pkt.length ? null : size === 1 ? pkt.readUInt8(off) : size === 2 ? pkt.readUInt16BE(off) : pkt.readUInt32BE(off));
    let v: number | null = null;
    switch (code) {
      case 0x28: v = load(k, 2); break;
      case 0x20: v = load(k, 4); break;
      case 0x30: v = load(k, 1); break;
      case 0x48: v = load(x + k, 2); break;
      case 0x40: v = load(x + k, 4); break;
      case 0x50: v = load(x + k, 1); break;
      case 0xb1: {
        const b = load(k, 1);
        if (b === null) return 0;
        x = (b & 0xf) * 4;
        continue;
      }
      case 0x15: pc += a === k >>> 0 ? jt : jf; continue;
      case 0x45: pc += (a & k) !== 0 ? jt : jf; continue;
      case 0x35: pc += a >= k >>> 0 ? jt : jf; continue;
      case 0x25: pc += a > k >>> 0 ? jt : jf; continue;
      case 0x06: return k;
      default: throw new Error(`opcode 0x${code.toString(16)}`);
    }
    if (v === null) return 0;
    a = v >>> 0;
  }
  throw new Error("fell off the end");
}

function udp(dport: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt16BE(40000, 0);
  h.writeUInt16BE(dport, 2);
  h.writeUInt16BE(8 + payload.length, 4);
  return Buffer.concat([h, payload]);
}

function ipv4(ihlWords: number, body: Buffer, fragOffset = 0): Buffer {
  const h = Buffer.alloc(ihlWords * 4);
  h[0] = 0x40 | ihlWords;
  h.writeUInt16BE(fragOffset, 6);
  h[9] = 17;
  return Buffer.concat([h, body]);
}

const stun = (): Buffer => {
  const b = Buffer.alloc(20);
  b.writeUInt16BE(0x0001, 0); // binding request
  b.writeUInt32BE(STUN_MAGIC_COOKIE, 4);
  return b;
};
const wireguard = (): Buffer => Buffer.concat([Buffer.from([1, 0, 0, 0]), Buffer.alloc(144)]);

describe("STUN-only BPF filter", () => {
  it("IPv4: passes STUN to the port whatever the IP header length; drops WireGuard, other ports, fragments", () => {
    const f = stunFilter(4, 51820);
    expect(runFilter(f, ipv4(5, udp(51820, stun())))).toBeGreaterThan(0);
    expect(runFilter(f, ipv4(6, udp(51820, stun())))).toBeGreaterThan(0); // IP options: 24-byte header
    expect(runFilter(f, ipv4(15, udp(51820, stun())))).toBeGreaterThan(0);
    expect(runFilter(f, ipv4(5, udp(51820, wireguard())))).toBe(0);
    expect(runFilter(f, ipv4(5, udp(51821, stun())))).toBe(0);
    expect(runFilter(f, ipv4(5, udp(51820, stun()), 0x0010))).toBe(0);
    // A 20-byte-header assumption would read the cookie from the wrong place here.
    const shifted = ipv4(6, udp(51820, wireguard()));
    shifted.writeUInt32BE(STUN_MAGIC_COOKIE, 20 + 12 - 4);
    expect(runFilter(f, shifted)).toBe(0);
    expect(runFilter(f, ipv4(5, udp(51820, Buffer.alloc(3))))).toBe(0); // too short
  });

  it("IPv6: the packet starts at the UDP header", () => {
    const f = stunFilter(6, 51820);
    expect(runFilter(f, udp(51820, stun()))).toBeGreaterThan(0);
    expect(runFilter(f, udp(51820, wireguard()))).toBe(0);
    const channelData = stun();
    channelData[0] = 0x40; // TURN ChannelData, not STUN
    expect(runFilter(f, udp(51820, channelData))).toBe(0);
    expect(runFilter(f, udp(9, stun()))).toBe(0);
  });

  it("with channelData: TURN ChannelData passes too, in both families; WireGuard and other bytes do not", () => {
    for (const family of [4, 6] as const) {
      const f = stunFilter(family, 51820, { channelData: true });
      const wrap = (b: Buffer): Buffer => (family === 4 ? ipv4(5, b) : b);
      const frame = (first: number): Buffer => {
        const b = Buffer.alloc(40);
        b[0] = first;
        return b;
      };
      expect(runFilter(f, wrap(udp(51820, stun())))).toBeGreaterThan(0);
      expect(runFilter(f, wrap(udp(51820, frame(0x40))))).toBeGreaterThan(0);
      expect(runFilter(f, wrap(udp(51820, frame(0x4f))))).toBeGreaterThan(0);
      expect(runFilter(f, wrap(udp(51820, frame(0x50))))).toBe(0);
      expect(runFilter(f, wrap(udp(51820, frame(0x80))))).toBe(0);
      expect(runFilter(f, wrap(udp(51820, wireguard())))).toBe(0);
      expect(runFilter(f, wrap(udp(51821, frame(0x40))))).toBe(0);
    }
  });

  it("encodes struct sock_filter in host order", () => {
    const b = encodeFilter([{ code: 0x15, jt: 1, jf: 2, k: STUN_MAGIC_COOKIE }]);
    expect([...b]).toEqual([0x15, 0, 1, 2, 0x42, 0xa4, 0x12, 0x21]);
  });
});

const { loadKernelAddon } = await import("../../src/kernel/addon.js");
const addon = loadKernelAddon().addon;
const root = typeof process.getuid === "function" && process.getuid() === 0;

describe.skipIf(addon === null || !root)("STUN-only raw socket (live kernel)", () => {
  it("receives only STUN sent to the port, with the IP header and the sender's address", async () => {
    const port = 47000 + Math.floor(Math.random() * 1000);
    const fd = addon!.rawOpen(4, encodeFilter(stunFilter(4, port)));
    const sender = dgram.createSocket("udp4");
    try {
      await new Promise<void>((r) => sender.bind(0, "127.0.0.1", () => r()));
      for (const [p, payload] of [
        [port, wireguard()],
        [port + 1, stun()],
        [port, stun()],
      ] as const) {
        await new Promise<void>((r, j) => sender.send(payload, p, "127.0.0.1", (e) => (e ? j(e) : r())));
      }
      await new Promise((r) => setTimeout(r, 200));
      const got: { data: Buffer; address: string }[] = [];
      for (let m = addon!.rawRecv(fd); m !== null; m = addon!.rawRecv(fd)) got.push(m);
      // The loopback delivers each datagram once to the raw socket; only the STUN one to `port` passes.
      expect(got).toHaveLength(1);
      const ihl = (got[0]!.data[0]! & 0xf) * 4;
      expect(got[0]!.address).toBe("127.0.0.1");
      expect(got[0]!.data.readUInt16BE(ihl)).toBe(sender.address().port);
      expect(got[0]!.data.readUInt16BE(ihl + 2)).toBe(port);
      expect(got[0]!.data.readUInt32BE(ihl + 12)).toBe(STUN_MAGIC_COOKIE);
      // A reply with a hand-built UDP header, from the shared port: the sender receives it.
      const reply = Buffer.concat([Buffer.alloc(8), stun()]);
      reply.writeUInt16BE(port, 0);
      reply.writeUInt16BE(sender.address().port, 2);
      reply.writeUInt16BE(reply.length, 4);
      const received = new Promise<Buffer>((r) => sender.once("message", (m) => r(m)));
      addon!.rawSend(fd, reply, "127.0.0.1");
      expect((await received).readUInt32BE(4)).toBe(STUN_MAGIC_COOKIE);
    } finally {
      sender.close();
      addon!.close(fd);
    }
  });
});
