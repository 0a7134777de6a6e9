/**
 * The standalone proxy pair in process, on loopback, with UDP sockets standing in for
 * WireGuard; and the server's answers to bad input, which must never affect other clients.
 */
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { encodeFrames } from "../../src/uotlv/frame.js";
import { ProxyguardClient } from "../../src/uotlv/proxy-client.js";
import { ProxyguardServer } from "../../src/uotlv/proxy-server.js";
import { waitFor } from "../helpers/wait.js";
import { rawExchange, udpEcho, udpSink, UPGRADE_REQUEST } from "./helpers.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A proxy server on 127.0.0.1 relaying to a UDP echo ("WireGuard"). */
async function relayToEcho(opts: { headTimeoutMs?: number; idleTimeoutMs?: number } = {}) {
  const echo = await udpEcho();
  cleanups.push(() => echo.close());
  const server = new ProxyguardServer({ listenHost: "127.0.0.1", listenPort: 0, toHost: "127.0.0.1", toPort: echo.port, ...opts });
  const port = await server.start();
  cleanups.push(() => server.close());
  return { echo, server, port };
}

/** A connected, upgraded raw socket; resolves with it and a list collecting what it receives. */
async function upgradedSocket(port: number): Promise<{ sock: net.Socket; got: Buffer[] }> {
  const sock = net.connect({ port, host: "127.0.0.1" });
  const got: Buffer[] = [];
  await new Promise<void>((resolve, reject) => {
    let head = "";
    const onData = (d: Buffer): void => {
      head += d.toString("latin1");
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      if (!head.startsWith("HTTP/1.1 101 ")) reject(new Error(`not upgraded: ${head}`));
      sock.off("data", onData);
      const rest = Buffer.from(head.slice(end + 4), "latin1");
      if (rest.length > 0) got.push(rest);
      sock.on("data", (x: Buffer) => got.push(x));
      resolve();
    };
    sock.on("data", onData);
    sock.on("error", reject);
    sock.on("connect", () => sock.write(UPGRADE_REQUEST));
  });
  cleanups.push(() => void sock.destroy());
  return { sock, got };
}

/** Sends one datagram through an upgraded socket and waits for its echo. */
async function roundTrip(port: number, text: string): Promise<void> {
  const { sock, got } = await upgradedSocket(port);
  sock.write(encodeFrames([Buffer.from(text)]));
  await waitFor(() => Buffer.concat(got).subarray(2).toString() === text, { what: `the echo of ${text}`, timeoutMs: 3000 });
  sock.destroy();
}

describe("proxyguard client and server in process", () => {
  it("relays WireGuard's datagrams both ways, each TCP client through its own UDP socket", async () => {
    const { echo, server, port } = await relayToEcho();
    // Two "WireGuard" sockets, each with its own client pointing at the server.
    const wgs: Array<{ wg: Awaited<ReturnType<typeof udpSink>>; client: ProxyguardClient; clientPort: number }> = [];
    for (let i = 0; i < 2; i++) {
      const wg = await udpSink();
      cleanups.push(() => wg.close());
      const client = new ProxyguardClient({ to: `http://127.0.0.1:${port}/proxyguard`, listenPort: 0, forwardPort: wg.port });
      const clientPort = await client.start();
      cleanups.push(() => client.close());
      wgs.push({ wg, client, clientPort });
    }
    expect(server.clientCount).toBe(0); // nothing connects before WireGuard sends
    for (const [i, w] of wgs.entries()) {
      for (let n = 0; n < 5; n++) w.wg.sock.send(Buffer.from(`wg${i}-${n}`), w.clientPort, "127.0.0.1");
    }
    await waitFor(() => wgs.every((w) => w.wg.got.length === 5), { what: "all echoes back at both WireGuards", timeoutMs: 5000 });
    expect(wgs[0]!.wg.got.map(String)).toEqual(["wg0-0", "wg0-1", "wg0-2", "wg0-3", "wg0-4"]);
    expect(wgs[1]!.wg.got.map(String)).toEqual(["wg1-0", "wg1-1", "wg1-2", "wg1-3", "wg1-4"]);
    expect(echo.sources.size).toBe(2); // two distinct UDP source ports at "WireGuard"
    expect(server.clientCount).toBe(2);
    expect(server.stats).toMatchObject({ toWireguard: 10, fromWireguard: 10 });
  });

  it("refuses a port that is taken", async () => {
    const wg = await udpSink();
    cleanups.push(() => wg.close());
    const client = new ProxyguardClient({ to: "http://127.0.0.1:1/", listenPort: wg.port });
    cleanups.push(() => client.close());
    await expect(client.start()).rejects.toThrow(/EADDRINUSE/);
  });
});

describe("proxyguard server and bad input", () => {
  it("answers a plain HTTP request with 426 and a short text, then closes", async () => {
    const { port } = await relayToEcho();
    const r = await rawExchange(port, ["GET / HTTP/1.1\r\nHost: x\r\n\r\n"]);
    expect(r.text).toMatch(/^HTTP\/1\.1 426 Upgrade Required\r\n/);
    expect(r.text).toContain("Upgrade: UoTLV/1\r\n");
    expect(r.text).toMatch(/\r\n\r\nthe Connection header must be "Upgrade"\n$/);
    expect(r.closed).toBe(true);
  });

  it("answers other methods with 501, WebSocket upgrades with 426, garbage with 400, huge heads with 431", async () => {
    const { port, server } = await relayToEcho();
    const post = await rawExchange(port, ["POST /proxyguard HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: UoTLV/1\r\nContent-Length: 3\r\n\r\nabc"]);
    expect(post.text).toMatch(/^HTTP\/1\.1 501 Not Implemented\r\n[^]*only GET/);
    const ws = await rawExchange(port, [
      "GET /proxyguard HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    ]);
    expect(ws.text).toMatch(/^HTTP\/1\.1 426 [^]*the Upgrade header must be "UoTLV\/1"/);
    const keepAlive = await rawExchange(port, ["GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\nUpgrade: UoTLV/1\r\n\r\n"]);
    expect(keepAlive.text).toMatch(/^HTTP\/1\.1 426 /);
    const garbage = await rawExchange(port, ["\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"]);
    expect(garbage.text).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    const huge = await rawExchange(port, ["GET / HTTP/1.1\r\n", "X-Pad: " + "a".repeat(20_000)]);
    expect(huge.text).toMatch(/^HTTP\/1\.1 431 /);
    for (const r of [post, ws, keepAlive, garbage, huge]) expect(r.closed).toBe(true);
    expect(server.uotlv.stats).toMatchObject({ refused: 5, upgraded: 0 });
    expect(server.clientCount).toBe(0);
    await roundTrip(port, "still serving");
  });

  it("closes a connection that sends an oversized frame, and only that one", async () => {
    const { port, server } = await relayToEcho();
    const good = await upgradedSocket(port);
    const bad = await upgradedSocket(port);
    const closed = new Promise<void>((r) => bad.sock.on("close", () => r()));
    bad.sock.write(Buffer.concat([encodeFrames([Buffer.from("fine")]), Buffer.from([0xff, 0xff]), Buffer.alloc(100)]));
    await closed;
    expect(server.stats.toWireguard).toBe(1); // what came before the bad frame was relayed
    good.sock.write(encodeFrames([Buffer.from("other client")]));
    await waitFor(() => Buffer.concat(good.got).subarray(2).toString() === "other client", { what: "the good client's echo" });
    await waitFor(() => server.clientCount === 1, { what: "the bad client to be gone" });
  });

  it("drops a truncated frame when the client goes away in its middle", async () => {
    const { port, server, echo } = await relayToEcho();
    const before = server.stats.toWireguard;
    const r = await rawExchange(port, [UPGRADE_REQUEST, Buffer.from([0x03, 0xe8]), Buffer.alloc(10, 1)], { end: true, gapMs: 20 });
    expect(r.text).toMatch(/^HTTP\/1\.1 101 Switching Protocols\r\n/);
    expect(r.closed).toBe(true);
    expect(server.stats.toWireguard).toBe(before);
    expect(echo.sources.size).toBe(0);
    await roundTrip(port, "after truncation");
  });

  it("disconnects a client that sends nothing, without an answer", async () => {
    const { port, server } = await relayToEcho({ headTimeoutMs: 400 });
    const r = await rawExchange(port, [], { waitMs: 3000 });
    expect(r.closed).toBe(true);
    expect(r.bytes.length).toBe(0);
    expect(r.ms).toBeGreaterThan(350);
    expect(r.ms).toBeLessThan(2500);
    // one that stops in the middle of its head fares the same
    const half = await rawExchange(port, ["GET /proxyguard HTTP/1.1\r\nHost: x\r\n"], { waitMs: 3000 });
    expect(half.closed).toBe(true);
    expect(server.uotlv.stats.timedOut).toBe(2);
  });

  it("tears down an upgraded client that goes quiet", async () => {
    const { port, server } = await relayToEcho({ idleTimeoutMs: 300 });
    const { sock } = await upgradedSocket(port);
    const closed = new Promise<number>((r) => {
      const t0 = performance.now();
      sock.on("close", () => r(performance.now() - t0));
    });
    expect(await closed).toBeGreaterThan(250);
    expect(server.clientCount).toBe(0);
  });

  it("keeps serving with 1000 idle clients connected", async () => {
    const { port, server } = await relayToEcho();
    const socks: net.Socket[] = [];
    cleanups.push(() => socks.forEach((s) => s.destroy()));
    // Half of them upgraded and silent, half connected without finishing a request.
    for (let i = 0; i < 1000; i += 50) {
      await Promise.all(
        Array.from({ length: 50 }, (_, j) => {
          const s = net.connect({ port, host: "127.0.0.1" });
          socks.push(s);
          s.on("error", () => {});
          return new Promise<void>((r) =>
            s.on("connect", () => {
              s.write((i + j) % 2 === 0 ? UPGRADE_REQUEST : "GET / HTTP/1.1\r\n");
              r();
            }),
          );
        }),
      );
    }
    await waitFor(() => server.uotlv.stats.accepted >= 1000 && server.clientCount === 500, { what: "1000 connections, 500 upgraded", timeoutMs: 10_000 });
    await roundTrip(port, "one more");
    expect(socks.every((s) => !s.destroyed)).toBe(true);
  }, 30_000);
});
