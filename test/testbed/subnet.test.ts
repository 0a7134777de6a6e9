import { describe, expect, it } from "vitest";
import { formatIpv4, parseIpv4, Subnet } from "../../src/testbed/subnet.js";

describe("Subnet", () => {
  it("hands out host addresses in order, skipping taken ones", () => {
    const s = new Subnet("10.1.0.0/24");
    expect(s.network).toBe("10.1.0.0");
    expect(s.prefixLength).toBe(24);
    expect(s.allocate()).toBe("10.1.0.1");
    expect(s.allocate("10.1.0.2")).toBe("10.1.0.2");
    expect(s.allocate()).toBe("10.1.0.3");
    expect(s.allocate("10.1.0.200")).toBe("10.1.0.200");
    expect(s.withPrefix("10.1.0.3")).toBe("10.1.0.3/24");
  });

  it("knows what it contains", () => {
    const s = new Subnet("198.51.100.0/25");
    expect(s.contains("198.51.100.127")).toBe(true);
    expect(s.contains("198.51.100.128")).toBe(false);
    expect(s.contains("198.51.99.255")).toBe(false);
  });

  it("runs out cleanly", () => {
    const s = new Subnet("10.2.0.0/30");
    expect([s.allocate(), s.allocate()]).toEqual(["10.2.0.1", "10.2.0.2"]);
    expect(() => s.allocate()).toThrow(/no free address left/);
  });

  it("rejects bad subnets and addresses with clear errors", () => {
    expect(() => new Subnet("10.1.0.0")).toThrow(/with prefix length/);
    expect(() => new Subnet("10.1.0.5/24")).toThrow(/host bits set; the network is 10.1.0.0\/24/);
    expect(() => new Subnet("10.1.0.0/31")).toThrow(/8-30/);
    expect(() => new Subnet("10.1.300.0/24")).toThrow(/not an IPv4 address/);
    expect(() => new Subnet("fd00::/64")).toThrow(/IPv4 network/);
    const s = new Subnet("10.1.0.0/24");
    expect(() => s.allocate("10.2.0.1")).toThrow(/not in subnet 10.1.0.0\/24/);
    expect(() => s.allocate("10.1.0.0")).toThrow(/network or broadcast/);
    expect(() => s.allocate("10.1.0.255")).toThrow(/network or broadcast/);
    s.allocate("10.1.0.9");
    expect(() => s.allocate("10.1.0.9")).toThrow(/already in use/);
  });

  it("converts addresses both ways", () => {
    expect(parseIpv4("192.0.2.1")).toBe(0xc0000201);
    expect(formatIpv4(0xc0000201)).toBe("192.0.2.1");
    expect(formatIpv4(parseIpv4("255.255.255.255"))).toBe("255.255.255.255");
    expect(() => parseIpv4("1.2.3")).toThrow(/not an IPv4 address/);
  });
});
