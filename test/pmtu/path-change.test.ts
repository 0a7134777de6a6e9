/**
 * A path whose MTU shrinks under a running transfer: hosts a - router - b, where the router
 * reaches b's endpoint address (on b's loopback) over a 1500 link, then, mid-transfer, over a
 * 1280 link. Tunnel MTU 1420. The transfer must complete (checked by hash) with no MTU change by
 * hand, and `tswg show` on a must follow: the interface's 1500 before, 1280 learnt by ICMP after.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { netnsUnavailableReason, TestBed, waitFor, type Host } from "../helpers/netns.js";
import { newKeyPair, pingUntilReply, startNode, transfer, TSWG_BIN, type WgNode } from "../interop/nodes.js";

const skip = await netnsUnavailableReason();
const MB = 1024 * 1024;

describe.skipIf(skip !== null).each(["native", "portable"] as const)("path MTU re-learnt when the route changes mid-transfer (%s plane)", (plane) => {
  let bed: TestBed;
  let a: Host;
  let r: Host;
  let b: Host;
  const nodes: WgNode[] = [];

  beforeAll(async () => {
    bed = await TestBed.create("pchg");
    a = await bed.host("a");
    r = await bed.host("r", { forwarding: true });
    b = await bed.host("b");
    await bed.link(a, r, { a6: "fd87::1/64", b6: "fd87::fe/64" });
    await bed.link(r, b, { a6: "fd88::fe/64", b6: "fd88::1/64" });
    await bed.link(r, b, { a6: "fd89::fe/64", b6: "fd89::1/64", mtu: 1280 });
    await b.ip(["link", "set", "lo", "up"]);
    await b.ip(["-6", "addr", "add", "fd90::1/128", "dev", "lo"]);
    await a.ip(["-6", "route", "add", "fd90::1/128", "via", "fd87::fe"]);
    await r.ip(["-6", "route", "add", "fd90::1/128", "via", "fd88::1"]);
    // b answers from its endpoint address, so a never roams to a link address.
    await b.ip(["-6", "route", "add", "fd87::/64", "via", "fd88::fe", "src", "fd90::1"]);
    const ka = newKeyPair();
    const kb = newKeyPair();
    nodes.push(
      await startNode({
        impl: "tswg",
        host: a,
        ifname: bed.ifname("a"),
        keys: ka,
        listenPort: 51820,
        addresses: ["10.87.0.1/24"],
        peers: [{ publicKey: kb.publicKey, allowedIps: ["10.87.0.2/32"], endpoint: "[fd90::1]:51821" }],
        env: { TSWG_DATAPATH: plane },
      }),
    );
    nodes.push(
      await startNode({
        impl: "tswg",
        host: b,
        ifname: bed.ifname("b"),
        keys: kb,
        listenPort: 51821,
        addresses: ["10.87.0.2/24"],
        peers: [{ publicKey: ka.publicKey, allowedIps: ["10.87.0.1/32"] }],
        env: { TSWG_DATAPATH: plane },
      }),
    );
    await pingUntilReply(a, "10.87.0.2");
  }, 60_000);

  afterAll(async () => {
    for (const n of nodes) await n.stop().catch(() => undefined);
    await bed?.cleanup();
  });

  const show = async (): Promise<string> => (await a.exec(["node", TSWG_BIN, "show", bed.ifname("a")])).stdout;

  it("completes the transfer and shows the new path MTU", async () => {
    let before = "";
    // Paced (40 Mbit/s, about 5 s) so that the switch falls in the middle.
    const res = await transfer(a, b, "10.87.0.2", 24 * MB, {
      mbps: 40,
      timeoutMs: 90_000,
      during: async () => {
        await waitFor(async () => /path mtu: 1500 \(interface\)/u.test(await show()), { timeoutMs: 10_000, what: "a to show the 1500 path" });
        before = "path mtu: 1500 (interface)";
        await r.ip(["-6", "route", "replace", "fd90::1/128", "via", "fd89::1"]);
        await waitFor(async () => (await show()).includes("path mtu: 1280 (icmp)"), { timeoutMs: 15_000, what: "a to show the 1280 path" });
      },
    });
    expect(before).toBe("path mtu: 1500 (interface)");
    expect(res.received.replace(/^received/u, "")).toBe(res.sent.replace(/^sent/u, ""));
    // The inner sender was told as well: its route cache holds the new path's inner MTU.
    expect((await a.exec(["ip", "route", "get", "10.87.0.2"])).stdout).toContain("mtu 1200");
    console.log(`path change (${plane}): ${((24 * 8 * MB) / res.seconds / 1e9).toFixed(3)} Gbit/s`);
  }, 150_000);
});
