import { afterEach, describe, expect, it } from "vitest";
import dgram from "node:dgram";
import os from "node:os";
import { PeerAgent } from "../../src/ice/agent.js";
import { parseIceServers } from "../../src/ice/servers.js";
import { agentPair, exchange, keyPair, LOOPBACK, waitConnected, type AgentPair } from "./helpers.js";
import { MemoryHub } from "./memory-channel.js";

function hasIPv6Loopback(): boolean {
  return Object.values(os.networkInterfaces()).some((l) => l?.some((i) => i.address === "::1"));
}

let pair: AgentPair | null = null;
afterEach(async () => {
  await pair?.close();
  pair = null;
});

describe("PeerAgent on loopback", () => {
  it("connects over host candidates and carries datagrams both ways", async () => {
    pair = agentPair();
    const { a, b } = pair;
    const t0 = performance.now();
    a.start();
    b.start();
    await waitConnected([a, b]);
    const connectMs = performance.now() - t0;

    const sa = a.status();
    const sb = b.status();
    expect(sa.role).toBe("controlling");
    expect(sb.role).toBe("controlled");
    expect(sa.selectedPair?.local).toMatchObject({ type: "host", address: "127.0.0.1" });
    expect(sa.selectedPair?.remote).toMatchObject({ type: "host", address: "127.0.0.1" });
    // Each side's selected remote is the other's local candidate.
    expect(sa.selectedPair?.remote.port).toBe(sb.selectedPair?.local.port);
    expect(sb.selectedPair?.remote.port).toBe(sa.selectedPair?.local.port);
    expect(sa.localCandidates.every((c) => c.address === "127.0.0.1" && c.type === "host")).toBe(true);
    expect(sa.rttMs).not.toBeNull();
    expect(sa.restarts).toBe(0);
    expect(sa.connectedAt).not.toBeNull();

    const ab = await exchange(a, b, [Uint8Array.of(1, 2, 3), Uint8Array.of(4)]);
    expect(ab.map((d) => [...d])).toEqual([[1, 2, 3], [4]]);
    const ba = await exchange(b, a, [new TextEncoder().encode("from b")]);
    expect(new TextDecoder().decode(ba[0])).toBe("from b");
    expect(a.status().txPackets).toBe(2);
    expect(b.status().rxPackets).toBeGreaterThanOrEqual(2);

    // A rough rate: paced bursts, as a device would send; printed, not asserted.
    const n = 20_000;
    let got = 0;
    let lastAt = 0;
    const off = b.onData(() => {
      got++;
      lastAt = performance.now();
    });
    const payload = new Uint8Array(1200);
    const r0 = performance.now();
    for (let i = 0; i < n; i++) {
      a.send(payload);
      if (i % 32 === 31) await new Promise((r) => setImmediate(r));
    }
    await new Promise((r) => setTimeout(r, 200));
    const secs = Math.max(lastAt - r0, 1) / 1000;
    off();
    console.log(
      `ice loopback: connect ${connectMs.toFixed(0)} ms; ${got}/${n} datagrams of 1200 B received in ${secs.toFixed(2)} s ` +
        `(${Math.round(got / secs)} datagrams/s)`,
    );
    expect(got).toBeGreaterThan(0);
  });

  it("chooses roles from the keys alone, whichever side starts first", async () => {
    const [hi, lo] = keyPair();
    const hub = new MemoryHub();
    const mk = (self: Uint8Array, peer: Uint8Array) => new PeerAgent({ ...LOOPBACK, localKey: self, peerKey: peer, channel: hub.channel(self) });
    const x = mk(hi, lo);
    const y = mk(lo, hi);
    expect(x.role).toBe("controlling");
    expect(y.role).toBe("controlled");
    expect(() => new PeerAgent({ ...LOOPBACK, localKey: hi, peerKey: hi, channel: hub.channel(hi) })).toThrow(/equal/);
    await Promise.all([x.close(), y.close()]);

    // The controlled side coming up first still connects: it asks, the other answers.
    pair = agentPair();
    pair.b.start();
    await new Promise((r) => setTimeout(r, 50));
    pair.a.start();
    await waitConnected([pair.a, pair.b]);
    expect(pair.hub.log.some((r) => r.msg.type === "restart")).toBe(true);
  });

  it("takes candidate ports from the configured range", async () => {
    const lo = 45_000 + Math.floor(Math.random() * 100) * 100;
    pair = agentPair({ ...LOOPBACK, portRange: [lo, lo + 99] });
    pair.a.start();
    pair.b.start();
    await waitConnected([pair.a, pair.b]);
    for (const ag of [pair.a, pair.b]) {
      const port = ag.status().selectedPair!.local.port;
      expect(port).toBeGreaterThanOrEqual(lo);
      expect(port).toBeLessThanOrEqual(lo + 99);
    }
  });

  it.skipIf(!hasIPv6Loopback())("connects over IPv6 host candidates", async () => {
    pair = agentPair({ hostAddresses: ["::1"], networkInterfaces: () => ({}), ipv4: false });
    pair.a.start();
    pair.b.start();
    await waitConnected([pair.a, pair.b]);
    expect(pair.a.status().selectedPair?.remote.address).toBe("::1");
    const got = await exchange(pair.a, pair.b, [Uint8Array.of(6)]);
    expect(got.length).toBe(1);
  });

  it("a STUN/TURN server that never answers does not hold up the host path", async () => {
    // A socket that swallows everything: the library would wait seconds for it while gathering.
    const hole = dgram.createSocket("udp4");
    await new Promise<void>((r) => hole.bind(0, "127.0.0.1", () => r()));
    try {
      const port = hole.address().port;
      pair = agentPair({ ...LOOPBACK, servers: parseIceServers(`turn:u:p@127.0.0.1:${port}`), gatherTimeoutMs: 500 });
      const t0 = performance.now();
      pair.a.start();
      pair.b.start();
      await waitConnected([pair.a, pair.b], 4000);
      expect(performance.now() - t0).toBeLessThan(3000);
      expect(pair.a.status().selectedPair?.local.type).toBe("host");
    } finally {
      hole.close();
    }
  });

  it("drops datagrams (and counts them) while not connected", async () => {
    pair = agentPair();
    expect(pair.a.send(Uint8Array.of(1))).toBe(false);
    expect(pair.a.status().txDropped).toBe(1);
  });
});
