import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/conf/error.js";
import { formatConfig, parseConfig } from "../../src/conf/wgquick.js";

const KEY = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";

function parse(lines: string): ReturnType<typeof parseConfig> {
  return parseConfig(`[Interface]\nPrivateKey = ${KEY}\nAddress = 10.0.0.2/24\n${lines}\n`, "t.conf");
}

describe("network stack keys", () => {
  it("reads Netstack, SOCKS5, HTTPProxy, Forward and Expose, several of each", () => {
    const c = parse(`Netstack = router
SOCKS5 = 127.0.0.1:1080
SOCKS5 = alice:s3cret@[::1]:1081
HTTPProxy = 127.0.0.1:3128
Forward = tcp://127.0.0.1:2222 -> 10.0.0.1:22
Forward = udp://127.0.0.1:5353->10.0.0.1:53
Expose = tcp://10.0.0.2:80 -> 127.0.0.1:8080`);
    const i = c.interface;
    expect(i.netstack).toBe("router");
    expect(i.socks5).toEqual([
      { host: "127.0.0.1", port: 1080 },
      { host: "::1", port: 1081, username: "alice", password: "s3cret" },
    ]);
    expect(i.httpProxy).toEqual([{ host: "127.0.0.1", port: 3128 }]);
    expect(i.forward).toEqual([
      { protocol: "tcp", listen: { host: "127.0.0.1", port: 2222 }, target: { host: "10.0.0.1", port: 22 } },
      { protocol: "udp", listen: { host: "127.0.0.1", port: 5353 }, target: { host: "10.0.0.1", port: 53 } },
    ]);
    expect(i.expose).toEqual([{ protocol: "tcp", listen: { host: "10.0.0.2", port: 80 }, target: { host: "127.0.0.1", port: 8080 } }]);
    expect(parseConfig(formatConfig(c), "again.conf")).toEqual(c);
  });

  it("Netstack = true / false", () => {
    expect(parse("Netstack = true").interface.netstack).toBe("endpoint");
    expect(parse("Netstack = false").interface.netstack).toBeUndefined();
  });

  it("names the key and line of a bad value", () => {
    const bad = (line: string, why: RegExp) => {
      const err = (() => {
        try {
          parse(line);
        } catch (e) {
          return e;
        }
        return null;
      })();
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(why);
    };
    bad("Netstack = maybe", /Netstack.*none of true, false, router/u);
    bad("SOCKS5 = 127.0.0.1", /SOCKS5.*not host:port/u);
    bad("SOCKS5 = 127.0.0.1:70000", /not host:port/u);
    bad("HTTPProxy = user@127.0.0.1:1", /user:password@/u);
    bad("Forward = tcp://127.0.0.1:22", /Forward.*tcp:\/\/HOST:PORT -> HOST:PORT/u);
    bad("Expose = sctp://1.2.3.4:1 -> 127.0.0.1:2", /Expose/u);
    bad("Forward = tcp://[nothex]:1 -> 10.0.0.1:2", /not an IPv6 address/u);
  });
});
