/**
 * The TCP (UoTLV/1) Bind on loopback: as a client of a URL, as a server of accepted
 * connections, and under a real Device that completes a WireGuard handshake over it.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { Received, ReceiveFunc } from "../../src/bind/bind.js";
import { BindClosedError } from "../../src/bind/errors.js";
import { TcpBind, type TcpBindOptions } from "../../src/bind/tcp.js";
import { TcpConnectionEndpoint, TcpUrlEndpoint } from "../../src/bind/tcp-endpoint.js";
import { UdpBind } from "../../src/bind/udp.js";
import { defaultBackend } from "../../src/crypto/index.js";
import { Device } from "../../src/device/device.js";
import { MemoryTun } from "../../src/tun/memory.js";
import { waitFor } from "../helpers/wait.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function bind(opts: TcpBindOptions = {}): TcpBind {
  const b = new TcpBind({ reconnectDelaysMs: [50], ...opts });
  cleanups.push(() => b.close());
  return b;
}

async function collect(recv: ReceiveFunc, n: number, ms = 3000): Promise<Received[]> {
  const got: Received[] = [];
  const deadline = Date.now() + ms;
  while (got.length < n) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`received ${got.length} of ${n} datagrams in ${ms} ms`);
    const batch = await Promise.race([recv(), new Promise<"timeout">((r) => setTimeout(() => r("timeout"), left))]);
    if (batch === "timeout") continue;
    if (batch === null) throw new Error("receiver closed early");
    got.push(...batch);
  }
  return got;
}

const text = (r: Received): string => Buffer.from(r.data).toString();
const batchOf = (prefix: string, n: number): Uint8Array[] => Array.from({ length: n }, (_, i) => Buffer.from(`${prefix}-${i}`));

describe("TcpBind", () => {
  it("carries batches from a URL endpoint to a listener and back over the same connection", async () => {
    const server = bind({ listen: ["127.0.0.1:0"] });
    const client = bind();
    const rs = await server.open(51820);
    const rc = await client.open(0);
    expect(server.listening).toHaveLength(1);
    const port = Number(server.listening[0]!.split(":")[1]);
    expect(rs.port).toBe(port);
    expect(rc.receivers).toHaveLength(1);

    const ep = client.parseEndpoint(`http://127.0.0.1:${port}/proxyguard`);
    await client.send(batchOf("up", 20), ep);
    const atServer = await collect(rs.receivers[0]!, 20);
    expect(atServer.map(text)).toEqual(batchOf("up", 20).map(String));
    const from = atServer[0]!.endpoint;
    expect(from).toBeInstanceOf(TcpConnectionEndpoint);
    expect(from.bind).toBe(server);
    expect(from.dstToString()).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(from.dstIP()).toBe("127.0.0.1");
    expect(from.key).toMatch(/^tcp:127\.0\.0\.1:\d+#\d+$/);
    expect(from.dstToBytes()).toHaveLength(6);
    expect(atServer.every((r) => r.endpoint === from)).toBe(true);

    await server.send(batchOf("down", 5), from);
    const atClient = await collect(rc.receivers[0]!, 5);
    expect(atClient.map(text)).toEqual(["down-0", "down-1", "down-2", "down-3", "down-4"]);
    expect(atClient[0]!.endpoint).toBe(ep); // replies arrive from the URL endpoint itself
    expect(server.stats()).toMatchObject({ accepted: 1, received: 20, sent: 5 });
    expect(client.stats()).toMatchObject({ received: 5, sent: 20 });
  });

  it("parses URLs only, one endpoint object per URL", () => {
    const b = bind();
    const a = b.parseEndpoint("https://VPN.example.org/proxyguard");
    expect(a).toBeInstanceOf(TcpUrlEndpoint);
    expect(a.key).toBe("tcp:https://vpn.example.org/proxyguard");
    expect(a.dstToString()).toBe("https://vpn.example.org/proxyguard");
    expect(a.dstIP()).toBe("");
    expect(b.parseEndpoint("https://vpn.example.org:443/proxyguard")).toBe(a);
    expect(() => b.parseEndpoint("192.0.2.1:51820")).toThrow(/TCP transport takes an http:\/\/ or https:\/\/ URL/);
    expect(() => b.parseEndpoint("ftp://x/")).toThrow(/scheme must be http or https/);
    expect(() => new TcpBind({ listen: ["localhost:1"] })).toThrow(/invalid listen address/);
  });

  it("refuses foreign endpoints, oversized batches and sending while closed", async () => {
    const b = bind({ batchSize: 4 });
    const udp = new UdpBind();
    const ep = b.parseEndpoint("http://127.0.0.1:9/");
    await expect(b.send([new Uint8Array(1)], ep)).rejects.toThrow(BindClosedError);
    await b.open(0);
    await expect(b.send([new Uint8Array(1)], udp.parseEndpoint("127.0.0.1:1"))).rejects.toThrow(TypeError);
    await expect(b.send(batchOf("x", 5), ep)).rejects.toThrow(RangeError);
  });

  it("drops datagrams for a connection that has ended, without throwing", async () => {
    const server = bind({ listen: ["127.0.0.1:0"] });
    const client = bind();
    const rs = await server.open(0);
    await client.open(0);
    await client.send(batchOf("x", 1), client.parseEndpoint(`http://${server.listening[0]}/`));
    const [first] = await collect(rs.receivers[0]!, 1);
    await client.close();
    await waitFor(async () => {
      await server.send(batchOf("late", 2), first!.endpoint);
      return server.stats().sendDropped > 0;
    }, { what: "sends to the ended connection to be dropped" });
  });

  it("ends its receivers on close and opens again", async () => {
    const b = bind({ listen: ["127.0.0.1:0"] });
    const first = await b.open(0);
    const pending = first.receivers[0]!();
    await b.close();
    await expect(pending).resolves.toBeNull();
    await expect(first.receivers[0]!()).resolves.toBeNull();
    const second = await b.open(0);
    expect(b.listening).toHaveLength(1);
    const c = bind();
    await c.open(0);
    await c.send(batchOf("again", 1), c.parseEndpoint(`http://${b.listening[0]}/`));
    expect((await collect(second.receivers[0]!, 1)).map(text)).toEqual(["again-0"]);
  });

  it("records a mark and refuses one out of range", async () => {
    const b = bind();
    await b.setMark(51820);
    expect(b.mark).toBe(51820);
    await expect(b.setMark(-1)).rejects.toThrow(RangeError);
    await expect(b.setMark(2 ** 32)).rejects.toThrow(RangeError);
    expect(b.mark).toBe(51820);
  });

  it("says which TCP address cannot be listened on", async () => {
    const a = bind({ listen: ["127.0.0.1:0"] });
    await a.open(0);
    const b = bind({ listen: [a.listening[0]!] });
    await expect(b.open(0)).rejects.toThrow(/TcpBind: cannot listen on TCP 127\.0\.0\.1:\d+: EADDRINUSE/);
    await expect(b.open(0)).rejects.toThrow(/EADDRINUSE/); // and nothing was left half open
  });
});

/** An IPv4 packet from `src` to `dst` carrying `payload` (protocol 253, for experiments). */
function ipv4(src: number[], dst: number[], payload: string): Uint8Array {
  const body = Buffer.from(payload);
  const p = Buffer.alloc(20 + body.length);
  p[0] = 0x45;
  p.writeUInt16BE(p.length, 2);
  p[8] = 64;
  p[9] = 253;
  p.set(src, 12);
  p.set(dst, 16);
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += p.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  p.writeUInt16BE(~sum & 0xffff, 10);
  body.copy(p, 20);
  return p;
}

describe("TcpBind under a Device", () => {
  it("completes a handshake and carries packets both ways with no UDP between the peers", async () => {
    const backend = defaultBackend();
    const keyA = backend.generatePrivateKey();
    const keyB = backend.generatePrivateKey();
    const tunA = new MemoryTun({ name: "tcpa" });
    const tunB = new MemoryTun({ name: "tcpb" });
    const tcpA = new TcpBind({ listen: ["127.0.0.1:0"] });
    const tcpB = new TcpBind();
    const a = new Device({ tun: tunA, binds: [new UdpBind({ address4: "127.0.0.1", ipv6: false }), tcpA] });
    const b = new Device({ tun: tunB, binds: [new UdpBind({ address4: "127.0.0.1", ipv6: false }), tcpB] });
    cleanups.push(() => a.close(), () => b.close());
    a.setPrivateKey(keyA);
    b.setPrivateKey(keyB);
    await a.up();
    await b.up();
    a.setPeer({ publicKey: backend.publicKey(keyB), allowedIps: ["10.9.0.2/32"] });
    b.setPeer({ publicKey: backend.publicKey(keyA), allowedIps: ["10.9.0.1/32"], endpoint: `http://${tcpA.listening[0]}/proxyguard` });

    tunB.host.inject([ipv4([10, 9, 0, 2], [10, 9, 0, 1], "hello over tcp")]);
    const atA = await Promise.race([tunA.host.read(), new Promise<null>((r) => setTimeout(() => r(null), 5000))]);
    expect(atA).not.toBeNull();
    expect(Buffer.from(atA![0]!.subarray(20)).toString()).toBe("hello over tcp");
    const peerAtA = a.status().peers[0]!;
    expect(peerAtA.transport).toBe("tcp");
    expect(peerAtA.endpoint).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(b.status().peers[0]).toMatchObject({ transport: "tcp", endpoint: `http://${tcpA.listening[0]}/proxyguard` });

    tunA.host.inject([ipv4([10, 9, 0, 1], [10, 9, 0, 2], "and back")]);
    const atB = await Promise.race([tunB.host.read(), new Promise<null>((r) => setTimeout(() => r(null), 5000))]);
    expect(Buffer.from(atB![0]!.subarray(20)).toString()).toBe("and back");
  });
});
