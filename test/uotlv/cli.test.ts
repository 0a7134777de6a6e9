import { spawnSync } from "node:child_process";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { parseClientArgs, parseServerArgs } from "../../src/cli/proxyguard.js";

const TSWG = join(resolve(import.meta.dirname, "../.."), "bin/tswg.js");

describe("tswg proxyguard client flags", () => {
  it("has ProxyGuard's defaults", () => {
    expect(parseClientArgs(["--to", "https://vpn.example.org/proxyguard"])).toEqual({
      to: "https://vpn.example.org/proxyguard",
      listenPort: 51821,
      forwardPort: 51820,
      tcpPort: 0,
      fwmark: -1,
      peerIps: [],
      caFile: undefined,
      logLevel: "info",
    });
  });

  it("takes Go-style flags in every spelling", () => {
    const c = parseClientArgs(["-to=http://h/", "--listen-port", "1000", "-forward-port", "2000", "--tcp-port=3000", "--peer-ips", "192.0.2.1, 2001:db8::1", "--fwmark=-1"]);
    expect(c).toMatchObject({ to: "http://h/", listenPort: 1000, forwardPort: 2000, tcpPort: 3000, peerIps: ["192.0.2.1", "2001:db8::1"], fwmark: -1 });
  });

  it.each([
    [[], /--to URL is required/],
    [["--to", "vpn.example.org:443"], /--to: invalid URL/],
    [["--to", "http://h/", "--listen-port", "70000"], /--listen-port must be an integer from 0 to 65535/],
    [["--to", "http://h/", "--forward-port", "x"], /--forward-port must be an integer/],
    [["--to", "http://h/", "--peer-ips", "a.example"], /--peer-ips: "a.example" is not an IP address/],
    [["--to", "http://h/", "--fwmark", "-2"], /--fwmark must be an integer from -1/],
    [["--to", "http://h/", "--bogus"], /unknown option --bogus/],
    [["--to"], /--to needs a value/],
    [["--to", "http://h/", "extra"], /unexpected argument "extra"/],
  ])("refuses %j", (args, why) => {
    expect(() => parseClientArgs(args)).toThrow(why);
  });

});

describe("tswg proxyguard server flags", () => {
  it("takes IP:PORT, [IPv6]:PORT and :PORT", () => {
    expect(parseServerArgs(["--listen", "0.0.0.0:443", "--to", "127.0.0.1:51820"])).toMatchObject({ listenHost: "0.0.0.0", listenPort: 443, toHost: "127.0.0.1", toPort: 51820 });
    expect(parseServerArgs(["-listen=:8080", "-to=[::1]:51820"])).toMatchObject({ listenHost: undefined, listenPort: 8080, toHost: "::1", toPort: 51820 });
  });

  it.each([
    [["--to", "127.0.0.1:51820"], /--listen IP:PORT is required/],
    [["--listen", ":443"], /--to IP:PORT is required/],
    [["--listen", "0.0.0.0", "--to", "127.0.0.1:1"], /--listen: "0.0.0.0" is not IP:PORT/],
    [["--listen", ":443", "--to", ":51820"], /--to: an address is required/],
    [["--listen", "[1.2.3.4]:443", "--to", "127.0.0.1:1"], /is not an IPv6 address/],
  ])("refuses %j", (args, why) => {
    expect(() => parseServerArgs(args)).toThrow(why);
  });
});

describe("the command", () => {
  it("prints usage for an unknown mode and exits 2; errors exit 1 with a message", () => {
    const bad = spawnSync(process.execPath, [TSWG, "proxyguard", "sideways"], { encoding: "utf8" });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/unknown mode "sideways"[^]*Usage:\n {2}tswg proxyguard client/);
    const noTo = spawnSync(process.execPath, [TSWG, "proxyguard", "client"], { encoding: "utf8" });
    expect(noTo.status).toBe(2);
    expect(noTo.stderr).toMatch(/--to URL is required/);
    const ca = spawnSync(process.execPath, [TSWG, "proxyguard", "client", "--to", "https://127.0.0.1:1/", "--ca", "/nonexistent/ca.pem"], { encoding: "utf8" });
    expect(ca.status).toBe(1);
    expect(ca.stderr).toMatch(/^tswg: --ca \/nonexistent\/ca\.pem: ENOENT/);
    const help = spawnSync(process.execPath, [TSWG, "proxyguard", "--help"], { encoding: "utf8" });
    expect(help.status).toBe(0);
    expect(help.stdout).toContain("tswg proxyguard server --listen IP:PORT --to IP:PORT");
  });
});
