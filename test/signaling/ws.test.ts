/**
 * The embedded WebSocket signaling server with its client, on loopback: exchange through sealed
 * channels, reconnect after a server restart, TLS with a private CA, the offline queue, rate and
 * size limits, and misbehaving raw clients being cut off without harming others.
 */
import http from "node:http";
import net from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { WebSocket, WebSocketServer } from "ws";
import { SignalingUnavailableError } from "../../src/signaling/errors.js";
import { addressGroup, SignalingServer, type SignalingServerOptions } from "../../src/signaling/ws-server.js";
import { WebSocketTransport, parseWebSocketUrl, type WebSocketTransportOptions } from "../../src/signaling/ws-client.js";
import { FrameType, decodeServerFrame, encodeSend, encodeSubscribe, subscriptionProof } from "../../src/signaling/ws-protocol.js";
import { sleep, waitFor } from "../helpers/wait.js";
import { backend, channelNode, generations, introduce, makeTestPki, restart, type ChannelNode } from "./helpers.js";

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function server(opts: SignalingServerOptions = {}): Promise<SignalingServer> {
  const s = new SignalingServer({ host: "127.0.0.1", ...opts });
  cleanups.push(() => s.close());
  await s.start();
  return s;
}

const fast: Partial<WebSocketTransportOptions> = { minBackoffMs: 100, maxBackoffMs: 400, connectTimeoutMs: 5000 };

function wsNode(url: string, extra: Partial<WebSocketTransportOptions> = {}): ChannelNode {
  const n = channelNode((privateKey) => new WebSocketTransport({ url, privateKey, ...fast, ...extra }));
  cleanups.push(() => n.channel.close());
  return n;
}

async function connectedPair(url: string, extra: Partial<WebSocketTransportOptions> = {}): Promise<[ChannelNode, ChannelNode]> {
  const a = wsNode(url, extra);
  const b = wsNode(url, extra);
  introduce(a, b);
  await Promise.all([a.channel.start(), b.channel.start()]);
  return [a, b];
}

async function exchange(a: ChannelNode, b: ChannelNode, gen: number): Promise<void> {
  await a.channel.send(b.pub, restart(gen));
  await b.channel.send(a.pub, restart(gen));
  await waitFor(() => generations(a).includes(gen) && generations(b).includes(gen), { what: `exchange ${gen}`, timeoutMs: 5000 });
}

/** A raw client that has done the HELLO / SUBSCRIBE dance for a fresh key (or not, with `subscribe: false`). */
async function rawClient(url: string, subscribe = true): Promise<{ ws: WebSocket; closed: Promise<number>; pub: Uint8Array }> {
  const ws = new WebSocket(url);
  const closed = new Promise<number>((resolve) => ws.on("close", (code) => resolve(code)));
  ws.on("error", () => {});
  cleanups.push(() => ws.terminate());
  const priv = backend.generatePrivateKey();
  const pub = backend.publicKey(priv);
  await new Promise<void>((resolve, reject) => {
    ws.once("error", reject);
    ws.once("message", (data: Buffer) => {
      const hello = decodeServerFrame(data);
      if (hello?.type !== "hello") return reject(new Error("no hello"));
      if (!subscribe) return resolve();
      ws.send(encodeSubscribe(pub, subscriptionProof(backend, priv, hello.serverKey, hello.nonce, pub, hello.serverKey)));
      ws.once("message", (d: Buffer) => (decodeServerFrame(d)?.type === "subscribed" ? resolve() : reject(new Error("not subscribed"))));
    });
  });
  return { ws, closed, pub };
}

describe("WebSocket signaling", () => {
  it("two clients exchange sealed messages through the server", async () => {
    const s = await server();
    const [a, b] = await connectedPair(s.url);
    const msg = { type: "credentials" as const, generation: 1, ufrag: "abcd", pwd: "0123456789abcdefghijkl" };
    await a.channel.send(b.pub, msg);
    await waitFor(() => b.got.length === 1, { what: "b to receive" });
    expect(b.got[0]!.msg).toEqual(msg);
    expect(Buffer.from(b.got[0]!.from).equals(Buffer.from(a.pub))).toBe(true);
    await exchange(a, b, 2);
    expect(s.stats).toMatchObject({ connections: 2, subscribedKeys: 2, routed: 3 });
  });

  it("clients reconnect after a server restart and exchange again", async () => {
    const s1 = await server();
    const port = s1.port;
    const [a, b] = await connectedPair(s1.url, { sendWaitMs: 300 });
    await exchange(a, b, 1);
    const downs: string[] = [];
    a.channel.on("disconnected", () => downs.push("a"));
    b.channel.on("disconnected", () => downs.push("b"));
    await s1.close();
    await waitFor(() => downs.length === 2, { what: "both clients to notice" });
    // a send while the server is away waits, then fails (ICE agents retry)
    await expect(a.channel.send(b.pub, restart(99))).rejects.toBeInstanceOf(SignalingUnavailableError);
    const s2 = await server({ port });
    await waitFor(() => a.channel.connected && b.channel.connected, { what: "reconnection", timeoutMs: 5000 });
    await exchange(a, b, 2);
    expect(s2.stats.subscribedKeys).toBe(2);
  }, 20_000);

  it("a send during a short outage waits for the reconnection", async () => {
    const s1 = await server();
    const port = s1.port;
    const [a, b] = await connectedPair(s1.url, { sendWaitMs: 5000 });
    await s1.close();
    await waitFor(() => !a.channel.connected, { what: "a to notice" });
    const sending = a.channel.send(b.pub, restart(5));
    await sleep(200);
    await server({ port });
    await sending;
    await waitFor(() => generations(b).includes(5), { what: "the delayed message", timeoutMs: 5000 });
  }, 20_000);

  it("wss:// with a private CA", async () => {
    const pki = makeTestPki();
    cleanups.push(() => pki.remove());
    const s = await server({ tls: { cert: pki.cert, key: pki.key } });
    expect(s.url).toMatch(/^wss:\/\/127\.0\.0\.1:\d+\/$/);
    const [a, b] = await connectedPair(s.url, { ca: pki.ca });
    await exchange(a, b, 1);
    // Without the CA the system trust store refuses the certificate.
    const untrusted = wsNode(s.url, { connectTimeoutMs: 500 });
    await expect(untrusted.channel.start()).rejects.toBeInstanceOf(SignalingUnavailableError);
  });

  it("holds blobs briefly for a recipient that is not connected", async () => {
    const s = await server({ holdMs: 5000 });
    const a = wsNode(s.url);
    const b = wsNode(s.url);
    introduce(a, b);
    await a.channel.start();
    await a.channel.send(b.pub, restart(1));
    await waitFor(() => s.stats.held === 1, { what: "the held blob" });
    await b.channel.start();
    await waitFor(() => generations(b).includes(1), { what: "delivery on subscribe" });
    expect(s.stats.held).toBe(0);
  });

  it("the offline queue expires and is bounded", async () => {
    let now = 1_000_000;
    const s = await server({ holdMs: 1000, holdPerKey: 3, now: () => now });
    const a = wsNode(s.url);
    const b = wsNode(s.url);
    introduce(a, b);
    await a.channel.start();
    for (let i = 0; i < 5; i++) await a.channel.send(b.pub, restart(i));
    await waitFor(() => s.stats.droppedNoRecipient === 2, { what: "two blobs over the per-key bound" });
    expect(s.stats.held).toBe(3);
    now += 2000;
    await b.channel.start();
    await sleep(200);
    expect(b.got).toHaveLength(0); // expired
  });

  it("rate-limits each connection", async () => {
    const s = await server({ ratePerSecond: 1, rateBurst: 3 });
    const [a, b] = await connectedPair(s.url);
    for (let i = 0; i < 10; i++) await a.channel.send(b.pub, restart(i));
    await waitFor(() => s.stats.droppedRateLimited >= 6, { what: "drops" });
    await sleep(100);
    expect(generations(b)).toEqual([0, 1, 2]);
  });

  it("plain HTTP gets 426 and a hint", async () => {
    const s = await server();
    const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      http.get(`http://127.0.0.1:${s.port}/`, (r) => {
        let body = "";
        r.on("data", (d: Buffer) => (body += d.toString()));
        r.on("end", () => resolve({ status: r.statusCode ?? 0, body }));
      }).on("error", reject);
    });
    expect(res.status).toBe(426);
    expect(res.body).toMatch(/signaling/);
  });

  it("garbage, oversized and out-of-order frames get the sender cut off; others are unharmed", async () => {
    const s = await server({ maxFrameBytes: 4096 });
    const [a, b] = await connectedPair(s.url);

    const text = await rawClient(s.url);
    text.ws.send("hello?");
    expect(await text.closed).toBe(1003);

    const unknown = await rawClient(s.url);
    unknown.ws.send(Uint8Array.of(0x7f, 1, 2, 3));
    expect(await unknown.closed).toBe(1008);

    const big = await rawClient(s.url);
    big.ws.send(encodeSend(a.pub, new Uint8Array(5000)));
    expect(await big.closed).toBe(1009);

    const early = await rawClient(s.url, false);
    early.ws.send(encodeSend(a.pub, new Uint8Array(10)));
    expect(await early.closed).toBe(1008);

    const twice = await rawClient(s.url);
    twice.ws.send(encodeSubscribe(twice.pub, new Uint8Array(32)));
    expect(await twice.closed).toBe(1008);

    // A subscription with a wrong proof (here: for b's key, without b's private key) is refused.
    const thief = await rawClient(s.url, false);
    const reason = new Promise<string>((resolve) => thief.ws.on("message", (d: Buffer) => resolve(decodeServerFrame(d)?.type === "error" ? "error" : "other")));
    thief.ws.send(encodeSubscribe(b.pub, new Uint8Array(32).fill(7)));
    expect(await reason).toBe("error");
    expect(await thief.closed).toBe(1008);

    // Random junk over a raw TCP connection (not even HTTP).
    const sock = net.connect(s.port, "127.0.0.1");
    sock.on("error", () => {});
    let answer = "";
    sock.on("data", (d: Buffer) => (answer += d.toString("latin1")));
    sock.write(Buffer.from("\x00\x01garbage\r\n\r\n"));
    await new Promise<void>((resolve) => sock.on("close", () => resolve()));
    expect(answer).toMatch(/^HTTP\/1\.1 400/);
    expect(s.stats.protocolErrors).toBeGreaterThanOrEqual(5);
    await exchange(a, b, 7);
    expect(a.channel.connected && b.channel.connected).toBe(true);
  });

  it("drops connections that never subscribe", async () => {
    const s = await server({ subscribeTimeoutMs: 200 });
    const idle = await rawClient(s.url, false);
    const t0 = Date.now();
    expect(await idle.closed).toBe(1008);
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it("drops connections that stop answering pings", async () => {
    const s = await server({ pingIntervalMs: 150, subscribeTimeoutMs: 20_000 });
    // A TCP client that completes the WebSocket handshake, then reads but never answers.
    const sock = net.connect(s.port, "127.0.0.1");
    sock.on("error", () => {});
    cleanups.push(() => void sock.destroy());
    sock.on("data", () => {});
    const closed = new Promise<void>((resolve) => sock.on("close", () => resolve()));
    sock.write(
      "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    );
    await waitFor(() => s.stats.connections === 1, { what: "the silent connection" });
    const t0 = Date.now();
    await closed;
    expect(Date.now() - t0).toBeLessThan(2000); // long before the 20 s subscription deadline
    await waitFor(() => s.stats.connections === 0, { what: "the server to forget it" });
  });

  it("a client notices a server that went silent and reconnects", async () => {
    let connections = 0;
    const http1 = http.createServer();
    const wss = new WebSocketServer({ server: http1, autoPong: false });
    wss.on("connection", (ws) => {
      connections++;
      ws.send(Uint8Array.of(FrameType.Hello, 1, ...backend.publicKey(backend.generatePrivateKey()), ...new Uint8Array(32)));
      ws.on("message", () => ws.send(Uint8Array.of(FrameType.Subscribed)));
    });
    await new Promise<void>((resolve) => http1.listen(0, "127.0.0.1", () => resolve()));
    cleanups.push(() => new Promise<void>((resolve) => {
      for (const c of wss.clients) c.terminate();
      wss.close();
      http1.close(() => resolve());
    }));
    const port = (http1.address() as net.AddressInfo).port;
    const n = wsNode(`ws://127.0.0.1:${port}/`, { pingIntervalMs: 100 });
    await n.channel.start();
    await waitFor(() => connections >= 2, { what: "a reconnection after silence", timeoutMs: 3000 });
  });

  it("a connection that breaks after working is dialled again at once; a server's close waits the back-off", async () => {
    let connections = 0;
    const http1 = http.createServer();
    const wss = new WebSocketServer({ server: http1 });
    const subscribed: WebSocket[] = [];
    wss.on("connection", (ws) => {
      connections++;
      ws.send(Uint8Array.of(FrameType.Hello, 1, ...backend.publicKey(backend.generatePrivateKey()), ...new Uint8Array(32)));
      ws.on("message", () => {
        ws.send(Uint8Array.of(FrameType.Subscribed));
        subscribed.push(ws);
      });
    });
    await new Promise<void>((resolve) => http1.listen(0, "127.0.0.1", () => resolve()));
    cleanups.push(() => new Promise<void>((resolve) => {
      for (const c of wss.clients) c.terminate();
      wss.close();
      http1.close(() => resolve());
    }));
    const port = (http1.address() as net.AddressInfo).port;
    // A back-off far longer than the waits below: only the immediate redial can reconnect in time.
    const n = wsNode(`ws://127.0.0.1:${port}/`, { minBackoffMs: 60_000, maxBackoffMs: 60_000, stableForMs: 200 });
    await n.channel.start();
    await sleep(300);
    subscribed.at(-1)!.terminate(); // no close frame: the client sees 1006
    await waitFor(() => connections === 2 && n.channel.connected, { what: "an immediate redial", timeoutMs: 5000 });
    await sleep(300);
    subscribed.at(-1)!.close(1001, "going away"); // a close frame: back-off
    await sleep(1500);
    expect(connections).toBe(2);
    expect(n.channel.connected).toBe(false);
  });

  it("URLs and keys are checked up front", () => {
    expect(() => parseWebSocketUrl("http://x/")).toThrow(/ws:\/\/ or wss:\/\//);
    expect(() => parseWebSocketUrl("ws://u:p@x/")).toThrow(/user name/);
    expect(() => parseWebSocketUrl("not a url")).toThrow(/invalid/);
    expect(parseWebSocketUrl("wss://example.org:8443/sig").pathname).toBe("/sig");
    expect(() => new WebSocketTransport({ url: "ws://127.0.0.1:1/", privateKey: new Uint8Array(3) })).toThrow(/private key/);
  });

  it("open() rejects for an unreachable server but keeps trying", async () => {
    const probe = await server();
    const port = probe.port;
    await probe.close();
    const n = wsNode(`ws://127.0.0.1:${port}/`, { connectTimeoutMs: 300 });
    await expect(n.channel.start()).rejects.toThrow(/not reachable/);
    await server({ port });
    await waitFor(() => n.channel.connected, { what: "the late connection", timeoutMs: 5000 });
  });
});

describe("WebSocket signaling server limits", () => {
  let s: SignalingServer;
  beforeAll(async () => {
    s = new SignalingServer({ host: "127.0.0.1", maxConnections: 2, maxSubscribersPerKey: 1 });
    await s.start();
  });
  afterAll(async () => {
    await s?.close();
  });

  it("refuses connections beyond the limit and replaces older subscriptions of a key", async () => {
    const one = await rawClient(s.url);
    const two = await rawClient(s.url, false);
    const three = new WebSocket(s.url);
    three.on("error", () => {});
    cleanups.push(() => three.terminate());
    expect(await new Promise<number>((resolve) => three.on("close", (c) => resolve(c)))).toBe(1013);
    two.ws.terminate();
    await two.closed;
    await waitFor(() => s.stats.connections === 1, { what: "room for one more" });
    // The same key subscribing again takes over from the first connection.
    const priv = backend.generatePrivateKey();
    const t1 = new WebSocketTransport({ url: s.url, privateKey: priv, ...fast });
    cleanups.push(() => t1.close());
    await one.ws.close();
    await one.closed;
    await t1.open(backend.publicKey(priv), () => {});
    const t2 = new WebSocketTransport({ url: s.url, privateKey: priv, ...fast, minBackoffMs: 5000 });
    cleanups.push(() => t2.close());
    const dropped = new Promise<void>((resolve) => t1.on("disconnected", () => resolve()));
    await t2.open(backend.publicKey(priv), () => {});
    await dropped;
    expect(t2.connected).toBe(true);
  });
});

describe("WebSocket signaling server: idle TCP connections", () => {
  /** Opens a TCP connection that never sends a byte; resolves once connected, with when it closed. */
  async function idle(port: number, localAddress = "127.0.0.1"): Promise<{ socket: net.Socket; closed: Promise<void> }> {
    const socket = net.connect({ host: "127.0.0.1", port, localAddress });
    socket.on("error", () => {});
    cleanups.push(() => void socket.destroy());
    const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    await new Promise<void>((resolve) => socket.once("connect", () => resolve()).once("close", () => resolve()));
    return { socket, closed };
  }
  const isClosed = async (c: { closed: Promise<void> }) => Promise.race([c.closed.then(() => true), sleep(100).then(() => false)]);

  it("counts them against a limit, cuts them after the handshake timeout, and serves real clients meanwhile", async () => {
    const s = await server({ maxPendingHandshakes: 8, handshakeTimeoutMs: 600, maxConnections: 100 });
    const flood = [];
    for (let i = 0; i < 30; i++) flood.push(await idle(s.port));
    // Beyond the pending limit, new connections are cut at once.
    const states = await Promise.all(flood.map(isClosed));
    expect(states.filter((c) => !c).length).toBe(8);
    expect(s.stats.refusedConnections).toBe(22);
    // The ones let in are cut when their time is up ...
    await Promise.all(flood.map((c) => c.closed));
    expect(s.stats.handshakeTimeouts).toBe(8);
    // ... and a real client then gets through.
    const [a, b] = await connectedPair(s.url);
    await a.channel.send(b.pub, { type: "credentials", generation: 1, ufrag: "abcd", pwd: "0123456789abcdefghijkl" });
    await waitFor(() => b.got.length === 1, { what: "the message" });
  });

  it("counts an IPv6 /64 as one address", () => {
    expect(addressGroup("192.0.2.7")).toBe("192.0.2.7");
    expect(addressGroup("::ffff:192.0.2.7")).toBe("192.0.2.7");
    expect(addressGroup("2001:db8:1:2:aaaa::1")).toBe("2001:db8:1:2::/64");
    expect(addressGroup("2001:DB8:1:2:ffff:ffff:ffff:ffff")).toBe("2001:db8:1:2::/64");
    expect(addressGroup("2001:db8::1")).toBe("2001:db8:0:0::/64");
    expect(addressGroup("::1")).toBe("0:0:0:0::/64");
    expect(addressGroup("fe80::1%eth0")).toBe("fe80:0:0:0::/64");
    expect(addressGroup("2001:db8:1:2:3:4:5:6")).not.toBe(addressGroup("2001:db8:1:3:3:4:5:6"));
  });

  it("caps the connections of one address, not of the others", async () => {
    const s = await server({ maxConnectionsPerIp: 3, handshakeTimeoutMs: 10_000 });
    const mine = [];
    for (let i = 0; i < 5; i++) mine.push(await idle(s.port));
    expect((await Promise.all(mine.map(isClosed))).filter((c) => !c).length).toBe(3);
    // Another loopback address is somebody else.
    const other = await idle(s.port, "127.0.0.2");
    expect(await isClosed(other)).toBe(false);
    const c = await rawClient(s.url).catch((e: unknown) => e);
    expect(c).toBeInstanceOf(Error);
    // Freed slots are usable again.
    mine[0]!.socket.destroy();
    await mine[0]!.closed;
    await waitFor(async () => (await rawClient(s.url).then(() => true, () => false)), { what: "a connection once a slot is free", timeoutMs: 5000 });
  });
});
