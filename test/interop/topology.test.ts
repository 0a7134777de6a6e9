/**
 * Several peers on one tswg interface, AllowedIPs routing in both directions, and roaming,
 * against wireguard-go spokes and against tswg spokes.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { netnsUnavailableReason, TestBed, waitFor, type Host } from "../helpers/netns.js";
import { newKeyPair, pingUntilReply, startNode, startSimplePair, transfer, type Impl, type KeyPair, type WgNode } from "./nodes.js";

const skip = await netnsUnavailableReason();
const MB = 1024 * 1024;

describe.skipIf(skip !== null).each<Impl>(["wireguard-go", "tswg"])("tswg hub with two %s spokes", (spokeImpl) => {
  let bed: TestBed;
  let hub: Host;
  let s1: Host;
  let s2: Host;
  const keys: Record<string, KeyPair> = {};
  const nodes: WgNode[] = [];

  beforeAll(async () => {
    bed = await TestBed.create("topo");
    hub = await bed.host("hub", { forwarding: true });
    s1 = await bed.host("s1");
    s2 = await bed.host("s2");
    await bed.link(hub, s1, { a: "192.168.78.1/24", b: "192.168.78.2/24" });
    await bed.link(hub, s2, { a: "192.168.79.1/24", b: "192.168.79.2/24" });
    for (const k of ["hub", "s1", "s2"]) keys[k] = newKeyPair();
    // A subnet "behind" spoke 1, reachable only through its tunnel.
    await s1.ip(["addr", "add", "10.78.100.5/32", "dev", "lo"]);

    nodes.push(
      await startNode({
        impl: "tswg",
        host: hub,
        ifname: bed.ifname("hub"),
        keys: keys.hub!,
        listenPort: 51820,
        addresses: ["10.78.0.1/24"],
        peers: [
          { publicKey: keys.s1!.publicKey, allowedIps: ["10.78.0.2/32", "10.78.100.0/24"] },
          { publicKey: keys.s2!.publicKey, allowedIps: ["10.78.0.3/32"] },
        ],
      }),
    );
    for (const [name, host, ip, hubIp] of [
      ["s1", s1, "10.78.0.2/24", "192.168.78.1"],
      ["s2", s2, "10.78.0.3/24", "192.168.79.1"],
    ] as const) {
      nodes.push(
        await startNode({
          impl: spokeImpl,
          host,
          ifname: bed.ifname(name),
          keys: keys[name]!,
          listenPort: 51821,
          addresses: [ip],
          peers: [{ publicKey: keys.hub!.publicKey, allowedIps: ["10.78.0.0/24"], endpoint: `${hubIp}:51820`, persistentKeepalive: 25 }],
        }),
      );
    }
  }, 60_000);

  afterAll(async () => {
    for (const n of nodes) await n.stop().catch(() => {});
    await bed?.cleanup();
  });

  it("routes to each spoke by AllowedIPs, including a subnet behind a spoke", async () => {
    await pingUntilReply(hub, "10.78.0.2");
    await pingUntilReply(hub, "10.78.0.3");
    await pingUntilReply(hub, "10.78.100.5");
    // Spoke to spoke through the hub: out of one peer, into the other.
    await pingUntilReply(s1, "10.78.0.3");
    await pingUntilReply(s2, "10.78.0.2");
    const dump = await nodes[0]!.peerDump();
    expect(dump.get(keys.s1!.publicKey)!.endpoint).toBe("192.168.78.2:51821");
    expect(dump.get(keys.s2!.publicKey)!.endpoint).toBe("192.168.79.2:51821");
  }, 60_000);

  it("drops packets whose inner source belongs to another peer", async () => {
    // Spoke 2 claims spoke 1's tunnel address: the hub must not accept it.
    const wg2 = bed.ifname("s2");
    await s2.ip(["addr", "add", "10.78.0.2/32", "dev", wg2]);
    try {
      const spoofed = await s2.exec(["ping", "-c", "3", "-W", "1", "-I", "10.78.0.2", "10.78.0.1"], { check: false });
      expect(spoofed.code).not.toBe(0);
      // The same spoke with its own address still gets through.
      await pingUntilReply(s2, "10.78.0.1", { src: "10.78.0.3" });
    } finally {
      await s2.ip(["addr", "del", "10.78.0.2/32", "dev", wg2]);
    }
  }, 60_000);

  it("a spoke's transfer to another spoke through the hub arrives intact", async () => {
    const r = await transfer(s1, s2, "10.78.0.3", 20 * MB);
    expect(r.received).toBe(r.sent.replace("sent", "received"));
  }, 120_000);
});

describe.skipIf(skip !== null).each<Impl>(["wireguard-go", "tswg"])("roaming: tswg moves while talking to %s", (peerImpl) => {
  let bed: TestBed;
  const nodes: WgNode[] = [];
  afterAll(async () => {
    for (const n of nodes) await n.stop().catch(() => {});
    await bed?.cleanup();
  });

  it("changes listen port and address mid-transfer; the transfer completes and the peer follows", async () => {
    bed = await TestBed.create("roam");
    const { a, b, link, keysA: ka, na, nb } = await startSimplePair(bed, peerImpl, nodes);

    // Paced to 160 Mbit/s (3 s), so both changes land mid-transfer however fast the path is.
    const r = await transfer(a, b, "10.77.0.2", 60 * MB, {
      mbps: 160,
      during: async () => {
        await new Promise((res) => setTimeout(res, 700));
        await na.wg(["set", na.spec.ifname, "listen-port", "51830"]);
        await new Promise((res) => setTimeout(res, 700));
        // Without promotion, deleting the primary address would take the new secondary with it.
        await a.sysctl(`net.ipv4.conf.${link.a.ifname}.promote_secondaries`, 1);
        await a.ip(["addr", "add", "192.168.77.11/24", "dev", link.a.ifname]);
        await a.ip(["addr", "del", "192.168.77.1/24", "dev", link.a.ifname]);
      },
    });
    expect(r.received).toBe(r.sent.replace("sent", "received"));
    await waitFor(async () => (await nb.peerDump()).get(ka.publicKey)!.endpoint === "192.168.77.11:51830", {
      timeoutMs: 10_000,
      what: "the peer to learn tswg's new endpoint",
    });
    // And traffic started from the peer's side reaches the new endpoint too.
    await pingUntilReply(b, "10.77.0.1");
  }, 180_000);
});
