import { describe, expect, it } from "vitest";
import { buildTooBig, TooBigResponder } from "../../src/device/icmp-too-big.js";
import { endpointInnerMtu, endpointPathMtu, innerMtu, PathMtuTable, RECHECK_MS } from "../../src/device/pmtu.js";
import type { Endpoint } from "../../src/bind/bind.js";

function sum16(b: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < b.length; i++) s += i % 2 === 0 ? b[i]! << 8 : b[i]!;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

function ipv4(len: number, df: boolean): Uint8Array {
  const p = new Uint8Array(len);
  p[0] = 0x45;
  new DataView(p.buffer).setUint16(2, len);
  p[6] = df ? 0x40 : 0;
  p[9] = 6;
  p.set([10, 0, 0, 1], 12);
  p.set([10, 0, 0, 2], 16);
  return p;
}

function ipv6(len: number): Uint8Array {
  const p = new Uint8Array(len);
  p[0] = 0x60;
  new DataView(p.buffer).setUint16(4, len - 40);
  p[6] = 6;
  p[23] = 1;
  p[39] = 2;
  return p;
}

describe("path MTU arithmetic", () => {
  it("leaves room for outer headers and WireGuard, in padding steps", () => {
    expect(innerMtu(1280, 6)).toBe(1200);
    expect(innerMtu(1280, 4)).toBe(1216);
    expect(innerMtu(1500, 4)).toBe(1440);
    expect(innerMtu(0, 4)).toBe(0);
  });

  it("re-reads the kernel when stale and keeps a prober's value until the kernel reports less", () => {
    let kernel = 1500;
    let iface = 1500;
    let now = 0;
    const ep = { key: "x" } as Endpoint;
    const t = new PathMtuTable(() => ({ mtu: kernel, interfaceMtu: iface }), () => now);
    expect(t.get(ep)).toMatchObject({ mtu: 1500, source: "interface" });
    kernel = 1280;
    expect(t.get(ep).mtu).toBe(1500);
    now += RECHECK_MS;
    expect(t.get(ep)).toMatchObject({ mtu: 1280, source: "icmp" });
    t.set(ep, 1200);
    now += RECHECK_MS;
    expect(t.get(ep)).toMatchObject({ mtu: 1200, source: "probe" });
    kernel = 1100;
    now += RECHECK_MS;
    expect(t.get(ep)).toMatchObject({ mtu: 1100, source: "icmp" });
    iface = 0;
    now += RECHECK_MS;
    expect(t.get(ep)).toMatchObject({ mtu: 1100, source: "kernel" });
    kernel = 0;
    now += RECHECK_MS;
    expect(t.get(ep)).toMatchObject({ mtu: 0, source: "unknown" });
  });
});

describe("ICMP too-big answers", () => {
  it("builds a valid ICMP fragmentation-needed from the packet's destination", () => {
    const a = buildTooBig(ipv4(1400, true), 1216)!;
    expect(sum16(a.subarray(0, 20))).toBe(0xffff);
    expect(sum16(a.subarray(20))).toBe(0xffff);
    expect([...a.subarray(12, 20)]).toEqual([10, 0, 0, 2, 10, 0, 0, 1]);
    expect([a[20], a[21], (a[26]! << 8) | a[27]!]).toEqual([3, 4, 1216]);
    expect(a.length).toBe(576);
  });

  it("builds a valid ICMPv6 packet-too-big within 1280 bytes", () => {
    const a = buildTooBig(ipv6(1401), 1280)!;
    expect(a.length).toBe(1280);
    const pseudo = new Uint8Array(40);
    pseudo.set(a.subarray(8, 40), 0);
    new DataView(pseudo.buffer).setUint32(32, a.length - 40);
    pseudo[39] = 58;
    const whole = new Uint8Array(40 + a.length - 40);
    whole.set(pseudo, 0);
    whole.set(a.subarray(40), 40);
    expect(sum16(whole)).toBe(0xffff);
    expect([a[40], new DataView(a.buffer).getUint32(44)]).toEqual([2, 1280]);
  });

  it("lets DF-clear IPv4 and IPv6 up to 1280 go, and rate-limits", () => {
    let now = 0;
    const r = new TooBigResponder(() => now);
    expect(r.check(ipv4(1400, false), 1216)).toBeNull();
    expect(r.check(ipv6(1280), 1200)).toBeNull();
    expect(r.check(ipv4(1216, true), 1216)).toBeNull();
    let answered = 0;
    for (let i = 0; i < 100; i++) if (r.check(ipv4(1400, true), 1216)?.answer) answered++;
    expect(answered).toBe(20);
    expect(r.counters.limited).toBe(80);
    now += 1000;
    expect(r.check(ipv6(1400), 1200)?.answer?.length).toBeGreaterThan(0);
  });
});

describe("path MTU of carried and TCP endpoints", () => {
  const reader = () => ({ mtu: 1280, interfaceMtu: 1500 });
  const udpBind = { kind: "udp" } as Endpoint["bind"];
  const udp = (channel: number): Endpoint =>
    ({ key: `udp-${channel}`, bind: udpBind, family: 4, port: 3478, zone: "", channel, addressBytes: () => Uint8Array.of(198, 51, 100, 1) }) as unknown as Endpoint;
  const carried = (target: Endpoint): Endpoint => ({ key: "ice", bind: { kind: "ice" }, carrier: () => target }) as unknown as Endpoint;

  it("an ICE endpoint is measured where its datagrams go; a relayed one loses the ChannelData header", () => {
    const t = new PathMtuTable(reader);
    expect(endpointPathMtu(t, carried(udp(0)))).toEqual({ mtu: 1280, source: "icmp" });
    expect(endpointInnerMtu(t, carried(udp(0)))).toBe(innerMtu(1280, 4));
    // A size where the 4 bytes cross a 16-byte padding step: 1292 - 60 = 1232, 1288 - 60 -> 1216.
    const t2 = new PathMtuTable(() => ({ mtu: 1292, interfaceMtu: 1292 }));
    expect(endpointInnerMtu(t2, carried(udp(0)))).toBe(1232);
    expect(endpointInnerMtu(t2, carried(udp(0x4001)))).toBe(1232 - 16);
  });

  it("a TCP path has no datagram limit; an endpoint without an address has no path MTU", () => {
    const t = new PathMtuTable(reader);
    expect(endpointPathMtu(t, { key: "tcp", bind: { kind: "tcp" } } as unknown as Endpoint)).toEqual({ mtu: 0, source: "tcp" });
    expect(endpointPathMtu(t, { key: "mem", bind: { kind: "memory" } } as unknown as Endpoint)).toBeNull();
    expect(endpointInnerMtu(t, { key: "tcp", bind: { kind: "tcp" } } as unknown as Endpoint)).toBe(0);
  });
});
