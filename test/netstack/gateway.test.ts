/**
 * The proxies and forwards on their own, over a dialer made of the host's sockets on loopback
 * (the same interface the network stack provides): protocol handling, credentials, malformed
 * input. The tunnel itself is covered by netstack-netns.test.ts.
 */
import { createSocket } from "node:dgram";
import { once } from "node:events";
import { createServer as createHttpServer, get, type Server as HttpServer } from "node:http";
import { connect, createServer, type AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TunnelDialer, TunnelServer, TunnelUdpSocket } from "../../src/gateway/dialer.js";
import { HttpProxyServer } from "../../src/gateway/http-proxy.js";
import { Socks5Server } from "../../src/gateway/socks5.js";
import { silentLogger } from "../../src/log/logger.js";

const loopback: TunnelDialer = {
  connect: (o) => connect({ host: o.host, port: o.port, allowHalfOpen: o.allowHalfOpen }) as Duplex,
  createUdpSocket: () => createSocket("udp4") as unknown as TunnelUdpSocket,
  createServer: (o, cb) => createServer({ allowHalfOpen: o.allowHalfOpen }, cb) as unknown as TunnelServer,
  lookup: async (h) => (h === "localhost" ? "127.0.0.1" : h),
};

/** Sends `bytes` to a fresh connection and resolves with everything the server said before closing. */
async function exchange(port: number, bytes: Uint8Array, timeoutMs = 15_000): Promise<Buffer> {
  const c = connect(port, "127.0.0.1");
  c.on("error", () => {});
  await once(c, "connect");
  c.write(bytes);
  const chunks: Buffer[] = [];
  c.on("data", (d: Buffer) => chunks.push(d));
  const timer = setTimeout(() => c.destroy(new Error("no close")), timeoutMs);
  await once(c, "close");
  clearTimeout(timer);
  return Buffer.concat(chunks);
}

describe("SOCKS5 and HTTP proxy protocol handling", () => {
  let origin: HttpServer;
  let originPort: number;
  let socks: Socks5Server;
  let socksPort: number;
  let socksAuth: Socks5Server;
  let socksAuthPort: number;
  let http: HttpProxyServer;
  let httpPort: number;

  beforeAll(async () => {
    origin = createHttpServer((req, res) => res.end(`hello ${req.url}`));
    origin.listen(0, "127.0.0.1");
    await once(origin, "listening");
    originPort = (origin.address() as AddressInfo).port;
    socks = new Socks5Server({ host: "127.0.0.1", port: 0 }, loopback, silentLogger);
    socksPort = await socks.start();
    socksAuth = new Socks5Server({ host: "127.0.0.1", port: 0, username: "u", password: "p" }, loopback, silentLogger);
    socksAuthPort = await socksAuth.start();
    http = new HttpProxyServer({ host: "127.0.0.1", port: 0 }, loopback, silentLogger);
    httpPort = await http.start();
  });

  afterAll(async () => {
    await socks.close();
    await socksAuth.close();
    await http.close();
    origin.close();
  });

  it("CONNECT with a domain name, then bytes both ways", async () => {
    const port = Buffer.alloc(2);
    port.writeUInt16BE(originPort);
    const name = Buffer.from("localhost");
    const req = Buffer.concat([Buffer.from([5, 1, 0, 5, 1, 0, 3, name.length]), name, port, Buffer.from("GET /x HTTP/1.0\r\n\r\n")]);
    const got = await exchange(socksPort, req);
    expect([...got.subarray(0, 4)]).toEqual([5, 0, 5, 0]);
    expect(got.toString()).toContain("hello /x");
  });

  it("a refused destination gets reply code 5", async () => {
    const free = createServer();
    free.listen(0, "127.0.0.1");
    await once(free, "listening");
    const p = (free.address() as AddressInfo).port;
    free.close();
    const got = await exchange(socksPort, Buffer.from([5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, p >> 8, p & 0xff]));
    expect([...got.subarray(0, 4)]).toEqual([5, 0, 5, 5]);
  });

  it("garbage, overlong greetings, unknown commands and address types are closed and counted", async () => {
    const before = socks.stats.rejected;
    const cases: [Uint8Array, number[] | null][] = [
      [Buffer.from("GET / HTTP/1.1\r\n\r\n"), []],
      [Buffer.from([5, 1, 2]), [5, 0xff]], // only user/password offered, none configured
      [Buffer.from([5, 200, ...new Array<number>(200).fill(9)]), [5, 0xff]], // 200 unknown methods
      [Buffer.from([5, 1, 0, 5, 2, 0, 1, 127, 0, 0, 1, 0, 80]), [5, 0, 5, 7]], // BIND
      [Buffer.from([5, 1, 0, 5, 1, 0, 9]), [5, 0, 5, 8]], // address type 9
      [Buffer.concat([Buffer.from([5, 1, 0, 5, 1, 0, 3, 255]), Buffer.alloc(1100, 0x41)]), null], // handshake over 1 KiB
    ];
    for (const [input, expected] of cases) {
      const got = await exchange(socksPort, input);
      if (expected !== null) expect([...got.subarray(0, expected.length)]).toEqual(expected);
    }
    expect(socks.stats.rejected - before).toBe(cases.length);
  });

  it("a client that stops mid-handshake is closed after the timeout, not kept", async () => {
    const got = await exchange(socksPort, Buffer.from([5, 1, 0, 5, 1, 0, 1, 127]), 20_000);
    expect([...got]).toEqual([5, 0]);
  }, 25_000);

  it("user/password: right ones pass, wrong ones get status 1", async () => {
    const port = Buffer.from([originPort >> 8, originPort & 0xff]);
    const ok = await exchange(socksAuthPort, Buffer.concat([Buffer.from([5, 1, 2, 1, 1, 0x75, 1, 0x70, 5, 1, 0, 1, 127, 0, 0, 1]), port, Buffer.from("GET /a HTTP/1.0\r\n\r\n")]));
    expect([...ok.subarray(0, 6)]).toEqual([5, 2, 1, 0, 5, 0]);
    expect(ok.toString()).toContain("hello /a");
    const bad = await exchange(socksAuthPort, Buffer.from([5, 1, 2, 1, 1, 0x75, 1, 0x71]));
    expect([...bad]).toEqual([5, 2, 1, 1]);
    const none = await exchange(socksAuthPort, Buffer.from([5, 1, 0]));
    expect([...none]).toEqual([5, 0xff]);
  });

  it("HTTP proxy: plain forwarding and CONNECT", async () => {
    const body = await new Promise<string>((resolve, reject) => {
      get({ host: "127.0.0.1", port: httpPort, path: `http://127.0.0.1:${originPort}/plain` }, (res) => {
        let s = "";
        res.on("data", (d: Buffer) => (s += d.toString()));
        res.on("end", () => resolve(s));
      }).on("error", reject);
    });
    expect(body).toBe("hello /plain");
    const got = await exchange(httpPort, Buffer.from(`CONNECT 127.0.0.1:${originPort} HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.0\r\n\r\n`));
    expect(got.toString()).toMatch(/^HTTP\/1\.1 200 Connection Established\r\n\r\nHTTP\/1\.1 200 OK[\s\S]*hello \/c$/u);
  });

  it("HTTP proxy: garbage gets 400, relative URLs are refused", async () => {
    const got = await exchange(httpPort, Buffer.from("\x00\x01\x02 garbage\r\n\r\n"));
    expect(got.toString()).toMatch(/^HTTP\/1\.1 400/u);
    const rel = await exchange(httpPort, Buffer.from("GET /relative HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    expect(rel.toString()).toMatch(/^HTTP\/1\.1 400/u);
  });
});
