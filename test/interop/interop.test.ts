/**
 * Interop in real network namespaces: tswg against Debian's wireguard-go (configured with `wg`)
 * and against itself. Two hosts joined by a veth pair carry IPv4 and IPv6 both outside and
 * inside the tunnel. Every scenario checks real traffic: pings and TCP transfers compared by
 * SHA-256 on both ends.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { netnsUnavailableReason, TestBed, type Host } from "../helpers/netns.js";
import { newKeyPair, newPsk, pingUntilReply, startNode, transfer, type Impl, type KeyPair, type WgNode } from "./nodes.js";

const skip = await netnsUnavailableReason();
const MB = 1024 * 1024;
const BIG = Number(process.env.TSWG_INTEROP_BYTES ?? 100 * MB);

interface Pairing {
  a: Impl;
  b: Impl;
}

const pairings: Pairing[] = [
  { a: "tswg", b: "wireguard-go" },
  { a: "tswg", b: "tswg" },
];

describe.skipIf(skip !== null).each(pairings)("$a <-> $b", ({ a: implA, b: implB }) => {
  let bed: TestBed;
  let ha: Host;
  let hb: Host;
  let keysA: KeyPair;
  let keysB: KeyPair;
  const nodes: WgNode[] = [];

  beforeAll(async () => {
    bed = await TestBed.create("interop");
    ha = await bed.host("a");
    hb = await bed.host("b");
    await bed.link(ha, hb, { a: "192.168.77.1/24", b: "192.168.77.2/24", a6: "fd00:77::1/64", b6: "fd00:77::2/64" });
    keysA = newKeyPair();
    keysB = newKeyPair();
  });

  afterAll(async () => {
    for (const n of nodes) await n.stop().catch(() => {});
    await bed?.cleanup();
  });

  /** Starts A and B as a pair; `outer6` uses IPv6 endpoints, `psk` a preshared key. */
  async function pair(opts: { psk?: boolean; outer6?: boolean; endpointOn: "a" | "b" | "both"; tag: string }) {
    const psk = opts.psk ? newPsk() : undefined;
    const epA = opts.outer6 ? "[fd00:77::1]:51820" : "192.168.77.1:51820";
    const epB = opts.outer6 ? "[fd00:77::2]:51821" : "192.168.77.2:51821";
    const a = await startNode({
      impl: implA,
      host: ha,
      ifname: bed.ifname(`a${opts.tag}`),
      keys: keysA,
      listenPort: 51820,
      addresses: ["10.77.0.1/24", "fd77::1/64"],
      peers: [
        {
          publicKey: keysB.publicKey,
          presharedKey: psk,
          allowedIps: ["10.77.0.2/32", "fd77::2/128"],
          endpoint: opts.endpointOn !== "b" ? epB : undefined,
        },
      ],
    });
    nodes.push(a);
    const b = await startNode({
      impl: implB,
      host: hb,
      ifname: bed.ifname(`b${opts.tag}`),
      keys: keysB,
      listenPort: 51821,
      addresses: ["10.77.0.2/24", "fd77::2/64"],
      peers: [
        {
          publicKey: keysA.publicKey,
          presharedKey: psk,
          allowedIps: ["10.77.0.1/32", "fd77::1/128"],
          endpoint: opts.endpointOn !== "a" ? epA : undefined,
        },
      ],
    });
    nodes.push(b);
    return { a, b };
  }

  async function stopBoth(p: { a: WgNode; b: WgNode }) {
    await p.a.stop();
    await p.b.stop();
  }

  it("handshake started by A; ping both ways over IPv4 and IPv6; 100 MB each way by hash", async () => {
    const p = await pair({ endpointOn: "a", tag: "x" });
    await pingUntilReply(ha, "10.77.0.2");
    await pingUntilReply(hb, "10.77.0.1");
    await pingUntilReply(ha, "fd77::2");
    await pingUntilReply(hb, "fd77::1");
    const dumpA = await p.a.peerDump();
    const dumpB = await p.b.peerDump();
    expect(dumpA.get(keysB.publicKey)!.latestHandshake).toBeGreaterThan(0);
    expect(dumpB.get(keysA.publicKey)!.latestHandshake).toBeGreaterThan(0);
    // B had no endpoint for A: it learnt it from the authenticated handshake.
    expect(dumpB.get(keysA.publicKey)!.endpoint).toBe("192.168.77.1:51820");

    const ab = await transfer(ha, hb, "10.77.0.2", BIG);
    expect(ab.received).toBe(ab.sent.replace("sent", "received"));
    const ba = await transfer(hb, ha, "fd77::1", BIG);
    expect(ba.received).toBe(ba.sent.replace("sent", "received"));
    console.log(`${implA}->${implB}: ${((BIG * 8) / ab.seconds / 1e6).toFixed(0)} Mbit/s; back: ${((BIG * 8) / ba.seconds / 1e6).toFixed(0)} Mbit/s`);
    await stopBoth(p);
  }, 300_000);

  it("handshake started by B, with a preshared key, over IPv6 outside", async () => {
    const p = await pair({ endpointOn: "b", psk: true, outer6: true, tag: "y" });
    await pingUntilReply(hb, "10.77.0.1");
    await pingUntilReply(ha, "fd77::2");
    const dumpA = await p.a.peerDump();
    expect(dumpA.get(keysB.publicKey)!.endpoint).toBe("[fd00:77::2]:51821");
    const r = await transfer(hb, ha, "10.77.0.1", 10 * MB);
    expect(r.received).toBe(r.sent.replace("sent", "received"));
    await stopBoth(p);
  }, 120_000);

  it("mismatched preshared keys never complete a handshake", async () => {
    const p = await pair({ endpointOn: "both", tag: "z" });
    // Give A a PSK that B does not have.
    await ha.exec(["sh", "-c", `echo ${newPsk()} | wg set ${p.a.spec.ifname} peer ${keysB.publicKey} preshared-key /dev/stdin`]);
    const r = await ha.exec(["ping", "-c", "3", "-W", "1", "10.77.0.2"], { check: false });
    expect(r.code).not.toBe(0);
    const dumpA = await p.a.peerDump();
    expect(dumpA.get(keysB.publicKey)!.latestHandshake).toBe(0);
    await stopBoth(p);
  }, 60_000);
});
