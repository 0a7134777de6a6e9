/**
 * Ten thousand peers configured through one UAPI set request, as `wg setconf` sends them, then
 * a thousand more (`wg addconf`): every peer is there with its endpoint and AllowedIPs, and the
 * routing table sends each address to its own peer. How long this takes is measured by
 * bench/peer-scale.mjs, not here.
 */
import { afterEach, describe, expect, it } from "vitest";
import { UdpBind } from "../../src/bind/udp.js";
import { Device } from "../../src/device/device.js";
import { deviceUapiHandler } from "../../src/device/uapi-handler.js";
import { MemoryTun } from "../../src/tun/memory.js";
import { parseSet } from "../../src/uapi/protocol.js";

const keyHex = (i: number): string => {
  const b = Buffer.alloc(32);
  b.writeUInt32BE(i + 1, 0);
  b[31] = 0x40;
  return b.toString("hex");
};
const ipOf = (i: number): string => `10.${(i >> 16) & 0xff}.${(i >> 8) & 0xff}.${i & 0xff}`;

function setLines(from: number, count: number): string[] {
  const lines: string[] = [];
  for (let i = from; i < from + count; i++) {
    lines.push(`public_key=${keyHex(i)}`, "replace_allowed_ips=true", `allowed_ip=${ipOf(i)}/32`, `allowed_ip=fd00::${(i + 1).toString(16)}/128`, `endpoint=127.0.0.1:${10000 + i}`);
  }
  return lines;
}

/** An IPv4 packet header to `dst`, enough for the device's route lookup. */
function packetTo(dst: string): Uint8Array {
  const p = new Uint8Array(28);
  p[0] = 0x45;
  p[3] = 28;
  p[9] = 17;
  p.set([10, 255, 255, 254], 12);
  p.set(dst.split(".").map(Number), 16);
  return p;
}

describe("a device with many peers", () => {
  const open: Device[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((d) => d.close()));
  });

  it("takes 10 000 peers in one UAPI request and 1 000 more in a second, with correct routes", async () => {
    const tun = new MemoryTun({ name: "many0" });
    const device = new Device({ tun, binds: [new UdpBind({ address4: "127.0.0.1", ipv6: false })], dataPath: "portable" });
    open.push(device);
    await device.up();
    const handler = deviceUapiHandler(device);
    await handler.set(parseSet([`private_key=${Buffer.alloc(32, 7).toString("hex")}`, ...setLines(0, 10_000)]));
    await handler.set(parseSet(setLines(10_000, 1_000)));

    const state = await handler.get();
    expect(state.peers).toHaveLength(11_000);
    const byKey = new Map(state.peers.map((p) => [Buffer.from(p.publicKey).toString("hex"), p]));
    for (const i of [0, 1, 255, 256, 4_095, 9_999, 10_000, 10_999]) {
      const p = byKey.get(keyHex(i));
      expect(p, `peer ${i}`).toBeDefined();
      expect(p!.allowedIps).toEqual([`${ipOf(i)}/32`, `fd00::${(i + 1).toString(16)}/128`]);
      expect(p!.endpoint).toBe(`127.0.0.1:${10000 + i}`);
    }

    // Routed addresses are taken by the device, the rest counted as having no route.
    const routed = [ipOf(0), ipOf(7_777), ipOf(10_999)];
    const unrouted = [ipOf(11_000), "10.200.0.1", "192.0.2.1"];
    tun.host.inject([...routed, ...unrouted].map(packetTo));
    await expect.poll(() => device.drops.noRoute, { timeout: 5_000 }).toBe(unrouted.length);

    // Removing half of them in one request leaves exactly the other half.
    const removal: string[] = [];
    for (let i = 0; i < 11_000; i += 2) removal.push(`public_key=${keyHex(i)}`, "remove=true");
    await handler.set(parseSet(removal));
    const after = await handler.get();
    expect(after.peers).toHaveLength(5_500);
    expect(after.peers.every((p) => Buffer.from(p.publicKey).readUInt32BE(0) % 2 === 0)).toBe(true);
    tun.host.inject([packetTo(ipOf(0)), packetTo(ipOf(1))]);
    await expect.poll(() => device.drops.noRoute, { timeout: 5_000 }).toBe(unrouted.length + 1);
  }, 120_000);
});
