/** Picking a backend from a signaling URL, and the reconnect back-off schedule. */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { backoffDelay } from "../../src/signaling/backoff.js";
import { createTransport } from "../../src/signaling/create-transport.js";
import { SignalingUrlError } from "../../src/signaling/errors.js";
import { MemoryHub, MemoryTransport } from "../../src/signaling/memory.js";
import { NatsTransport } from "../../src/signaling/nats.js";
import { SealedChannel } from "../../src/signaling/channel.js";
import { WebSocketTransport } from "../../src/signaling/ws-client.js";
import { waitFor } from "../helpers/wait.js";
import { backend, makeTestPki } from "./helpers.js";

const toClose: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(toClose.splice(0).map((t) => t.close()));
});

describe("createTransport", () => {
  const privateKey = backend.generatePrivateKey();

  it("picks the backend by scheme", () => {
    const ws = createTransport("ws://127.0.0.1:1/", { privateKey });
    const wss = createTransport("WSS://example.org/sig", { privateKey });
    const nats = createTransport("nats://127.0.0.1:4222,nats://127.0.0.2:4222");
    const natsTls = createTransport("tls://127.0.0.1:4222");
    const mem = createTransport("memory://x", { memoryHub: new MemoryHub() });
    toClose.push(ws, wss, nats, natsTls, mem);
    expect(ws).toBeInstanceOf(WebSocketTransport);
    expect(wss).toBeInstanceOf(WebSocketTransport);
    expect(nats).toBeInstanceOf(NatsTransport);
    expect((nats as NatsTransport).servers.servers).toEqual(["127.0.0.1:4222", "127.0.0.2:4222"]);
    expect((natsTls as NatsTransport).servers.tls).toBe(true);
    expect(mem).toBeInstanceOf(MemoryTransport);
  });

  it("gives clear errors for unknown schemes and bad URLs", () => {
    expect(() => createTransport("http://x/", { privateKey })).toThrow(SignalingUrlError);
    expect(() => createTransport("http://x/", { privateKey })).toThrow(/unknown signaling URL scheme "http:"/);
    expect(() => createTransport("example.org:8443")).toThrow(/unknown signaling URL scheme|no scheme/);
    expect(() => createTransport("just words")).toThrow(/no scheme/);
    expect(() => createTransport("ws://a/,ws://b/", { privateKey })).toThrow(/single URL/);
    expect(() => createTransport("ws://a/")).toThrow(/private key/);
    expect(() => createTransport("memory://bad name")).toThrow(/memory:\/\/name/);
    expect(() => createTransport("ws://a/", { privateKey, caFile: "/nonexistent/ca.pem" })).toThrow(/ENOENT/);
  });

  it("reads a CA file and refuses one without certificates", () => {
    const pki = makeTestPki();
    try {
      const t = createTransport("wss://127.0.0.1:1/", { privateKey, caFile: pki.caFile });
      toClose.push(t);
      const notPem = join(pki.dir, "ext.cnf");
      writeFileSync(notPem, "not a certificate\n");
      expect(() => createTransport("wss://127.0.0.1:1/", { privateKey, caFile: notPem })).toThrow(/no PEM certificate/);
    } finally {
      pki.remove();
    }
  });

  it("memory://name transports of one process meet on the same hub", async () => {
    MemoryHub.removeNamed("create-test");
    const ka = backend.generatePrivateKey();
    const kb = backend.generatePrivateKey();
    const a = new SealedChannel({ privateKey: ka, transport: createTransport("memory://create-test"), peers: [backend.publicKey(kb)] });
    const b = new SealedChannel({ privateKey: kb, transport: createTransport("memory://create-test"), peers: [backend.publicKey(ka)] });
    toClose.push(a, b);
    const got: number[] = [];
    b.on("message", (_from, msg) => got.push(msg.generation));
    await Promise.all([a.start(), b.start()]);
    await a.send(b.publicKey, { type: "restart", generation: 12 });
    await waitFor(() => got.length === 1, { what: "delivery" });
    expect(got).toEqual([12]);
    MemoryHub.removeNamed("create-test");
  });
});

describe("backoffDelay", () => {
  it("doubles from 1 s to 30 s, jittered within the upper half", () => {
    const lo = (n: number) => backoffDelay(n, { random: () => 0 });
    const hi = (n: number) => backoffDelay(n, { random: () => 1 });
    expect([0, 1, 2, 3, 4, 5, 6, 50].map(hi)).toEqual([1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
    expect([0, 1, 5].map(lo)).toEqual([500, 1000, 15000]);
    for (let i = 0; i < 100; i++) {
      const d = backoffDelay(3);
      expect(d).toBeGreaterThanOrEqual(4000);
      expect(d).toBeLessThanOrEqual(8000);
    }
    expect(backoffDelay(2, { minMs: 100, maxMs: 300, random: () => 1 })).toBe(300);
  });
});
