/**
 * `MSSClamp = auto` for an inner host that filters ICMP, on a path that drops fragments: hosts
 * a - router - b, the router's link to b has MTU 1280 (outer IPv6), the router drops IPv6
 * fragments (as many firewalls do), and host a drops the ICMP "fragmentation needed" the tunnel
 * sends it. Tunnel MTU 1420 on both ends. Without clamping a's full-size segments can only go as
 * fragments, which never arrive: the transfer stalls. With it the SYN/SYN-ACK carry an MSS that
 * fits the path and the transfer completes, checked by hash.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { netnsUnavailableReason, TestBed, waitFor, type Host } from "../helpers/netns.js";
import { smallLink } from "./small-link.js";
import { newKeyPair, pingUntilReply, startNode, transfer, TRANSFER, TSWG_BIN, type Impl, type WgNode } from "../interop/nodes.js";

const skip = await netnsUnavailableReason();
const MB = 1024 * 1024;

interface Case {
  plane: "native" | "portable";
  /** The peer on host b; wireguard-go does no clamping, so a alone must do it. */
  peer: Impl;
}

const cases: Case[] = [
  { plane: "native", peer: "tswg" },
  { plane: "portable", peer: "tswg" },
  { plane: "native", peer: "wireguard-go" },
];

/** The MSS option of the SYN-ACK host a received for a connection to b, as `ss` shows it ("mss:N" is a's send MSS). */
async function sendMss(a: Host, port: number): Promise<number | null> {
  const out = (await a.exec(["ss", "-tin", "dst", `10.83.0.2:${port}`], { check: false })).stdout;
  const m = /\bmss:(\d+)/u.exec(out);
  return m === null ? null : Number(m[1]);
}

describe.skipIf(skip !== null).each(cases)("MSSClamp, ICMP-filtering host behind a fragment-dropping 1280 path, tswg ($plane) to $peer", (c) => {
  let bed: TestBed;
  let a: Host;
  let b: Host;
  let nodes: WgNode[] = [];
  const ka = newKeyPair();
  const kb = newKeyPair();

  async function startTunnel(clamp: boolean): Promise<void> {
    for (const n of nodes) await n.stop();
    nodes = [];
    const lines = clamp ? ["MSSClamp = auto"] : [];
    nodes.push(
      await startNode({
        impl: "tswg",
        host: a,
        ifname: bed.ifname("a"),
        keys: ka,
        listenPort: 51820,
        addresses: ["10.83.0.1/24"],
        peers: [{ publicKey: kb.publicKey, allowedIps: ["10.83.0.2/32"], endpoint: "[fd84::1]:51821" }],
        env: { TSWG_DATAPATH: c.plane },
        interfaceLines: lines,
      }),
    );
    nodes.push(
      await startNode({
        impl: c.peer,
        host: b,
        ifname: bed.ifname("b"),
        keys: kb,
        listenPort: 51821,
        addresses: ["10.83.0.2/24"],
        peers: [{ publicKey: ka.publicKey, allowedIps: ["10.83.0.1/32"] }],
        env: { TSWG_DATAPATH: c.plane },
        interfaceLines: lines,
      }),
    );
    // ICMP "fragmentation needed" from the tunnel never reaches a's TCP.
    await a.exec(["iptables", "-A", "INPUT", "-i", bed.ifname("a"), "-p", "icmp", "--icmp-type", "fragmentation-needed", "-j", "DROP"]);
    await pingUntilReply(a, "10.83.0.2");
  }

  beforeAll(async () => {
    bed = await TestBed.create("mss");
    const net = await smallLink(bed, { subnet: 83, mtu: 1280, ipv4: true });
    ({ a, b } = net);
    const r = net.r;
    // The router forwards no IPv6 fragments.
    await r.exec(["nft", "add table ip6 nofrag"].join(" ").split(" "));
    await r.exec(["nft", "add", "chain", "ip6", "nofrag", "forward", "{ type filter hook forward priority 0 ; }"]);
    await r.exec(["nft", "add", "rule", "ip6", "nofrag", "forward", "exthdr", "frag", "exists", "counter", "drop"]);
  }, 60_000);

  afterAll(async () => {
    for (const n of nodes) await n.stop().catch(() => undefined);
    await bed?.cleanup();
  });

  it.skipIf(c.peer !== "tswg" || c.plane !== "native")("without MSSClamp the transfer stalls", async () => {
    await startTunnel(false);
    const server = b.spawn(["node", TRANSFER, "serve", "10.83.0.2", "5202"]);
    await server.waitForOutput("listening", { timeoutMs: 10_000 });
    const client = a.spawn(["node", TRANSFER, "send", "10.83.0.2", "5202", String(4 * MB)]);
    try {
      await expect(server.waitForOutput(/received \d+/u, { timeoutMs: 15_000 })).rejects.toThrow();
      expect(await sendMss(a, 5202)).toBe(1368); // 1420 - 40 - 12 bytes of timestamps
    } finally {
      await client.stop();
      await server.stop();
    }
  }, 60_000);

  it("with MSSClamp = auto a transfer completes, checked by hash", async () => {
    await startTunnel(true);
    if (c.peer === "wireguard-go") {
      // a learns the path first: one full-size datagram draws the router's "packet too big" (the
      // ping itself is lost as fragments). b's end does no clamping, so the SYN-ACK is a's to clamp.
      await a.exec(["ping", "-c", "1", "-W", "1", "-s", "1392", "10.83.0.2"], { check: false });
      await waitFor(async () => (await a.exec(["node", TSWG_BIN, "show", bed.ifname("a")])).stdout.includes("path mtu: 1280"), {
        timeoutMs: 10_000,
        what: "a to learn the 1280 path",
      });
    }
    const r = await transfer(a, b, "10.83.0.2", 8 * MB, { port: 5203, timeoutMs: 60_000 });
    expect(r.sent).toMatch(/^sent \d+ [0-9a-f]{64}$/u);
    expect(r.received.replace(/^received/u, "")).toBe(r.sent.replace(/^sent/u, ""));
    console.log(`MSSClamp ${c.plane}/${c.peer}: ${((8 * 8 * MB) / r.seconds / 1e9).toFixed(2)} Gbit/s`);
  }, 120_000);
});
