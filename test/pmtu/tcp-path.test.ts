/**
 * WireGuard over TCP (UoTLV/1) across a 1280 link, tunnel MTU 1420: the outer TCP connection
 * segments the stream to its own MSS, so no datagram limit applies; a TCP transfer through the
 * tunnel completes in both directions (checked by hash) and `tswg show` says "any (tcp)".
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { netnsUnavailableReason, TestBed, type Host } from "../helpers/netns.js";
import { smallLink } from "./small-link.js";
import { newKeyPair, pingUntilReply, startNode, transfer, TSWG_BIN, type WgNode } from "../interop/nodes.js";

const skip = await netnsUnavailableReason();
const MB = 1024 * 1024;

describe.skipIf(skip !== null)("UoTLV path across a 1280 link, tunnel MTU 1420", () => {
  let bed: TestBed;
  let a: Host;
  let b: Host;
  const nodes: WgNode[] = [];

  beforeAll(async () => {
    bed = await TestBed.create("ptcp");
    ({ a, b } = await smallLink(bed, { subnet: 93, mtu: 1280 }));
    const ka = newKeyPair();
    const kb = newKeyPair();
    nodes.push(
      await startNode({
        impl: "tswg",
        host: b,
        ifname: bed.ifname("b"),
        keys: kb,
        listenPort: 51821,
        addresses: ["10.93.0.2/24"],
        peers: [{ publicKey: ka.publicKey, allowedIps: ["10.93.0.1/32"] }],
        interfaceLines: ["TCPListen = [fd94::1]:8443"],
      }),
    );
    nodes.push(
      await startNode({
        impl: "tswg",
        host: a,
        ifname: bed.ifname("a"),
        keys: ka,
        listenPort: 51820,
        addresses: ["10.93.0.1/24"],
        peers: [{ publicKey: kb.publicKey, allowedIps: ["10.93.0.2/32"], endpoint: "http://[fd94::1]:8443/", persistentKeepalive: 25 }],
      }),
    );
    await pingUntilReply(a, "10.93.0.2", { timeoutMs: 30_000 });
  }, 90_000);

  afterAll(async () => {
    for (const n of nodes) await n.stop().catch(() => undefined);
    await bed?.cleanup();
  });

  it("carries a TCP transfer both ways and shows no datagram limit", async () => {
    for (const [from, to, ip] of [
      [a, b, "10.93.0.2"],
      [b, a, "10.93.0.1"],
    ] as const) {
      const r = await transfer(from, to, ip, 8 * MB, { timeoutMs: 90_000 });
      expect(r.received.replace(/^received/u, "")).toBe(r.sent.replace(/^sent/u, ""));
      console.log(`UoTLV across 1280: ${((8 * 8 * MB) / r.seconds / 1e9).toFixed(3)} Gbit/s (${from.label}->${to.label})`);
    }
    expect((await a.exec(["node", TSWG_BIN, "show", bed.ifname("a")])).stdout).toContain("path mtu: any (tcp)");
    const json = JSON.parse((await a.exec(["node", TSWG_BIN, "show", bed.ifname("a"), "--json"])).stdout) as {
      interfaces: { peers: { path_mtu?: number; path_mtu_source?: string }[] }[];
    };
    const peer = json.interfaces[0]!.peers[0]!;
    expect(peer.path_mtu_source).toBe("tcp");
    expect(peer.path_mtu).toBeUndefined();
  }, 240_000);
});
