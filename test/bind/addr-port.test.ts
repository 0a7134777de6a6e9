import { describe, expect, it } from "vitest";
import { EndpointParseError, formatAddrPort, parseAddrPort } from "../../src/bind/addr-port.js";

describe("parseAddrPort", () => {
  it.each([
    ["192.0.2.1:51820", 4, "192.0.2.1", "", 51820, "192.0.2.1:51820"],
    [" 127.0.0.1:1 ", 4, "127.0.0.1", "", 1, "127.0.0.1:1"],
    ["[2001:db8::1]:65535", 6, "2001:db8::1", "", 65535, "[2001:db8::1]:65535"],
    ["[2001:DB8:0:0::1]:51820", 6, "2001:db8::1", "", 51820, "[2001:db8::1]:51820"],
    ["[::1]:51820", 6, "::1", "", 51820, "[::1]:51820"],
    ["[fe80::1%eth0]:51820", 6, "fe80::1", "eth0", 51820, "[fe80::1%eth0]:51820"],
    ["[::ffff:192.0.2.1]:51820", 4, "192.0.2.1", "", 51820, "192.0.2.1:51820"],
    ["[::ffff:c000:201]:7", 4, "192.0.2.1", "", 7, "192.0.2.1:7"],
  ])("parses %j", (text, family, address, zone, port, formatted) => {
    const a = parseAddrPort(text);
    expect(a).toMatchObject({ family, address, zone, port });
    expect(a.bytes.length).toBe(family === 4 ? 4 : 16);
    expect(formatAddrPort(a.family, a.address, a.zone, a.port)).toBe(formatted);
  });

  it.each([
    ["", /no port/],
    ["192.0.2.1", /no port/],
    ["192.0.2.1:", /port number from 1 to 65535/],
    ["192.0.2.1:0", /port number from 1 to 65535/],
    ["192.0.2.1:65536", /port number from 1 to 65535/],
    ["192.0.2.1:123456", /port number from 1 to 65535/],
    ["192.0.2.1:-1", /port number from 1 to 65535/],
    ["192.0.2.1:80a", /port number from 1 to 65535/],
    ["192.0.2.1:0x50", /port number from 1 to 65535/],
    ["example.com:51820", /hostnames are not resolved/],
    ["localhost:51820", /hostnames are not resolved/],
    ["2001:db8::1:51820", /needs brackets/],
    ["::1", /needs brackets/],
    ["[2001:db8::1]", /no ":port" after/],
    ["[2001:db8::1:51820", /no closing "]"/],
    ["[192.0.2.1]:51820", /only IPv6 addresses go in brackets/],
    ["[fe80::1%]:51820", /invalid zone ""/],
    ["[fe80::1%eth 0]:51820", /invalid zone "eth 0"/],
    ["256.1.1.1:80", /is not an IP address/],
    [":51820", /no address/],
    ["[]:51820", /nothing inside the brackets/],
  ])("rejects %j", (text, msg) => {
    expect(() => parseAddrPort(text)).toThrow(EndpointParseError);
    expect(() => parseAddrPort(text)).toThrow(msg);
  });

  it("names the input in the error", () => {
    expect(() => parseAddrPort("nope:1")).toThrow(/invalid endpoint "nope:1"/);
  });

  it("rejects non-strings clearly", () => {
    expect(() => parseAddrPort(undefined as unknown as string)).toThrow(/must be a string/);
  });
});
