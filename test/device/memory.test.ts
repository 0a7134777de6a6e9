/**
 * Whole devices without root: in-memory TUNs and in-memory Binds on a MemoryNetwork. Handshake,
 * data both ways, a rekey, roaming, and drops counted by reason.
 */
import { afterEach, describe, expect, it } from "vitest";
import { MemoryNetwork, type MemoryBind } from "../../src/bind/memory.js";
import { getBackend } from "../../src/crypto/index.js";
import { Device } from "../../src/device/device.js";
import type { Clock } from "../../src/noise/engine.js";
import { MemoryTun } from "../../src/tun/memory.js";
import { waitFor } from "../helpers/wait.js";

/** A clock the test can move forward (timers and key ages follow it). */
class SkewClock implements Clock {
  skew = 0;
  now(): number {
    return performance.now() + this.skew;
  }
  wallNow(): number {
    return Date.now() + this.skew;
  }
}

/** An IPv4 packet (UDP, checksums not needed by WireGuard) from `src` to `dst`. */
function ip4(src: string, dst: string, payload: Uint8Array): Uint8Array {
  const p = new Uint8Array(28 + payload.length);
  p[0] = 0x45;
  p[2] = p.length >> 8;
  p[3] = p.length & 0xff;
  p[8] = 64;
  p[9] = 17;
  p.set(src.split(".").map(Number), 12);
  p.set(dst.split(".").map(Number), 16);
  p[25] = 8 + payload.length;
  p.set(payload, 28);
  return p;
}

interface End {
  device: Device;
  tun: MemoryTun;
  bind: MemoryBind;
  ip: string;
}

const open: Device[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((d) => d.close()));
});

async function pair(net: MemoryNetwork, clock: Clock = new SkewClock()): Promise<[End, End]> {
  const crypto = getBackend("node");
  const ends: End[] = [];
  for (const i of [0, 1]) {
    const tun = new MemoryTun({ name: `mem${i}` });
    const bind = net.bind(`192.0.2.${i + 1}`);
    const device = new Device({ tun, binds: [bind], clock, dataPath: "portable" });
    open.push(device);
    device.setPrivateKey(crypto.generatePrivateKey());
    await device.up();
    ends.push({ device, tun, bind, ip: `10.0.0.${i + 1}` });
  }
  const [a, b] = ends as [End, End];
  a.device.setPeer({ publicKey: b.device.publicKey!, endpoint: `192.0.2.2:${b.bind.port}`, allowedIps: [`${b.ip}/32`] });
  b.device.setPeer({ publicKey: a.device.publicKey!, endpoint: `192.0.2.1:${a.bind.port}`, allowedIps: [`${a.ip}/32`] });
  return [a, b];
}

/** Sends one packet from `from` to `to` through the tunnel and returns what came out of `to`'s TUN. */
async function through(from: End, to: End, payload: Uint8Array, src = from.ip): Promise<Uint8Array> {
  const sent = ip4(src, to.ip, payload);
  from.tun.host.inject([sent]);
  const got = await Promise.race([
    to.tun.host.read(1),
    new Promise<null>((r) => setTimeout(() => r(null), 3000)),
  ]);
  if (got === null || got.length === 0) throw new Error(`nothing came out of ${to.ip}'s TUN`);
  return got[0]!;
}

describe("a device on in-memory TUN and Binds", () => {
  it("handshakes and carries data both ways", async () => {
    const net = new MemoryNetwork();
    const [a, b] = await pair(net);
    const payload = new TextEncoder().encode("hello through the tunnel");
    expect(Buffer.from(await through(a, b, payload))).toEqual(Buffer.from(ip4(a.ip, b.ip, payload)));
    expect(Buffer.from(await through(b, a, payload))).toEqual(Buffer.from(ip4(b.ip, a.ip, payload)));
    for (const end of [a, b]) {
      const p = end.device.status().peers[0]!;
      expect(p.lastHandshakeMs).toBeGreaterThan(0);
      expect(p.rxBytes).toBeGreaterThan(0);
      expect(p.dataPlane).toBe("portable");
    }
    expect(a.device.dropCounts()).toEqual({});
  });

  it("rekeys when the session is older than REKEY_AFTER_TIME, without losing the data", async () => {
    const clock = new SkewClock();
    const net = new MemoryNetwork();
    const [a, b] = await pair(net, clock);
    await through(a, b, new Uint8Array([1]));
    let initiations = 0;
    net.filter = (d) => {
      if (d.data[0] === 1) initiations++;
      return true;
    };
    const first = a.device.status().peers[0]!.lastHandshakeMs;
    clock.skew += 121_000;
    // The next packet A sends under the old keys makes A start a new handshake.
    await through(a, b, new Uint8Array([2]));
    await waitFor(() => a.device.status().peers[0]!.lastHandshakeMs > first, { timeoutMs: 5000, what: "a second handshake" });
    expect(initiations).toBe(1);
    expect((await through(a, b, new Uint8Array([3])))[28]).toBe(3);
    expect((await through(b, a, new Uint8Array([4])))[28]).toBe(4);
  });

  it("follows a peer that roams to a new address", async () => {
    const net = new MemoryNetwork();
    const [a, b] = await pair(net);
    await through(a, b, new Uint8Array([1]));
    b.bind.moveTo("192.0.2.9");
    // B speaks from its new address; A's endpoint for B follows, so A's replies get there.
    await through(b, a, new Uint8Array([2]));
    expect(a.device.status().peers[0]!.endpoint).toBe(`192.0.2.9:${b.bind.port}`);
    expect((await through(a, b, new Uint8Array([3])))[28]).toBe(3);
    expect(net.lost).toBe(0);
  });

  it("counts what it drops, by reason", async () => {
    const net = new MemoryNetwork();
    const [a, b] = await pair(net);
    await through(a, b, new Uint8Array([1]));
    // A destination no peer owns.
    a.tun.host.inject([ip4(a.ip, "10.0.0.99", new Uint8Array([1]))]);
    // An inner source B is not allowed to use.
    b.tun.host.inject([ip4("10.0.0.77", a.ip, new Uint8Array([1]))]);
    // A replayed transport message: the network delivers one of B's data messages twice.
    let copy: Uint8Array | null = null;
    net.filter = (d) => {
      if (d.data[0] === 4 && copy === null) copy = d.data.slice();
      return true;
    };
    await through(b, a, new Uint8Array([2]));
    const stranger = net.bind("192.0.2.50");
    await stranger.open(0);
    const toA = stranger.parseEndpoint(`192.0.2.1:${a.bind.port}`);
    await stranger.send([copy!, new Uint8Array([1, 0, 0])], toA);
    await waitFor(
      () => {
        const d = a.device.dropCounts();
        return d["source-not-allowed"] === 1 && d["replayed-counter"] === 1 && d.malformed === 1;
      },
      { timeoutMs: 3000, what: `drops to be counted (${JSON.stringify(a.device.dropCounts())})` },
    );
    expect(a.device.dropCounts()["no-route"]).toBe(1);
    await stranger.close();
  });
});
