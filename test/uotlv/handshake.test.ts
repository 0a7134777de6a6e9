import { describe, expect, it } from "vitest";
import { checkUpgradeResponse, formatErrorResponse, formatSwitchingResponse, formatUpgradeRequest, judgeUpgradeRequest, UpgradeError } from "../../src/uotlv/handshake.js";
import { HeadError, HeadReader, parseRequestHead, parseResponseHead } from "../../src/uotlv/http-head.js";

const request = (lines: string[]): ReturnType<typeof parseRequestHead> => parseRequestHead(lines.join("\r\n") + "\r\n\r\n");

describe("HTTP heads", () => {
  it("collects a head split over chunks and returns the bytes after it", () => {
    const r = new HeadReader();
    const text = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    const bytes = Buffer.concat([Buffer.from(text), Buffer.from([0, 1, 42])]);
    let got = null;
    for (let i = 0; i < bytes.length && got === null; i++) got = r.push(bytes.subarray(i, i + 1));
    expect(got).not.toBeNull();
    expect(got!.head).toBe(text);
    // fed one byte at a time, the head completes on its last byte: nothing after it yet
    expect(got!.rest.length).toBe(0);
    const whole = new HeadReader().push(bytes)!;
    expect(whole.rest).toEqual(Buffer.from([0, 1, 42]));
  });

  it("accepts bare LF line ends", () => {
    const r = new HeadReader().push(Buffer.from("GET /x HTTP/1.1\nHost: h\n\nrest"))!;
    expect(parseRequestHead(r.head)).toMatchObject({ method: "GET", target: "/x", version: "HTTP/1.1" });
    expect(r.rest.toString()).toBe("rest");
  });

  it("refuses a head over the limit with 431", () => {
    const r = new HeadReader(100);
    expect(r.push(Buffer.from("GET / HTTP/1.1\r\n"))).toBeNull();
    expect(() => r.push(Buffer.from("X-Pad: " + "a".repeat(200)))).toThrow(expect.objectContaining({ status: 431 }));
  });

  it("parses fields case-insensitively, trims blanks, keeps the first of repeated fields", () => {
    const h = request(["GET /p?q=1 HTTP/1.1", "HOST: example", "Connection:   Upgrade  ", "connection: close"]);
    expect(h.target).toBe("/p?q=1");
    expect(h.headers.get("host")).toBe("example");
    expect(h.headers.get("connection")).toBe("Upgrade");
  });

  it.each([
    ["GET /  HTTP/1.1", 400],
    ["GET / HTTP/2.0", 505],
    ["GET / HTTX/1.1", 400],
    ["G(T / HTTP/1.1", 400],
    ["", 400],
  ])("refuses the request line %j with %i", (line, status) => {
    expect(() => request([line, "Host: a"])).toThrow(expect.objectContaining({ status }));
  });

  it.each([[" folded"], ["no colon"], ["Bad Name: x"], ["X: a\x01b"]])("refuses the header line %j with 400", (line) => {
    expect(() => request(["GET / HTTP/1.1", "Host: a", line])).toThrow(HeadError);
  });

  it("parses a status line", () => {
    expect(parseResponseHead("HTTP/1.1 101 Switching Protocols\r\nUpgrade: UoTLV/1\r\n\r\n")).toMatchObject({ status: 101, reason: "Switching Protocols" });
    expect(parseResponseHead("HTTP/1.0 426\r\n\r\n")).toMatchObject({ status: 426, reason: "" });
    expect(() => parseResponseHead("SSH-2.0-OpenSSH\r\n\r\n")).toThrow(/malformed status line/);
  });
});

describe("UoTLV/1 upgrade", () => {
  it("sends the request ProxyGuard expects", () => {
    const text = formatUpgradeRequest({ path: "/proxyguard?x=1", host: "vpn.example.org:8443", userAgent: "tswg/1.2.3" }).toString();
    expect(text).toBe(
      "GET /proxyguard?x=1 HTTP/1.1\r\nHost: vpn.example.org:8443\r\nUser-Agent: tswg/1.2.3\r\nConnection: Upgrade\r\nUpgrade: UoTLV/1\r\n\r\n",
    );
    expect(() => formatUpgradeRequest({ path: "/a\r\nX: y", host: "h", userAgent: "u" })).toThrow(TypeError);
  });

  it("server: accepts the client's request, header values in any case", () => {
    const own = parseRequestHead(formatUpgradeRequest({ path: "/", host: "h", userAgent: "u" }).toString("latin1"));
    expect(judgeUpgradeRequest(own)).toEqual({ accept: true });
    expect(judgeUpgradeRequest(request(["GET /x HTTP/1.1", "Host: h", "connection: upgrade", "upgrade: uotlv/1"]))).toEqual({ accept: true });
  });

  it.each([
    [["POST / HTTP/1.1", "Host: h", "Connection: Upgrade", "Upgrade: UoTLV/1"], 501],
    [["HEAD / HTTP/1.1", "Host: h"], 501],
    [["GET / HTTP/1.1", "Host: h"], 426],
    [["GET / HTTP/1.1", "Host: h", "Connection: keep-alive, Upgrade", "Upgrade: UoTLV/1"], 426],
    [["GET / HTTP/1.1", "Host: h", "Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Version: 13"], 426],
    [["GET / HTTP/1.1", "Host: h", "Connection: Upgrade", "Upgrade: UoTLV/1, websocket"], 426],
    [["GET / HTTP/1.1", "Host: h", "Connection: Upgrade", "Upgrade: UoTLV/2"], 426],
    [["GET / HTTP/1.1", "Connection: Upgrade", "Upgrade: UoTLV/1"], 400],
  ])("server: refuses %j with %i", (lines, status) => {
    const v = judgeUpgradeRequest(request(lines));
    expect(v).toMatchObject({ accept: false, status });
    if (!v.accept) expect(v.body.length).toBeLessThan(100);
  });

  it("writes 101 with both headers, and short closing error answers", () => {
    const ok = parseResponseHead(formatSwitchingResponse().toString("latin1"));
    expect(() => checkUpgradeResponse(ok)).not.toThrow();
    const e = formatErrorResponse(426, "nope\n").toString();
    expect(e).toMatch(/^HTTP\/1\.1 426 Upgrade Required\r\n/);
    expect(e).toContain("Upgrade: UoTLV/1\r\n");
    expect(e).toContain("Connection: Upgrade, close\r\n");
    expect(e).toMatch(/Content-Length: 5\r\n\r\nnope\n$/);
    expect(formatErrorResponse(501, "x").toString()).toContain("Connection: close\r\n");
  });

  it("client: accepts only 101 with both headers, in any case", () => {
    expect(() => checkUpgradeResponse(parseResponseHead("HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: uotlv/1\r\n\r\n"))).not.toThrow();
    const cases = [
      "HTTP/1.1 200 OK\r\n\r\n",
      "HTTP/1.1 426 Upgrade Required\r\nUpgrade: UoTLV/1\r\nConnection: Upgrade\r\n\r\n",
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: UoTLV/1\r\n\r\n",
      "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n",
      "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    ];
    for (const c of cases) expect(() => checkUpgradeResponse(parseResponseHead(c)), c).toThrow(UpgradeError);
    expect(() => checkUpgradeResponse(parseResponseHead(cases[1]!))).toThrow(/426 Upgrade Required instead of 101/);
  });
});
