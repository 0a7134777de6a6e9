import { describe, expect, it } from "vitest";
import { UdpBind } from "../../src/bind/udp.js";
import { UdpEndpoint } from "../../src/bind/udp-endpoint.js";

describe("UdpEndpoint", () => {
  const bind = new UdpBind();

  it("gives address bytes then the port big-endian", () => {
    const e = bind.parseEndpoint("192.0.2.1:51820");
    expect(Array.from(e.dstToBytes())).toEqual([192, 0, 2, 1, 0xca, 0x6c]);
    expect(e.dstToBytes()).toBe(e.dstToBytes()); // computed once
    const e6 = bind.parseEndpoint("[2001:db8::1]:258");
    expect(Array.from(e6.dstToBytes())).toEqual([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2]);
  });

  it("unmaps IPv4-mapped addresses so both spellings are the same endpoint", () => {
    const a = bind.parseEndpoint("[::ffff:192.0.2.1]:51820");
    const b = bind.parseEndpoint("192.0.2.1:51820");
    expect(a.family).toBe(4);
    expect(a.key).toBe(b.key);
    expect(Array.from(a.dstToBytes())).toEqual(Array.from(b.dstToBytes()));
  });

  it("formats like wg show and keys by transport and destination", () => {
    const e = bind.parseEndpoint("[2001:DB8::0:1]:51820");
    expect(e.dstToString()).toBe("[2001:db8::1]:51820");
    expect(e.dstIP()).toBe("2001:db8::1");
    expect(e.key).toBe("udp:[2001:db8::1]:51820");
    expect(String(e)).toBe("[2001:db8::1]:51820");
    expect(e.bind).toBe(bind);
    expect(bind.parseEndpoint("192.0.2.1:1").key).not.toBe(bind.parseEndpoint("192.0.2.1:2").key);
  });

  it("keeps the zone in text and dstIP but not in the bytes", () => {
    const e = UdpEndpoint.parse(bind, "[fe80::1%eth0]:51820");
    expect(e.dstToString()).toBe("[fe80::1%eth0]:51820");
    expect(e.dstIP()).toBe("fe80::1%eth0");
    expect(e.dstToBytes().length).toBe(18);
  });
});
