import { describe, expect, it } from "vitest";
import { parseConfig, formatConfig } from "../../src/conf/wgquick.js";
import { parseListenAddress } from "../../src/uotlv/listen-address.js";
import { looksLikeUrl, parseTunnelUrl } from "../../src/uotlv/url.js";
import { resolveEndpoint } from "../../src/quick/resolve.js";

const PRIV = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
const PUB = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";

describe("server URLs", () => {
  it("parses http and https URLs with their defaults", () => {
    expect(parseTunnelUrl("https://VPN.Example.org/proxyguard")).toEqual({
      href: "https://vpn.example.org/proxyguard",
      secure: true,
      hostname: "vpn.example.org",
      port: 443,
      path: "/proxyguard",
      hostHeader: "vpn.example.org",
    });
    expect(parseTunnelUrl("http://192.0.2.1:8080")).toMatchObject({ href: "http://192.0.2.1:8080/", port: 8080, path: "/", hostHeader: "192.0.2.1:8080" });
    expect(parseTunnelUrl("https://[2001:db8::1]:8443/a?b=c")).toMatchObject({ hostname: "2001:db8::1", port: 8443, path: "/a?b=c", hostHeader: "[2001:db8::1]:8443" });
    expect(parseTunnelUrl("https://h:443/").href).toBe("https://h/");
  });

  it.each([
    ["ftp://h/", /scheme must be http or https/],
    ["https://user:pw@h/", /user names/],
    ["https://h/#x", /fragment/],
    ["https://h:0/", /not a URL|port/],
    ["https://h /", /blanks/],
    ["https://h/\nx", /control/],
    ["http://", /not a URL|no host/],
  ])("refuses %j", (text, why) => {
    expect(() => parseTunnelUrl(text)).toThrow(why);
  });

  it("tells URLs from host:port", () => {
    expect(looksLikeUrl("https://h/")).toBe(true);
    expect(looksLikeUrl("vpn.example.org:51820")).toBe(false);
    expect(looksLikeUrl("[::1]:51820")).toBe(false);
  });
});

describe("listen addresses", () => {
  it("takes address:port, [v6]:port and a bare port", () => {
    expect(parseListenAddress("0.0.0.0:443")).toEqual({ host: "0.0.0.0", port: 443 });
    expect(parseListenAddress("[::]:8443")).toEqual({ host: "::", port: 8443 });
    expect(parseListenAddress("443")).toEqual({ host: undefined, port: 443 });
  });
  it.each(["example.org:443", "::1:443", "1.2.3.4", "1.2.3.4:65536", "[1.2.3.4]:1", ""])("refuses %j", (t) => {
    expect(() => parseListenAddress(t)).toThrow(/invalid listen address/);
  });
});

describe("configuration files", () => {
  const conf = (extra: string, endpoint: string): string =>
    `[Interface]\nPrivateKey = ${PRIV}\n${extra}\n[Peer]\nPublicKey = ${PUB}\nAllowedIPs = 10.0.0.2/32\nEndpoint = ${endpoint}\n`;

  it("reads URL endpoints and TCPListen, and writes them back", () => {
    const c = parseConfig(conf("TCPListen = 0.0.0.0:443, [::]:443\nTCPListen = 8443", "https://VPN.example.org/proxyguard"), "wg0.conf");
    expect(c.interface.tcpListen).toEqual(["0.0.0.0:443", "[::]:443", "8443"]);
    expect(c.peers[0]!.endpoint).toEqual({ host: "vpn.example.org", port: 443, url: "https://vpn.example.org/proxyguard" });
    const text = formatConfig(c);
    expect(text).toContain("TCPListen = 0.0.0.0:443, [::]:443, 8443\n");
    expect(text).toContain("Endpoint = https://vpn.example.org/proxyguard\n");
    expect(parseConfig(text, "wg0.conf")).toEqual(c);
  });

  it("leaves TCPListen out when it is not given", () => {
    const c = parseConfig(conf("", "192.0.2.1:51820"), "wg0.conf");
    expect(c.interface.tcpListen).toBeUndefined();
    expect(formatConfig(c)).not.toContain("TCPListen");
  });

  it("says which line holds a bad URL or listen address", () => {
    expect(() => parseConfig(conf("", "gopher://h/"), "wg0.conf")).toThrow(/wg0\.conf:7: \[Peer\] Endpoint: .*scheme must be http or https/);
    expect(() => parseConfig(conf("TCPListen = localhost:443", "192.0.2.1:1"), "wg0.conf")).toThrow(/wg0\.conf:3: \[Interface\] TCPListen: .*not an IPv4 address/);
  });

  it("passes URLs through endpoint resolution unchanged", async () => {
    await expect(resolveEndpoint({ host: "vpn.invalid", port: 443, url: "https://vpn.invalid/pg" })).resolves.toBe("https://vpn.invalid/pg");
  });
});
