import { describe, expect, it } from "vitest";
import { formatHostPort, HostPortError, parseHostPort } from "../../src/hostport/host-port.js";

describe("parseHostPort", () => {
  it.each([
    ["192.0.2.1:51820", {}, { host: "192.0.2.1", zone: "", port: 51820, bracketed: false }],
    ["[2001:db8::1]:1", {}, { host: "2001:db8::1", zone: "", port: 1, bracketed: true }],
    ["[fe80::1%eth0]:9", {}, { host: "fe80::1", zone: "eth0", port: 9, bracketed: true }],
    ["vpn.example.org:443", {}, { host: "vpn.example.org", zone: "", port: 443, bracketed: false }],
    [":8443", { emptyHost: true }, { host: "", zone: "", port: 8443, bracketed: false }],
    ["443", { barePort: true }, { host: "", zone: "", port: 443, bracketed: false }],
    ["0.0.0.0:0", { minPort: 0 as const }, { host: "0.0.0.0", zone: "", port: 0, bracketed: false }],
  ])("splits %j", (text, rules, want) => {
    expect(parseHostPort(text, rules)).toEqual(want);
  });

  it.each([
    ["", {}, /no port/],
    ["192.0.2.1", {}, /no port/],
    ["192.0.2.1:0", {}, /from 1 to 65535/],
    ["192.0.2.1:65536", {}, /from 1 to 65535/],
    ["192.0.2.1:80a", {}, /from 1 to 65535/],
    ["2001:db8::1:80", {}, /needs brackets/],
    ["[::1", {}, /closing "\]"/],
    ["[::1]", {}, /no ":port"/],
    ["[]:1", {}, /nothing inside/],
    [":1", {}, /no address/],
    ["fe80::1%eth0:1", {}, /needs brackets/],
    ["[fe80::1%a b]:1", {}, /invalid zone/],
    ["443", {}, /no port/],
  ])("refuses %j", (text, rules, why) => {
    expect(() => parseHostPort(text, rules)).toThrow(HostPortError);
    expect(() => parseHostPort(text, rules)).toThrow(why);
  });

  it("formats what it parses", () => {
    for (const t of ["192.0.2.1:1", "[2001:db8::1]:2", "[fe80::1%eth0]:3"]) {
      const hp = parseHostPort(t);
      expect(formatHostPort(hp.host, hp.port, hp.zone)).toBe(t);
    }
  });
});
