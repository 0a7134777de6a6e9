/**
 * Path MTU probing of ICE paths (src/ice/pmtu-probe.ts) against a fake transport: the search
 * finds the largest answered size through losses, the probes are binding requests the ICE
 * library accepts (integrity and fingerprint checked), relayed ones ChannelData on the pair's
 * channel (base only), and results are reported in the path MTU table's unit.
 */
import { parseMessage } from "werift-ice";
import { describe, expect, it } from "vitest";
import { SharedSocketRouter } from "../../src/ice/shared-socket.js";
import type { PacketListener, PacketSocket } from "../../src/stun/packet-socket.js";
import { BASE_MTU, paddedBindingRequest, PathMtuProber, ProbeWaiters, searchPathMtu, type ProbeRoute } from "../../src/ice/pmtu-probe.js";

const creds = { localUfrag: "loc1", remoteUfrag: "rem1", remotePwd: "remote-password-123456" };

describe("searchPathMtu", () => {
  const opts = { base: 1280, max: 1500, step: 4, tries: 3 };

  it("finds the largest size the path answers", async () => {
    for (const limit of [1280, 1284, 1400, 1452, 1496, 1500]) {
      const tried: number[] = [];
      const found = await searchPathMtu(async (size) => {
        tried.push(size);
        return size <= limit;
      }, opts);
      expect(found).toBe(limit);
      expect(tried.length).toBeLessThan(40);
    }
  });

  it("retries a size before it counts as too large: losses do not lower the result", async () => {
    let n = 0;
    // Two of every three probes are lost, whatever their size.
    const found = await searchPathMtu(async (size) => ++n % 3 === 0 && size <= 1400, opts);
    expect(found).toBe(1400);
  });

  it("a size lost every time is too large; an unconfirmed base gives 0", async () => {
    expect(await searchPathMtu(async () => false, opts)).toBe(0);
    expect(await searchPathMtu(async (size) => size <= 1300, { ...opts, max: 1200 })).toBe(0);
    // Only the base confirmed when the limit is the base.
    expect(await searchPathMtu(async (size) => size <= 1300, { ...opts, max: 1280 })).toBe(1280);
  });
});

describe("padded binding requests", () => {
  it("have the asked size and pass the library's integrity and fingerprint checks", () => {
    for (const size of [1232, 1252, 1472]) {
      const id = Buffer.alloc(12, 7);
      const m = paddedBindingRequest(size, creds, id)!;
      expect(m.length).toBe(size);
      const parsed = parseMessage(m, Buffer.from(creds.remotePwd));
      expect(parsed?.getAttributeValue("USERNAME")).toBe("rem1:loc1");
      expect(parsed?.transactionId.equals(id)).toBe(true);
      // The wrong password fails the check.
      expect(parseMessage(m, Buffer.from("other"))).toBeUndefined();
    }
    expect(paddedBindingRequest(1281, creds)).toBeNull();
    expect(paddedBindingRequest(40, creds)).toBeNull();
  });
});

/** A path that answers requests up to `limit` bytes of IP packet at the responder, losing every other. */
function fakePath(waiters: ProbeWaiters, route: ProbeRoute, limit: number, firstLeg: number) {
  const sent: { size: number; to: string }[] = [];
  let n = 0;
  const send = (data: Uint8Array, address: string, port: number): void => {
    sent.push({ size: data.length, to: `${address}:${port}` });
    let request = Buffer.from(data);
    let farLeg = request.length + 28;
    if (route.relay !== null) {
      // ChannelData on the pair's channel; the server adds ChannelData again towards a relayed peer.
      expect(request.readUInt16BE(0)).toBe(route.relay.channel);
      expect(request.readUInt16BE(2)).toBe(data.length - 4);
      request = request.subarray(4);
      farLeg = request.length + 28;
    }
    if (route.relay !== null || route.remoteRelayed) farLeg += 4;
    expect(data.length + 28).toBeLessThanOrEqual(firstLeg);
    const m = parseMessage(request, Buffer.from(creds.remotePwd));
    expect(m).toBeDefined();
    if (++n % 2 === 1 || farLeg > limit) return;
    const response = Buffer.alloc(20);
    response.writeUInt16BE(0x0101, 0);
    response.writeUInt32BE(0x2112a442, 4);
    m!.transactionId.copy(response, 8);
    setImmediate(() => waiters.claim(response));
  };
  return { send, sent };
}

async function probeOnce(route: ProbeRoute, limit: number, firstLeg: number): Promise<{ reports: number[]; sent: { size: number; to: string }[] }> {
  const waiters = new ProbeWaiters();
  const reports: number[] = [];
  const path = fakePath(waiters, route, limit, firstLeg);
  let done: () => void = () => undefined;
  const finished = new Promise<void>((r) => (done = r));
  const prober = new PathMtuProber(
    waiters,
    {
      send: path.send,
      limit: () => firstLeg,
      report: (peer, mtu) => {
        expect(peer).toBe("peer1");
        reports.push(mtu);
        done();
      },
    },
    { settleMs: 0, reprobeMs: 60_000, timeoutMs: 30 },
  );
  prober.pathChanged("peer1", route);
  await finished;
  prober.close();
  expect(waiters.size).toBe(0);
  return { reports, sent: path.sent };
}

describe("PathMtuProber", () => {
  it("direct: reports the far bottleneck, never probing beyond the first leg", async () => {
    const route = { credentials: creds, remote: ["203.0.113.2", 51820] as const, relay: null, remoteRelayed: false };
    const { reports, sent } = await probeOnce(route, 1280, 1500);
    expect(reports).toEqual([1280]);
    expect(sent.every((s) => s.to === "203.0.113.2:51820")).toBe(true);
    expect(Math.max(...sent.map((s) => s.size))).toBe(1500 - 28);
    expect((await probeOnce(route, 1500, 1500)).reports).toEqual([1500]);
    expect((await probeOnce(route, 1400, 1500)).reports).toEqual([1400]);
  });

  it("relay: ChannelData to the TURN server, the base only, reported as the ChannelData packet's size", async () => {
    const route = { credentials: creds, remote: ["203.0.113.2", 40000] as const, relay: { address: "198.51.100.3", port: 3478, channel: 0x4001 }, remoteRelayed: true };
    // A path that would carry more is still confirmed at the base only (the server may fragment).
    for (const limit of [1280, 1500]) {
      const { reports, sent } = await probeOnce(route, limit, 1500);
      // A 1248-byte datagram: 1280 on the server's ChannelData leg to the peer; 4 + 28 more on ours.
      expect(reports).toEqual([1248 + 4 + 28]);
      expect(sent.every((s) => s.to === "198.51.100.3:3478" && s.size === 1252)).toBe(true);
    }
    // Our first leg at 1280 carries the base too.
    expect((await probeOnce(route, 1280, 1280)).reports).toEqual([1280]);
  });

  it("direct to the peer's relay candidate: the base only, sized for the server's ChannelData leg", async () => {
    const route = { credentials: creds, remote: ["198.51.100.3", 40000] as const, relay: null, remoteRelayed: true };
    const { reports, sent } = await probeOnce(route, 1500, 1500);
    expect(reports).toEqual([1276]);
    expect(Math.max(...sent.map((s) => s.size))).toBe(1248);
  });

  it("a path that answers nothing reports nothing and keeps its state", async () => {
    const waiters = new ProbeWaiters();
    const reports: number[] = [];
    let sent = 0;
    const prober = new PathMtuProber(waiters, { send: () => sent++, limit: () => 1500, report: (_p, m) => reports.push(m) }, { settleMs: 0, reprobeMs: 60_000, timeoutMs: 10 });
    prober.pathChanged("peer1", { credentials: creds, remote: ["203.0.113.2", 1] as const, relay: null, remoteRelayed: false });
    await new Promise((r) => setTimeout(r, 200));
    prober.close();
    expect(sent).toBe(3);
    expect(reports).toEqual([]);
    expect(prober.counters.answered).toBe(0);
    expect(BASE_MTU).toBe(1280);
  });
});

describe("re-probing", () => {
  it("re-probes periodically, and a path change restarts the search on the new path only", async () => {
    const waiters = new ProbeWaiters();
    const reports: { mtu: number; at: number }[] = [];
    const sentTo: string[] = [];
    const answer = (data: Uint8Array): void => {
      const id = Buffer.from(data.subarray(8, 20));
      const r = Buffer.alloc(20);
      r.writeUInt16BE(0x0101, 0);
      r.writeUInt32BE(0x2112a442, 4);
      id.copy(r, 8);
      setImmediate(() => waiters.claim(r));
    };
    // Path one answers up to 1400, path two up to 1300.
    const limits = new Map([
      ["203.0.113.2", 1400],
      ["203.0.113.3", 1300],
    ]);
    const prober = new PathMtuProber(
      waiters,
      {
        send: (data, address) => {
          sentTo.push(address);
          if (data.length + 28 <= limits.get(address)!) answer(data);
        },
        limit: () => 1500,
        report: (_peer, mtu) => reports.push({ mtu, at: performance.now() }),
      },
      { settleMs: 0, reprobeMs: 100, timeoutMs: 20 },
    );
    const route = (address: string): ProbeRoute => ({ credentials: creds, remote: [address, 51820] as const, relay: null, remoteRelayed: false });
    const until = async (done: () => boolean): Promise<void> => {
      for (let i = 0; i < 500 && !done(); i++) await new Promise((r) => setTimeout(r, 10));
    };
    prober.pathChanged("peer1", route("203.0.113.2"));
    await until(() => reports.length >= 2);
    const first = reports.length;
    expect(first).toBeGreaterThanOrEqual(2);
    expect(reports.every((r) => r.mtu === 1400)).toBe(true);
    prober.pathChanged("peer1", route("203.0.113.3"));
    await until(() => reports.length > first);
    prober.close();
    expect(reports.slice(first).length).toBeGreaterThanOrEqual(1);
    // After the change, only the new path's size is reported.
    expect(reports.slice(first).every((r) => r.mtu === 1300)).toBe(true);
    expect(sentTo).toContain("203.0.113.3");
    // Closed: nothing more.
    const n = reports.length;
    await new Promise((r) => setTimeout(r, 200));
    expect(reports.length).toBe(n);
  });
});

describe("answers on the shared socket", () => {
  it("a probe's answer is taken before routing; other responses are routed as before", () => {
    const listeners = new Set<PacketListener>();
    const sock: PacketSocket = {
      localPort: 51820,
      reachableFamilies: () => ({ ipv4: true, ipv6: true }),
      sendPacket: () => undefined,
      onPacket: (l) => (listeners.add(l), () => listeners.delete(l)),
    };
    const router = new SharedSocketRouter(sock);
    const answered: string[] = [];
    const id = Buffer.alloc(12, 9);
    router.probes.expect(id, () => answered.push("probe"));
    const response = (tid: Buffer): Buffer => {
      const r = Buffer.alloc(20);
      r.writeUInt16BE(0x0101, 0);
      r.writeUInt32BE(0x2112a442, 4);
      tid.copy(r, 8);
      return r;
    };
    for (const l of listeners) l(response(id), "203.0.113.2", 51820);
    expect(answered).toEqual(["probe"]);
    expect(router.stats()).toEqual({ routed: 0, unclaimed: 0, channelData: 0 });
    // Taken once: a duplicate, like any unknown response, is unclaimed.
    for (const l of listeners) l(response(id), "203.0.113.2", 51820);
    expect(answered).toEqual(["probe"]);
    expect(router.stats().unclaimed).toBe(1);
    router.close();
  });
});
