import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { formatIp, IpParseError, isMappedIPv4, parseIp, unmapIPv4 } from "../../src/allowedips/ip.js";
import { isIPv4, isIPv6 } from "node:net";

describe("parseIp", () => {
  it("parses IPv4", () => {
    expect(parseIp("192.0.2.7")).toEqual({ family: 4, bytes: Uint8Array.of(192, 0, 2, 7) });
  });

  it("parses IPv6 with and without ::", () => {
    expect(Array.from(parseIp("2001:db8::1").bytes)).toEqual([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    expect(Array.from(parseIp("::").bytes)).toEqual(new Array(16).fill(0));
    expect(Array.from(parseIp("1:2:3:4:5:6:7:8").bytes)).toEqual([0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8]);
    expect(Array.from(parseIp("fe80::").bytes.slice(0, 2))).toEqual([0xfe, 0x80]);
  });

  it("accepts exactly the IPv6 text Node accepts (hex-group text is checked without Node's regular expression)", () => {
    const accepts = (t: string): boolean => {
      try {
        return parseIp(t).family === 6;
      } catch {
        return false;
      }
    };
    for (const t of ["1::", "::1", "::", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8", "1:2:3:4:5:6::8", "ABCD:ef01::", ":1::", "1:", "1:::2", "1::2::3", "1:2:3:4:5:6:7:8:9", "1::2:3:4:5:6:7:8", "12345::", ":", "g::"]) {
      expect([t, accepts(t)]).toEqual([t, isIPv6(t)]);
    }
    // Bytes by a reference expansion: groups around "::", zeros between.
    const expand = (t: string): number[] => {
      const [h, tl] = t.includes("::") ? t.split("::") : [t, undefined];
      const hw = h === "" ? [] : h!.split(":");
      const tw = tl === undefined || tl === "" ? [] : tl.split(":");
      const words = [...hw, ...new Array<string>(8 - hw.length - tw.length).fill("0"), ...tw].map((g) => parseInt(g, 16));
      return words.flatMap((w) => [w >> 8, w & 255]);
    };
    fc.assert(
      fc.property(fc.array(fc.constantFrom("0", "1", "a", "F", "ff", "1234", "12345", ":", ":", "::", "."), { maxLength: 24 }), (pieces) => {
        const t = pieces.join("");
        expect(accepts(t)).toBe(isIPv6(t));
        if (accepts(t) && !t.includes(".")) expect(Array.from(parseIp(t).bytes)).toEqual(expand(t));
      }),
      { numRuns: 20000 },
    );
  });

  it("accepts exactly the IPv4 text Node accepts", () => {
    fc.assert(
      fc.property(fc.oneof(fc.array(fc.constantFrom("0", "1", "9", "25", "255", "256", "199", "00", "01", "1000", "", " 1"), { minLength: 3, maxLength: 5 }).map((a) => a.join(".")), fc.array(fc.constantFrom("0", "1", "255", "256", ".", ".", "a"), { maxLength: 12 }).map((a) => a.join(""))), (t) => {
        let got: number[] | null = null;
        try {
          const a = parseIp(t);
          if (a.family === 4) got = Array.from(a.bytes);
        } catch {
          got = null;
        }
        expect(got !== null).toBe(isIPv4(t));
        if (got !== null) expect(got).toEqual(t.split(".").map(Number));
      }),
      { numRuns: 20000 },
    );
  });

  it("parses embedded IPv4 and keeps IPv4-mapped addresses IPv6", () => {
    const a = parseIp("::ffff:10.1.2.3");
    expect(a.family).toBe(6);
    expect(isMappedIPv4(a.bytes)).toBe(true);
    expect(unmapIPv4(a)).toEqual({ family: 4, bytes: Uint8Array.of(10, 1, 2, 3) });
    expect(Array.from(parseIp("64:ff9b::192.0.2.1").bytes.slice(12))).toEqual([192, 0, 2, 1]);
    expect(unmapIPv4(parseIp("2001:db8::1")).family).toBe(6);
  });

  it.each(["", "1.2.3", "1.2.3.256", "01.2.3.4", "example.com", "1::2::3", "fe80::1%eth0", "12345::", " 1.2.3.4"])(
    "rejects %j with an IpParseError",
    (text) => {
      expect(() => parseIp(text)).toThrow(IpParseError);
    },
  );

  it("names the zone problem", () => {
    expect(() => parseIp("fe80::1%eth0")).toThrow(/zone/);
  });
});

describe("formatIp", () => {
  it.each([
    ["2001:db8:0:0:0:0:0:1", "2001:db8::1"],
    ["2001:DB8:0:0:1:0:0:1", "2001:db8::1:0:0:1"], // first of two equal runs
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"], // a lone zero group is not shortened
    ["0:0:0:0:0:0:0:0", "::"],
    ["0:0:0:0:0:0:0:1", "::1"],
    ["1:0:0:0:0:0:0:0", "1::"],
    ["1:0:0:2:0:0:0:3", "1:0:0:2::3"],
    ["::ffff:192.0.2.1", "::ffff:192.0.2.1"],
  ])("formats %s as %s", (input, want) => {
    expect(formatIp(parseIp(input).bytes)).toBe(want);
  });

  it("rejects byte arrays of other lengths", () => {
    expect(() => formatIp(new Uint8Array(5))).toThrow(/4 or 16 bytes/);
  });

  it("round-trips every IPv6 address and yields valid text", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.boolean(), (bytes, sparse) => {
        // Zero out some groups so that "::" compression is exercised often.
        if (sparse) for (let i = 0; i < 16; i += 2) if (bytes[i]! & 1) bytes[i] = bytes[i + 1] = 0;
        const text = formatIp(bytes);
        expect(isIPv6(text)).toBe(true);
        expect(parseIp(text).bytes).toEqual(bytes);
      }),
      { numRuns: 2000 },
    );
  });
});
