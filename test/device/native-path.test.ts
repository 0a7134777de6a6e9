/**
 * The device with the native data path, in process: two devices, each with a Linux TUN inside
 * a network namespace of the test's own and a UDP Bind on loopback, so the tunnel runs
 * TUN -> native seal -> UDP -> native open -> TUN. Native against native and against the
 * portable path, traffic checked by hash.
 */
import { randomBytes } from "node:crypto";
import dgram from "node:dgram";
import { resolve } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { UdpBind } from "../../src/bind/udp.js";
import { getBackend } from "../../src/crypto/index.js";
import { Device } from "../../src/device/device.js";
import { loadNative } from "../../src/native/load.js";
import { createLinuxTun, LinuxTun } from "../../src/tun/linux.js";
import { netnsUnavailableReason, TestBed, waitFor, type Host } from "../helpers/netns.js";

const TRANSFER = resolve(import.meta.dirname, "../interop/fixtures/transfer.mjs");
const MB = 1024 * 1024;
const native = loadNative();
const skip = (await netnsUnavailableReason()) ?? (native.addon?.DataPath === undefined ? (native.reason ?? "no native data path here") : null);

interface End {
  host: Host;
  device: Device;
  bind: UdpBind;
  ip: string;
}

describe.skipIf(skip !== null)("the device's native data path", () => {
  let bed: TestBed;
  let ha: Host;
  let hb: Host;
  const open: Device[] = [];
  let tag = 0;

  beforeAll(async () => {
    bed = await TestBed.create("natpath");
    ha = await bed.host("a");
    hb = await bed.host("b");
  });

  afterEach(async () => {
    await Promise.all(open.splice(0).map((d) => d.close()));
  });

  afterAll(async () => {
    await bed?.cleanup();
  });

  /** Two devices joined over loopback; `kinds` picks each one's data path. */
  async function pair(kinds: ["native" | "portable", "native" | "portable"]): Promise<[End, End]> {
    tag++;
    const crypto = getBackend("node");
    const keys = [crypto.generatePrivateKey(), crypto.generatePrivateKey()];
    const ends: End[] = [];
    for (const [i, host] of [ha, hb].entries()) {
      const ifname = bed.ifname(`n${tag}${i}`);
      const tun = await createLinuxTun(ifname, { netns: host.ns, mtu: 1420 });
      const bind = new UdpBind({ address4: "127.0.0.1", ipv6: false, sockets: kinds[i] === "native" ? "native" : "dgram" });
      const device = new Device({ tun, binds: [bind], dataPath: kinds[i] });
      open.push(device);
      device.setPrivateKey(keys[i]!);
      await device.up();
      const ip = `10.99.${tag}.${i + 1}`;
      await host.ip(["addr", "add", `${ip}/24`, "dev", ifname]);
      await host.ip(["link", "set", ifname, "up"]);
      ends.push({ host, device, bind, ip });
    }
    const [a, b] = ends as [End, End];
    a.device.setPeer({ publicKey: b.device.publicKey!, endpoint: `127.0.0.1:${b.device.listenPort}`, allowedIps: [`${b.ip}/32`] });
    b.device.setPeer({ publicKey: a.device.publicKey!, endpoint: `127.0.0.1:${a.device.listenPort}`, allowedIps: [`${a.ip}/32`] });
    return [a, b];
  }

  async function ping(from: End, to: End): Promise<void> {
    await waitFor(async () => (await from.host.exec(["ping", "-c", "1", "-W", "1", to.ip], { check: false })).code === 0, {
      timeoutMs: 15_000,
      what: `a ping from ${from.ip} to ${to.ip}`,
    });
  }

  async function transfer(from: End, to: End, bytes: number): Promise<void> {
    const server = to.host.spawn(["node", TRANSFER, "serve", to.ip, "5201"]);
    await server.waitForOutput("listening", { timeoutMs: 10_000 });
    const client = from.host.spawn(["node", TRANSFER, "send", to.ip, "5201", String(bytes)]);
    const sent = await client.waitForOutput(/sent \d+ [0-9a-f]{64}|error .*/, { timeoutMs: 60_000 });
    const received = await server.waitForOutput(/received \d+ [0-9a-f]{64}|error .*/, { timeoutMs: 30_000 });
    expect(received.trim()).toBe(sent.trim().replace("sent", "received"));
    expect(sent).toContain(`sent ${bytes} `);
    await client.exited;
    await server.exited;
  }

  it("native <-> native: pings, then 64 MB each way arrive intact, sealed and opened natively", async () => {
    const [a, b] = await pair(["native", "native"]);
    expect(a.device.dataPath).toBe("native");
    expect(b.device.status().dataPath).toBe("native");
    await ping(a, b);
    await transfer(a, b, 64 * MB);
    await transfer(b, a, 64 * MB);
    for (const end of [a, b]) {
      const s = end.device.nativeStats()!;
      // Nearly everything took the native way: at most the packets before the handshake did not.
      expect(s.txPackets).toBeGreaterThan(40_000);
      expect(s.rxPackets).toBeGreaterThan(40_000);
      expect(s.decryptFailed + s.replayed + s.unknownIndex + s.sourceRejected).toBe(0);
      // TCP segments went into the TUN joined, and came out of it as super-packets to split.
      expect(s.tunCoalesced).toBeGreaterThan(0);
      expect((end.device.tun as LinuxTun).stats().superPackets).toBeGreaterThan(0);
      // Sealed segments left as UDP GSO trains and arrived as GRO trains.
      const udp = end.bind.nativeSockets!.stats();
      expect(udp.gsoSends).toBeGreaterThan(0);
      expect(udp.groReceives).toBeGreaterThan(0);
    }
    // What the native side moved reaches the engine's counters (and so `wg show`).
    await waitFor(() => a.device.status().peers[0]!.txBytes > 64 * MB && b.device.status().peers[0]!.rxBytes > 64 * MB, {
      timeoutMs: 3000,
      what: "byte counters to include the native traffic",
    });
    expect(a.device.status().peers[0]!.lastHandshakeMs).toBeGreaterThan(0);
    expect(b.device.status().peers[0]!.lastHandshakeMs).toBeGreaterThan(0);
  }, 120_000);

  it("native and portable ends interoperate both ways", async () => {
    const [a, b] = await pair(["native", "portable"]);
    expect(a.device.dataPath).toBe("native");
    expect(b.device.dataPath).toBe("portable");
    await ping(b, a); // the portable end initiates, the native end confirms its keypair natively
    await transfer(a, b, 8 * MB);
    await transfer(b, a, 8 * MB);
    expect(a.device.nativeStats()!.decryptFailed).toBe(0);
    expect(b.device.nativeStats()).toBeNull();
    // The portable end reads split super-packets too, and its writes are joined.
    const tb = (b.device.tun as LinuxTun).stats();
    expect(tb.superPackets).toBeGreaterThan(0);
    expect(tb.coalesced).toBeGreaterThan(0);
  }, 120_000);

  it("the engine and the native side draw one counter sequence: nothing the peer gets is a replay", async () => {
    const [a, b] = await pair(["native", "native"]);
    // Packets sent before the session exists are queued and sealed by the engine in JavaScript
    // with the native counter; the rest are sealed natively. Ping while the handshake runs.
    const pings = [0, 1, 2, 3].map(() => a.host.exec(["ping", "-c", "5", "-i", "0.2", "-W", "2", b.ip], { check: false }));
    await Promise.all(pings);
    await ping(a, b);
    await transfer(a, b, 4 * MB);
    const sb = b.device.nativeStats()!;
    expect(sb.replayed).toBe(0);
    expect(sb.decryptFailed).toBe(0);
  }, 60_000);

  it("drops packets whose inner source address belongs to no peer of the sender", async () => {
    const [a, b] = await pair(["native", "native"]);
    await ping(a, b);
    const ifname = (await b.host.exec(["ip", "-o", "-4", "addr", "show", "to", b.ip])).stdout.split(/\s+/)[1]!;
    await b.host.ip(["addr", "add", `10.99.${tag}.77/32`, "dev", ifname]);
    // B would need 10.99.x.77 in A's AllowedIPs for A to route it; add a route so B sends it.
    const spoofed = await b.host.exec(["ping", "-c", "3", "-i", "0.2", "-W", "1", "-I", `10.99.${tag}.77`, a.ip], { check: false });
    expect(spoofed.code).not.toBe(0);
    expect(a.device.nativeStats()!.sourceRejected).toBeGreaterThan(0);
  }, 60_000);

  it("drops garbage sent to its port, counting it, and carries on", async () => {
    const [a, b] = await pair(["native", "native"]);
    await ping(a, b);
    const sock = dgram.createSocket("udp4");
    try {
      for (let i = 0; i < 3000; i++) {
        const d = randomBytes(1 + (i % 1500));
        // A third look like transport messages (type 4, zero reserved bytes), some like handshakes.
        if (i % 3 === 0 && d.length >= 4) d.set([4, 0, 0, 0], 0);
        else if (i % 3 === 1 && d.length >= 4) d.set([1 + (i % 3), 0, 0, 0], 0);
        await new Promise<void>((r) => sock.send(d, b.device.listenPort, "127.0.0.1", () => r()));
      }
    } finally {
      sock.close();
    }
    await ping(a, b);
    await transfer(a, b, 4 * MB);
    const s = b.device.nativeStats()!;
    expect(s.unknownIndex + s.rxPassed).toBeGreaterThan(1000);
    expect(s.decryptFailed + s.replayed).toBe(0);
  }, 60_000);

  it("follows the peer to a new port, natively", async () => {
    const [a, b] = await pair(["native", "native"]);
    await ping(a, b);
    const before = a.device.listenPort;
    await a.device.setListenPort(0);
    expect(a.device.listenPort).not.toBe(before);
    await ping(a, b);
    await waitFor(() => b.device.status().peers[0]!.endpoint === `127.0.0.1:${a.device.listenPort}`, {
      timeoutMs: 3000,
      what: "B to learn A's new endpoint",
    });
    // And B's own traffic now goes there.
    await ping(b, a);
    await transfer(b, a, 4 * MB);
  }, 60_000);

  it("stops when the TUN interface is deleted underneath it", async () => {
    const [a] = await pair(["native", "native"]);
    const ifname = a.device.name;
    await a.host.ip(["link", "del", ifname]);
    await waitFor(
      () =>
        Promise.race([a.device.stopped.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 200))]),
      { timeoutMs: 5000, what: "the device to stop" },
    );
  }, 30_000);
});
