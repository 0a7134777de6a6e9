import dgram from "node:dgram";
import { afterEach, describe, expect, it } from "vitest";
import type { Received } from "../../src/bind/bind.js";
import { screensHandshakes } from "../../src/bind/capabilities.js";
import { FairLane } from "../../src/bind/fair-lane.js";
import { ReceiveQueue } from "../../src/bind/receive-queue.js";
import { UdpBind } from "../../src/bind/udp.js";
import { defaultBackend } from "../../src/crypto/index.js";
import { loadNative } from "../../src/native/load.js";
import { CookieChecker, CookieGenerator } from "../../src/noise/cookie.js";
import { parseCookieReply } from "../../src/noise/messages.js";
import { waitFor } from "../helpers/wait.js";

describe("FairLane", () => {
  it("bounds each source's share and takes round-robin over sources", () => {
    const lane = new FairLane<string>(10, 3);
    for (let i = 0; i < 5; i++) lane.push("flood", `f${i}`);
    expect(lane.length).toBe(3);
    expect(lane.hasRoom("flood")).toBe(false);
    expect(lane.hasRoom("other")).toBe(true);
    expect(lane.push("a", "a0")).toBe(true);
    expect(lane.push("b", "b0")).toBe(true);
    expect(lane.push("a", "a1")).toBe(true);
    const order: string[] = [];
    for (let x = lane.shift(); x !== undefined; x = lane.shift()) order.push(x);
    expect(order).toEqual(["f0", "a0", "b0", "f1", "a1", "f2"]);
    expect(lane.length).toBe(0);
  });

  it("refuses everyone once the lane is full", () => {
    const lane = new FairLane<number>(4, 2);
    for (let i = 0; i < 4; i++) expect(lane.push(`s${i}`, i)).toBe(true);
    expect(lane.hasRoom("new")).toBe(false);
    expect(lane.push("new", 9)).toBe(false);
    lane.clear();
    expect(lane.length).toBe(0);
    expect(lane.push("new", 9)).toBe(true);
  });
});

describe("ReceiveQueue lanes", () => {
  it("takes proven handshakes first, then interleaves plain datagrams and handshakes", async () => {
    const q = new ReceiveQueue<string>(64, 8);
    for (let i = 0; i < 5; i++) q.push(`t${i}`);
    for (let i = 0; i < 3; i++) q.pushHandshake(`h${i}`, `10.0.0.${i}`, false);
    q.pushHandshake("p0", "10.0.0.9", true);
    expect(q.length).toBe(9);
    expect(await q.next()).toEqual(["p0", "t0", "h0", "t1", "h1", "t2", "h2", "t3"]);
    expect(await q.next()).toEqual(["t4"]);
  });

  it("gives one source at most 1/32 of the handshake lane and counts the rest as dropped", () => {
    const q = new ReceiveQueue<number>(64, 8);
    let taken = 0;
    for (let i = 0; i < 100; i++) if (q.pushHandshake(i, "flood", false)) taken++;
    expect(taken).toBe(2);
    expect(q.dropped).toBe(98);
    expect(q.hasHandshakeRoom("flood", false)).toBe(false);
    expect(q.hasHandshakeRoom("legit", false)).toBe(true);
    expect(q.hasHandshakeRoom("flood", true)).toBe(true);
  });
});

// ---- the UDP Bind, screening with a real cookie checker ----------------------------------------

const backend = defaultBackend();
const serverKey = backend.generatePrivateKey();
const serverPublic = backend.publicKey(serverKey);

function initiation(gen: CookieGenerator, tag: number): Uint8Array {
  const msg = new Uint8Array(148);
  msg[0] = 1;
  msg[4] = tag;
  msg.fill(0x5a, 8, 116);
  gen.addMacs(msg);
  return msg;
}

const binds: UdpBind[] = [];
const sockets: dgram.Socket[] = [];
afterEach(async () => {
  await Promise.all(binds.splice(0).map((b) => b.close()));
  for (const s of sockets.splice(0)) s.close();
});

async function socketOn(address: string): Promise<dgram.Socket> {
  const s = dgram.createSocket("udp4");
  sockets.push(s);
  await new Promise<void>((r) => s.bind(0, address, () => r()));
  return s;
}

async function sendAll(s: dgram.Socket, msgs: Uint8Array[], port: number): Promise<void> {
  for (const m of msgs) await new Promise<void>((r) => s.send(m, port, "127.0.0.1", () => r()));
}

const kinds = loadNative().addon?.Udp !== undefined ? (["dgram", "native"] as const) : (["dgram"] as const);

describe.each(kinds)("UdpBind screening handshake messages (%s sockets)", (sockets) => {
  it("drops bad mac1, keeps a flood to its rate and share, and queues a cookie holder's message first", async () => {
    const now = 1_000_000;
    const checker = new CookieChecker(backend, () => now);
    checker.setPublicKey(serverPublic);
    const bind = new UdpBind({ address4: "127.0.0.1", ipv6: false, sockets, queueCapacity: 64, batchSize: 64 });
    binds.push(bind);
    expect(screensHandshakes(bind)).toBe(true);
    bind.setHandshakeScreen(checker);
    const { receivers, port } = await bind.open(0);

    const flooder = await socketOn("127.0.0.2");
    const legit = await socketOn("127.0.0.3");
    const stranger = await socketOn("127.0.0.4");
    const floodGen = new CookieGenerator(backend, serverPublic, () => now);
    const legitGen = new CookieGenerator(backend, serverPublic, () => now);
    const wrongGen = new CookieGenerator(backend, backend.publicKey(backend.generatePrivateKey()), () => now);

    // The legitimate sender holds a cookie for its address (as after a cookie reply).
    const first = initiation(legitGen, 0);
    const legitEndpoint = bind.parseEndpoint(`127.0.0.3:${legit.address().port}`);
    const reply = checker.createReply(first, 7, legitEndpoint.dstToBytes());
    expect(legitGen.consumeReply(parseCookieReply(reply!)!)).toBe(true);
    const proven = initiation(legitGen, 1);

    // Nobody takes from the queue while these arrive.
    await sendAll(flooder, Array.from({ length: 600 }, (_, i) => initiation(floodGen, i & 0xff)), port);
    await sendAll(stranger, Array.from({ length: 10 }, () => initiation(wrongGen, 0)), port);
    await sendAll(legit, [initiation(legitGen, 2).fill(0, 132), proven], port);
    const screened = (): number => bind.stats().received + bind.stats().dropped + bind.stats().badMac1 + bind.stats().handshakesOverRate;
    await waitFor(() => screened() === 612, {
      what: "every datagram to be screened",
    });
    const stats = bind.stats();
    expect(stats.badMac1).toBe(10);
    expect(stats.provenHandshakes).toBe(1);
    // The flooder holds two places (1/32 of 64); the rest is over its rate (a burst of 256, then
    // 1000/s) or found its share full. The legitimate sender's two messages got in.
    expect(stats.received).toBe(4);
    expect(stats.handshakesOverRate).toBeGreaterThan(0);
    expect(stats.dropped + stats.handshakesOverRate).toBe(598);

    const batch = (await receivers[0]!()) as Received[];
    const from = batch.map((r) => `${r.endpoint.dstIP()}#${r.data[4]}`);
    expect(from[0]).toBe("127.0.0.3#1");
    expect(from.slice(1).sort()).toEqual(["127.0.0.2#0", "127.0.0.2#1", "127.0.0.3#2"]);
  });

  it("queues everything alike without a screen", async () => {
    const bind = new UdpBind({ address4: "127.0.0.1", ipv6: false, sockets, queueCapacity: 64, batchSize: 64 });
    binds.push(bind);
    const { port } = await bind.open(0);
    const flooder = await socketOn("127.0.0.2");
    const gen = new CookieGenerator(backend, serverPublic, () => 0);
    await sendAll(flooder, Array.from({ length: 40 }, (_, i) => initiation(gen, i)), port);
    await waitFor(() => bind.stats().received === 40, { what: "40 datagrams queued" });
    expect(bind.stats()).toMatchObject({ dropped: 0, badMac1: 0 });
  });
});
