/**
 * The device reports its handshake traffic and cookie mode through UAPI `get` (as tswg_* keys)
 * and so in the metrics: two devices on in-memory TUNs, over UDP on loopback.
 */
import { afterEach, describe, expect, it } from "vitest";
import { UdpBind } from "../../src/bind/udp.js";
import { getBackend } from "../../src/crypto/index.js";
import { Device } from "../../src/device/device.js";
import { deviceUapiHandler } from "../../src/device/uapi-handler.js";
import { formatExposition } from "../../src/metrics/exposition.js";
import { interfaceMetrics } from "../../src/metrics/wireguard.js";
import { formatGet } from "../../src/uapi/protocol.js";
import { MemoryTun } from "../../src/tun/memory.js";
import { deviceExtraView } from "../../src/uapi/tswg-status.js";

/** A minimal IPv4 packet from `src` to `dst` (10.55.0.x). */
function ipv4(src: number, dst: number): Uint8Array {
  const p = new Uint8Array(28);
  p[0] = 0x45;
  p[3] = p.length;
  p[8] = 64;
  p[9] = 17;
  p.set([10, 55, 0, src], 12);
  p.set([10, 55, 0, dst], 16);
  return p;
}

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe("handshake counters and cookie mode in the device status", () => {
  const open: Device[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((d) => d.close()));
  });

  it("counts the initiation at the responder and the response at the initiator, and the metrics show them", async () => {
    const crypto = getBackend();
    const tuns = [new MemoryTun({ name: "hs0" }), new MemoryTun({ name: "hs1" })];
    const devices = tuns.map((tun) => new Device({ tun, binds: [new UdpBind({ address4: "127.0.0.1", ipv6: false, sockets: "dgram" })], dataPath: "portable" }));
    open.push(...devices);
    const [a, b] = devices as [Device, Device];
    for (const d of devices) {
      d.setPrivateKey(crypto.generatePrivateKey());
      await d.up();
    }
    a.setPeer({ publicKey: b.publicKey!, endpoint: `127.0.0.1:${b.listenPort}`, allowedIps: ["10.55.0.2/32"] });
    b.setPeer({ publicKey: a.publicKey!, endpoint: `127.0.0.1:${a.listenPort}`, allowedIps: ["10.55.0.1/32"] });

    const before = deviceExtraView((await deviceUapiHandler(b).get()).extra);
    expect(before).toMatchObject({ cookieMode: false, handshakesReceived: 0, handshakeResponsesReceived: 0, cookieRepliesSent: 0 });

    tuns[0]!.host.inject([ipv4(1, 2)]);
    await until(() => tuns[1]!.host.drain().length > 0, "the packet at b's TUN");

    const atB = await deviceUapiHandler(b).get();
    const atA = await deviceUapiHandler(a).get();
    expect(deviceExtraView(atB.extra)).toMatchObject({ cookieMode: false, handshakesReceived: 1, handshakeResponsesReceived: 0, cookieRepliesSent: 0 });
    expect(deviceExtraView(atA.extra)).toMatchObject({ handshakesReceived: 0, handshakeResponsesReceived: 1 });
    // Nothing of it lands in the "unknown keys" bucket: the reader knows every key the device writes.
    expect(deviceExtraView(atB.extra).other).toEqual({});
    // The get reply stays in wg's format: tswg keys before the first peer, as key=value lines.
    const text = formatGet(atB);
    expect(text.indexOf("tswg_handshakes_received=1\n")).toBeGreaterThan(-1);
    expect(text.indexOf("tswg_handshakes_received=")).toBeLessThan(text.indexOf("public_key="));

    const scrape = formatExposition(interfaceMetrics("hs1", atB));
    expect(scrape).toContain('tswg_handshake_initiations_received_total{interface="hs1"} 1\n');
    expect(scrape).toContain('tswg_cookie_mode{interface="hs1"} 0\n');
    expect(scrape).toContain('tswg_cookie_replies_sent_total{interface="hs1"} 0\n');
    expect(formatExposition(interfaceMetrics("hs0", atA))).toContain('tswg_handshake_responses_received_total{interface="hs0"} 1\n');
  });
});
