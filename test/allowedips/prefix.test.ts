import { describe, expect, it } from "vitest";
import { IpParseError } from "../../src/allowedips/ip.js";
import { formatCidr, maskPrefix, normalizeCidr, parseCidr, toPrefix } from "../../src/allowedips/prefix.js";

describe("parseCidr", () => {
  it("keeps host bits and the length", () => {
    const p = parseCidr("10.1.2.3/8");
    expect(p).toEqual({ family: 4, bytes: Uint8Array.of(10, 1, 2, 3), bits: 8 });
    expect(formatCidr(p)).toBe("10.1.2.3/8");
  });

  it("treats a bare address as a host route", () => {
    expect(parseCidr("192.0.2.1").bits).toBe(32);
    expect(parseCidr("fd00::1").bits).toBe(128);
  });

  it("accepts /0 and the full length", () => {
    expect(parseCidr("0.0.0.0/0").bits).toBe(0);
    expect(parseCidr("::/0").bits).toBe(0);
    expect(parseCidr("fd00::1/128").bits).toBe(128);
    expect(parseCidr(" 10.0.0.0/8 ").bits).toBe(8);
  });

  it.each([
    ["10.0.0.0/33", /exceeds 32/],
    ["fd00::/129", /exceeds 128/],
    ["10.0.0.0/", /prefix length/],
    ["10.0.0.0/08", /prefix length/],
    ["10.0.0.0/-1", /prefix length/],
    ["10.0.0.0/8/8", /prefix length/],
    ["10.0.0.0/ 8", /prefix length/],
    ["/8", /no address/],
    ["example.com/8", /not an IPv4 or IPv6 address/],
    ["fe80::1%eth0/64", /zone/],
  ])("rejects %j", (text, msg) => {
    expect(() => parseCidr(text)).toThrow(IpParseError);
    expect(() => parseCidr(text)).toThrow(msg);
  });

  it("rejects non-strings clearly", () => {
    expect(() => parseCidr(42 as unknown as string)).toThrow(/must be a string/);
  });
});

describe("maskPrefix / normalizeCidr", () => {
  it.each([
    ["10.1.2.3/8", "10.0.0.0/8"],
    ["10.1.255.3/15", "10.0.0.0/15"],
    ["10.1.255.3/17", "10.1.128.0/17"],
    ["192.0.2.77/32", "192.0.2.77/32"],
    ["255.255.255.255/0", "0.0.0.0/0"],
    ["2001:db8:ffff::1/33", "2001:db8:8000::/33"],
    ["2001:DB8::1/64", "2001:db8::/64"],
    ["::ffff:10.9.8.7/120", "::ffff:10.9.8.0/120"],
  ])("%s -> %s", (input, want) => {
    expect(normalizeCidr(input)).toBe(want);
  });

  it("does not modify its input", () => {
    const p = parseCidr("10.1.2.3/8");
    maskPrefix(p);
    expect(Array.from(p.bytes)).toEqual([10, 1, 2, 3]);
  });
});

describe("toPrefix", () => {
  it("accepts bytes and bits, copying the bytes", () => {
    const bytes = Uint8Array.of(10, 0, 0, 0);
    const p = toPrefix({ bytes, bits: 8 });
    bytes[0] = 11;
    expect(p).toEqual({ family: 4, bytes: Uint8Array.of(10, 0, 0, 0), bits: 8 });
  });

  it.each([
    [{ bytes: new Uint8Array(5), bits: 8 }, /4 or 16 bytes/],
    [{ bytes: new Uint8Array(4), bits: 33 }, /0 to 32/],
    [{ bytes: new Uint8Array(16), bits: 1.5 }, /0 to 128/],
    [{ bytes: [1, 2, 3, 4] as unknown as Uint8Array, bits: 8 }, /Uint8Array/],
  ])("rejects %o", (input, msg) => {
    expect(() => toPrefix(input)).toThrow(msg);
  });
});
