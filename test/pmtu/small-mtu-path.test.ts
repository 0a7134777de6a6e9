/**
 * Two WireGuard peers across a router whose far link has a small MTU (1280, IPv6 minimum, and 1400),
 * tunnel MTU 1420 on both ends and no hand tuning: a TCP transfer through the tunnel must complete,
 * over IPv4 and IPv6 outer paths, on both tswg data planes, against tswg and against wireguard-go.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { netnsUnavailableReason, TestBed, waitFor, type Host } from "../helpers/netns.js";
import { smallLink } from "./small-link.js";
import { newKeyPair, pingUntilReply, startNode, transfer, TSWG_BIN, type Impl, type WgNode } from "../interop/nodes.js";

const skip = await netnsUnavailableReason();
const MB = 1024 * 1024;
// Figures for docs/mtu.md: PMTU_MB=128 PMTU_RUNS=3 prints the throughput of each run.
const transferMb = Number(process.env.PMTU_MB ?? 8);
const runs = Number(process.env.PMTU_RUNS ?? 1);

interface Case {
  outer: 4 | 6;
  linkMtu: number;
  peer: Impl;
  plane: "native" | "portable";
}

const allCases: Case[] = [
  { outer: 6, linkMtu: 1280, peer: "tswg", plane: "native" },
  { outer: 6, linkMtu: 1280, peer: "tswg", plane: "portable" },
  { outer: 6, linkMtu: 1280, peer: "wireguard-go", plane: "native" },
  { outer: 4, linkMtu: 1280, peer: "tswg", plane: "native" },
  { outer: 4, linkMtu: 1280, peer: "wireguard-go", plane: "portable" },
  { outer: 6, linkMtu: 1400, peer: "tswg", plane: "native" },
];
const only = process.env.PMTU_CASE;
const cases = only ? allCases.filter((c) => `${c.outer}-${c.linkMtu}-${c.plane}-${c.peer}` === only) : allCases;

describe.skipIf(skip !== null).each(cases)("outer IPv$outer, far link MTU $linkMtu, tswg ($plane) to $peer", (c) => {
  let bed: TestBed;
  let a: Host;
  let b: Host;
  const nodes: WgNode[] = [];

  beforeAll(async () => {
    bed = await TestBed.create("pmtu");
    ({ a, b } = await smallLink(bed, { subnet: 81, mtu: c.linkMtu, ipv4: true }));
    const ka = newKeyPair();
    const kb = newKeyPair();
    const endpointB = c.outer === 6 ? "[fd82::1]:51821" : "192.168.82.1:51821";
    nodes.push(
      await startNode({
        impl: "tswg",
        host: a,
        ifname: bed.ifname("a"),
        keys: ka,
        listenPort: 51820,
        addresses: ["10.81.0.1/24"],
        peers: [{ publicKey: kb.publicKey, allowedIps: ["10.81.0.2/32"], endpoint: endpointB }],
        env: { TSWG_DATAPATH: c.plane },
      }),
    );
    nodes.push(
      await startNode({
        impl: c.peer,
        host: b,
        ifname: bed.ifname("b"),
        keys: kb,
        listenPort: 51821,
        addresses: ["10.81.0.2/24"],
        peers: [{ publicKey: ka.publicKey, allowedIps: ["10.81.0.1/32"] }],
        env: { TSWG_DATAPATH: c.plane },
      }),
    );
    await pingUntilReply(a, "10.81.0.2");
  }, 60_000);

  afterAll(async () => {
    for (const n of nodes) await n.stop().catch(() => undefined);
    await bed?.cleanup();
  });

  it("carries a TCP transfer in both directions with no MTU change", async () => {
    for (const [from, to, ip] of [
      [a, b, "10.81.0.2"],
      [b, a, "10.81.0.1"],
    ] as const) {
      for (let run = 0; run < runs; run++) {
        const r = await transfer(from, to, ip, transferMb * MB, { timeoutMs: 40_000 + transferMb * 500 });
        // Same byte count and hash on both ends.
        expect(r.received.replace(/^received/u, "")).toBe(r.sent.replace(/^sent/u, ""));
        const gbits = (transferMb * 8 * MB) / r.seconds / 1e9;
        console.log(`IPv${c.outer} MTU ${c.linkMtu} ${c.plane}/${c.peer}: ${gbits.toFixed(2)} Gbit/s (${from.label}->${to.label})`);
      }
    }
    {
      // The tunnel answered oversized inner packets with "fragmentation needed": the inner
      // sender's route cache now holds the path's inner MTU.
      const inner = (c.linkMtu - (c.outer === 6 ? 48 : 28) - 32) & ~15;
      // (A short transfer may end before the outer path MTU is re-read: DF pings keep asking.)
      await waitFor(
        async () => {
          await a.exec(["ping", "-c", "1", "-W", "1", "-M", "do", "-s", "1372", "10.81.0.2"], { check: false });
          return (await a.exec(["ip", "route", "get", "10.81.0.2"])).stdout.includes(`mtu ${inner}`);
        },
        { timeoutMs: 10_000, what: `the inner route cache to show mtu ${inner}` },
      );
      // `tswg show` reports the bottleneck as the peer's path MTU: on a, lowered by the router's
      // ICMP; on b, whose own link is the small one, the interface's MTU.
      const show = (await a.exec(["node", TSWG_BIN, "show", bed.ifname("a")])).stdout;
      expect(show).toContain(`path mtu: ${c.linkMtu} (icmp)`);
      const json = JSON.parse((await a.exec(["node", TSWG_BIN, "show", bed.ifname("a"), "--json"])).stdout) as {
        interfaces: { peers: { path_mtu?: number; path_mtu_source?: string }[] }[];
      };
      expect(json.interfaces[0]!.peers[0]).toMatchObject({ path_mtu: c.linkMtu, path_mtu_source: "icmp" });
      if (c.peer === "tswg") {
        expect((await b.exec(["node", TSWG_BIN, "show", bed.ifname("b")])).stdout).toContain(`path mtu: ${c.linkMtu} (interface)`);
      }
    }
  }, 600_000);
});
