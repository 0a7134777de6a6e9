import { describe, expect, it } from "vitest";
import { IceServerUrlError, parseIceServer, parseIceServers, selectIceServers } from "../../src/ice/servers.js";

describe("ICE server URLs", () => {
  it("parses STUN URLs with default and explicit ports", () => {
    expect(parseIceServer("stun:stun.example.org")).toEqual({ scheme: "stun", host: "stun.example.org", port: 3478, transport: "udp", url: "stun:stun.example.org:3478" });
    expect(parseIceServer(" STUN:192.0.2.1:19302 ")).toMatchObject({ host: "192.0.2.1", port: 19302 });
  });

  it("parses TURN URLs: transports, TLS, credentials inline or beside", () => {
    expect(parseIceServer("turn:turn.example.org", { username: "u", credential: "p" })).toEqual({
      scheme: "turn",
      host: "turn.example.org",
      port: 3478,
      transport: "udp",
      username: "u",
      credential: "p",
      url: "turn:turn.example.org:3478",
    });
    expect(parseIceServer("turn:u:p@192.0.2.5:3479?transport=tcp")).toMatchObject({ transport: "tcp", port: 3479, username: "u", credential: "p", url: "turn:192.0.2.5:3479?transport=tcp" });
    expect(parseIceServer("turns:u:p@turn.example.org")).toMatchObject({ scheme: "turns", transport: "tls", port: 5349 });
    expect(parseIceServer("turns:u:p@turn.example.org:443?transport=tcp")).toMatchObject({ transport: "tls", port: 443 });
    expect(parseIceServer("turn:us%40er:p%3Ass@h.example")).toMatchObject({ username: "us@er", credential: "p:ss" });
    expect(parseIceServer("turn:inline:x@h.example", { username: "beside", credential: "y" })).toMatchObject({ username: "inline", credential: "x" });
    expect(parseIceServer("turns:u:p@[2001:db8::1]:5349")).toMatchObject({ host: "2001:db8::1", url: "turns:[2001:db8::1]:5349" });
  });

  it("refuses what cannot work, saying why", () => {
    const cases: Array<[string, RegExp]> = [
      ["", /empty/],
      ["stun.example.org", /expected "stun:"/],
      ["http://x", /unknown scheme "http"/],
      ["stuns:x.example", /not supported/],
      ["stun://x.example", /no "\/\/"/],
      ["stun:x.example:0", /outside 1-65535/],
      ["stun:x.example:99999", /outside 1-65535/],
      ["stun:x.example:port", /not a number/],
      ["stun:x.example?transport=udp", /no parameters/],
      ["stun:u:p@x.example", /no credentials/],
      ["stun:2001:db8::1", /brackets/],
      ["stun:[2001:db8::1]:3478", /needs an IPv4 address/],
      ["turn:u:p@[2001:db8::1]", /TURN over UDP needs an IPv4/],
      ["turn:x.example", /username and credential/],
      ["turn:u@x.example", /user:credential@host/],
      ["turn:u:p@x.example?transport=sctp", /not udp or tcp/],
      ["turn:u:p@x.example?foo=bar", /unknown parameter/],
      ["turns:u:p@x.example?transport=udp", /DTLS/],
      ["turn:u:p@bad_host!", /neither an IP address nor a host name/],
      ["turn:u:%zz@x.example", /percent-encoding/],
    ];
    for (const [url, why] of cases) {
      expect(() => parseIceServer(url), url).toThrow(IceServerUrlError);
      expect(() => parseIceServer(url), url).toThrow(why);
    }
  });

  it("never shows inline credentials in errors", () => {
    try {
      parseIceServer("turn:alice:s3cret@x.example?transport=sctp");
      expect.unreachable();
    } catch (e) {
      expect((e as Error).message).not.toContain("s3cret");
      expect((e as Error).message).toContain("***@");
    }
  });

  it("parses lists and RTCIceServer-like entries", () => {
    const list = parseIceServers("stun:a.example, turn:u:p@b.example?transport=tcp\nstun:c.example");
    expect(list.map((s) => s.url)).toEqual(["stun:a.example:3478", "turn:b.example:3478?transport=tcp", "stun:c.example:3478"]);
    const objs = parseIceServers([{ urls: ["turn:t.example", "turns:t.example"], username: "u", credential: "p" }, "stun:s.example"]);
    expect(objs.map((s) => [s.scheme, s.username ?? null])).toEqual([
      ["turn", "u"],
      ["turns", "u"],
      ["stun", null],
    ]);
    expect(() => parseIceServers([{ urls: [] }])).toThrow(/no URLs/);
    expect(parseIceServers("")).toEqual([]);
  });

  it("selects the first STUN and first TURN server; a UDP TURN server stands in for STUN", () => {
    const sel = selectIceServers(parseIceServers("turn:u:p@t1.example stun:s1.example stun:s2.example turns:u:p@t2.example"));
    expect(sel.stun?.host).toBe("s1.example");
    expect(sel.turn?.host).toBe("t1.example");
    expect(sel.unused.map((s) => s.host)).toEqual(["s2.example", "t2.example"]);
    const onlyTurn = selectIceServers(parseIceServers("turn:u:p@t1.example:3479"));
    expect(onlyTurn.stun).toMatchObject({ scheme: "stun", host: "t1.example", port: 3479 });
    expect(selectIceServers(parseIceServers("turns:u:p@t1.example")).stun).toBeNull();
    expect(selectIceServers([])).toEqual({ stun: null, turn: null, unused: [], stunServers: [], turnServers: [] });
  });
});
