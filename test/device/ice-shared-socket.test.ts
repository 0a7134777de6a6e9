/**
 * Peers reached through ICE on the interface's own UDP socket: two devices, each with a Linux
 * TUN in a namespace of the test's own, a UDP Bind on loopback and an ICE Bind whose agents
 * share that socket (signaling in memory). Once a pair is selected the data plane sends to the
 * peer itself — natively where the native plane runs — and traffic arrives intact by hash.
 */
import { resolve } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { IceBind } from "../../src/bind/ice.js";
import { UdpBind } from "../../src/bind/udp.js";
import { getBackend } from "../../src/crypto/index.js";
import { keyToBase64 } from "../../src/crypto/keys.js";
import { Device } from "../../src/device/device.js";
import type { IceAgentConfig } from "../../src/ice/config.js";
import type { IceSession } from "../../src/ice/session.js";
import { IceManager } from "../../src/ice/manager.js";
import { parseIceServers } from "../../src/ice/servers.js";
import { loadNative } from "../../src/native/load.js";
import { createLinuxTun } from "../../src/tun/linux.js";
import { netnsUnavailableReason, TestBed, waitFor, type Host } from "../helpers/netns.js";
import { LOOPBACK } from "../ice/helpers.js";
import { MemoryHub } from "../ice/memory-channel.js";
import { startLoopbackTurn, TURN_PASSWORD, TURN_USER, turnserverAvailable, type LoopbackTurn } from "../ice/coturn.js";

const TRANSFER = resolve(import.meta.dirname, "../interop/fixtures/transfer.mjs");
const MB = 1024 * 1024;
const native = loadNative();
const skip = await netnsUnavailableReason();
const nativeSkip = native.addon?.DataPath === undefined ? (native.reason ?? "no native data path here") : null;

interface End {
  host: Host;
  device: Device;
  udp: UdpBind;
  manager: IceManager;
  ip: string;
}

describe.skipIf(skip !== null)("ICE on the interface's UDP socket", () => {
  let bed: TestBed;
  let ha: Host;
  let hb: Host;
  const open: (() => Promise<void>)[] = [];
  let tag = 0;

  beforeAll(async () => {
    bed = await TestBed.create("icesock");
    ha = await bed.host("a");
    hb = await bed.host("b");
  });

  afterEach(async () => {
    await Promise.all(open.splice(0).map((c) => c()));
  });

  afterAll(async () => {
    await bed?.cleanup();
  });

  async function pair(plane: "native" | "portable", ice: Partial<IceAgentConfig> = {}): Promise<[End, End]> {
    tag++;
    const crypto = getBackend("node");
    const keys = [crypto.generatePrivateKey(), crypto.generatePrivateKey()];
    const pubs = keys.map((k) => crypto.publicKey(k));
    const hub = new MemoryHub();
    const ends: End[] = [];
    for (const [i, host] of [ha, hb].entries()) {
      const ifname = bed.ifname(`i${tag}${i}`);
      const tun = await createLinuxTun(ifname, { netns: host.ns, mtu: 1420 });
      const udp = new UdpBind({ address4: "127.0.0.1", ipv6: false });
      const manager = new IceManager({ ...LOOPBACK, ...ice, publicKey: pubs[i]!, channel: hub.channel(pubs[i]!) });
      manager.addPeer(pubs[1 - i]!);
      const device = new Device({ tun, binds: [udp, new IceBind(manager)], dataPath: plane });
      open.push(async () => {
        await device.close();
        await manager.close();
      });
      device.setPrivateKey(keys[i]!);
      await device.up();
      const ip = `10.98.${tag}.${i + 1}`;
      await host.ip(["addr", "add", `${ip}/24`, "dev", ifname]);
      await host.ip(["link", "set", ifname, "up"]);
      ends.push({ host, device, udp, manager, ip });
    }
    const [a, b] = ends as [End, End];
    a.device.setPeer({ publicKey: pubs[1]!, endpoint: `ice:${keyToBase64(pubs[1]!)}`, allowedIps: [`${b.ip}/32`] });
    b.device.setPeer({ publicKey: pubs[0]!, endpoint: `ice:${keyToBase64(pubs[0]!)}`, allowedIps: [`${a.ip}/32`] });
    return [a, b];
  }

  async function ping(from: End, to: End): Promise<void> {
    await waitFor(async () => (await from.host.exec(["ping", "-c", "1", "-W", "1", to.ip], { check: false })).code === 0, {
      timeoutMs: 20_000,
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
    await client.exited;
    await server.exited;
  }

  /** The selected pair uses each side's listen port, and the peer's status names it. */
  function expectSharedPair(a: End, b: End): void {
    for (const [me, other] of [[a, b], [b, a]] as const) {
      const s = me.manager.status()[0]!;
      expect(s.state).toBe("connected");
      expect(s.selectedPair!.local.port).toBe(me.device.listenPort);
      expect(s.selectedPair!.remote.port).toBe(other.device.listenPort);
      const peer = me.device.status().peers[0]!;
      expect(peer.transport).toBe("ice");
      expect(peer.carriedBy).toBe(`udp 127.0.0.1:${other.device.listenPort}`);
      expect(me.manager.sharedSocketStats()!.routed).toBeGreaterThan(0);
    }
  }

  it.skipIf(nativeSkip !== null)("native plane: the selected pair is the WireGuard port and data packets never reach JavaScript", async () => {
    const [a, b] = await pair("native");
    await ping(a, b);
    await waitFor(() => a.device.status().peers[0]!.dataPlane === "native" && b.device.status().peers[0]!.dataPlane === "native", {
      timeoutMs: 5000,
      what: "both peers on the native plane",
    });
    expectSharedPair(a, b);
    const before = a.device.nativeStats()!.txPackets;
    await transfer(a, b, 32 * MB);
    await transfer(b, a, 16 * MB);
    for (const end of [a, b]) {
      const s = end.device.nativeStats()!;
      expect(s.decryptFailed + s.replayed + s.sourceRejected).toBe(0);
      expect(s.rxPackets).toBeGreaterThan(10_000);
    }
    // 32 MB of TCP in 1420-byte packets is over 20 000 data packets, all sealed natively.
    expect(a.device.nativeStats()!.txPackets - before).toBeGreaterThan(20_000);
    // The JavaScript ICE path carried next to nothing: only what went before the pair was known.
    expect(a.manager.status()[0]!.txPackets).toBeLessThan(50);
  }, 90_000);

  describe.skipIf(!turnserverAvailable())("relayed through coturn on loopback", () => {
    let turn: LoopbackTurn;
    beforeAll(async () => {
      turn = await startLoopbackTurn();
    });
    afterAll(async () => {
      await turn?.stop();
    });
    const relayOnly = (): Partial<IceAgentConfig> => ({
      servers: parseIceServers([{ urls: `turn:127.0.0.1:${turn.port}`, username: TURN_USER, credential: TURN_PASSWORD }]),
      candidateTypes: ["relay"],
    });

    it.skipIf(nativeSkip !== null)("native plane: the allocation is on the WireGuard port, data goes as ChannelData from native code", async () => {
      const [a, b] = await pair("native", relayOnly());
      await ping(a, b);
      await waitFor(() => a.device.status().peers[0]!.dataPlane === "native" && b.device.status().peers[0]!.dataPlane === "native", {
        timeoutMs: 5000,
        what: "both peers on the native plane",
      });
      for (const [me, other] of [[a, b], [b, a]] as const) {
        const s = me.manager.status()[0]!;
        expect(s.selectedPair!.local.type).toBe("relay");
        // Allocation, checks and consent ran over the WireGuard socket: one socket for all.
        expect(me.manager.sharedSocketStats()!.routed).toBeGreaterThan(0);
        const peer = me.device.status().peers[0]!;
        expect(peer.carriedBy).toMatch(/^udp 127\.0\.0\.1:\d+ \(TURN channel 0x4[0-9a-f]{3}\)$/);
        expect(peer.carriedBy).toContain(`:${turn.port} `);
        expect(other.manager.status()[0]!.selectedPair!.remote.type).toBe("relay");
      }
      const before = a.device.nativeStats()!.txPackets;
      await transfer(a, b, 16 * MB);
      await transfer(b, a, 8 * MB);
      expect(a.device.nativeStats()!.txPackets - before).toBeGreaterThan(10_000);
      expect(b.device.nativeStats()!.rxPackets).toBeGreaterThan(10_000);
      for (const end of [a, b]) expect(end.device.nativeStats()!.decryptFailed + end.device.nativeStats()!.replayed).toBe(0);
      // The JavaScript ICE path carried next to nothing.
      expect(a.manager.status()[0]!.txPackets).toBeLessThan(50);
    }, 90_000);

    it.skipIf(nativeSkip !== null)(
      "native plane, every candidate type: direct lane on the WireGuard port, warm relay lane on its allocation, and the data plane follows a fail-over",
      async () => {
        const [a, b] = await pair("native", {
          servers: parseIceServers([{ urls: `turn:127.0.0.1:${turn.port}`, username: TURN_USER, credential: TURN_PASSWORD }]),
          backoff: { minMs: 100, maxMs: 800 },
        });
        await ping(a, b);
        await waitFor(() => a.manager.status()[0]!.path?.lane === "direct" && b.manager.status()[0]!.path?.lane === "direct", {
          timeoutMs: 10_000,
          what: "the direct path on both sides",
        });
        expectSharedPair(a, b);
        const agent = a.manager.agent(a.manager.status()[0]!.peer)!;
        const lanes = (agent as unknown as { gen: { lanes: IceSession[] } }).gen.lanes;
        // One ufrag for the generation; the relay lane's candidate comes from the allocation on the WireGuard port.
        expect(lanes.map((l) => l.lane)).toEqual(["direct", "relay"]);
        expect(new Set(lanes.map((l) => l.ufrag)).size).toBe(1);
        await waitFor(() => lanes[1]!.connected, { timeoutMs: 10_000, what: "the relay lane connected (warm)" });
        // Break the direct lane as a network would, for ICE only: its checks on the socket stop.
        const direct = (agent as unknown as { active: IceSession }).active;
        expect(direct.lane).toBe("direct");
        await direct.conn.nominated!.protocol.close();
        // The data plane sends (pings), the probes go unanswered: the path moves to the relay and
        // the native plane's endpoint with it.
        const pinger = a.host.spawn(["ping", "-i", "0.1", "-w", "30", b.ip]);
        try {
          await waitFor(() => /TURN channel/.test(a.device.status().peers[0]!.carriedBy ?? ""), {
            timeoutMs: 15_000,
            what: "the native plane on the relay after the fail-over",
          });
          await ping(a, b);
          // The restart in the background finds the direct path again, and the data plane follows.
          await waitFor(() => a.device.status().peers[0]!.carriedBy === `udp 127.0.0.1:${b.device.listenPort}` && a.manager.status()[0]!.generation > direct.generation, {
            timeoutMs: 20_000,
            what: "the native plane on a direct pair of a new generation",
          });
          await ping(a, b);
        } finally {
          await pinger.stop();
        }
        // The shared allocation is released on the server when the device closes, not left to expire.
        const relays = [...(a.manager as unknown as { router: { relays: Map<string, Promise<{ released: boolean }>> } }).router.relays.values()];
        expect(relays.length).toBe(1);
        const relay = await relays[0]!;
        await a.device.close();
        expect(relay.released).toBe(true);
      },
      90_000,
    );

    it("portable plane: relayed through the same allocation, framed in TypeScript", async () => {
      const [a, b] = await pair("portable", relayOnly());
      await ping(a, b);
      expect(a.device.status().peers[0]!.carriedBy).toMatch(/TURN channel/);
      await transfer(a, b, 4 * MB);
    }, 90_000);
  });

  it("portable plane: the same socket, sealed in TypeScript", async () => {
    const [a, b] = await pair("portable");
    expect(a.udp.implementation).toBe("dgram");
    await ping(a, b);
    expectSharedPair(a, b);
    expect(a.device.status().peers[0]!.dataPlane).toBe("portable");
    await transfer(a, b, 4 * MB);
  }, 90_000);
});
