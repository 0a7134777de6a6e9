/**
 * A handshake flood from one address must not keep a legitimate peer out. tswg listens on host s;
 * host f sends it 100 000 initiations per second with a valid mac1 (random content) from one
 * address; wireguard-go on host l is restarted during the flood and must complete a handshake
 * (a ping through the tunnel) within 40 s — it gets a cookie reply, and its retry carries a
 * valid mac2. Run on the native and the portable data plane.
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadNative } from "../../src/native/load.js";
import { netnsUnavailableReason, TestBed, type Host, type TrackedProcess } from "../helpers/netns.js";
import { newKeyPair, pingUntilReply, REPO, startNode, type KeyPair, type NodeSpec, type WgNode } from "../interop/nodes.js";

const skip = await netnsUnavailableReason();
const FLOODER = join(REPO, "test/flood/fixtures/flooder.mjs");
const RATE = 100_000;
const planes = loadNative().addon !== null ? (["native", "portable"] as const) : (["portable"] as const);

describe.skipIf(skip !== null).each(planes)("a one-address handshake flood (%s plane)", (plane) => {
  let bed: TestBed;
  let s: Host;
  let l: Host;
  let f: Host;
  let keysS: KeyPair;
  let keysL: KeyPair;
  const nodes: WgNode[] = [];
  let flooder: TrackedProcess | null = null;

  beforeAll(async () => {
    bed = await TestBed.create("flood");
    s = await bed.host("s");
    l = await bed.host("l");
    f = await bed.host("f");
    await bed.link(s, l, { a: "192.168.77.1/24", b: "192.168.77.2/24" });
    await bed.link(s, f, { a: "192.168.78.1/24", b: "192.168.78.2/24" });
    keysS = newKeyPair();
    keysL = newKeyPair();
  });

  afterAll(async () => {
    await flooder?.stop().catch(() => {});
    for (const n of nodes) await n.stop().catch(() => {});
    await bed?.cleanup();
  });

  it("lets a restarted wireguard-go peer complete a handshake", async () => {
    nodes.push(
      await startNode({
        impl: "tswg",
        host: s,
        ifname: bed.ifname("s"),
        keys: keysS,
        listenPort: 51820,
        addresses: ["10.77.0.1/24"],
        peers: [{ publicKey: keysL.publicKey, allowedIps: ["10.77.0.2/32"] }],
        env: { TSWG_DATAPATH: plane },
      }),
    );
    const legit: NodeSpec = {
      impl: "wireguard-go",
      host: l,
      ifname: bed.ifname("l"),
      keys: keysL,
      listenPort: 51821,
      addresses: ["10.77.0.2/24"],
      peers: [{ publicKey: keysS.publicKey, allowedIps: ["10.77.0.1/32"], endpoint: "192.168.77.1:51820" }],
    };
    let wg = await startNode(legit);
    nodes.push(wg);
    await pingUntilReply(l, "10.77.0.1");

    flooder = f.spawn(["node", FLOODER, "192.168.78.1", "51820", keysS.publicKey, String(RATE), "192.168.78.2"]);
    await flooder.waitForOutput("flooding", { timeoutMs: 10_000 });
    // Let the flood put tswg under load before the peer comes back.
    await new Promise((r) => setTimeout(r, 2000));

    await wg.stop();
    nodes.splice(nodes.indexOf(wg), 1);
    wg = await startNode(legit);
    nodes.push(wg);
    const t0 = performance.now();
    await pingUntilReply(l, "10.77.0.1", { timeoutMs: 40_000 });
    const seconds = (performance.now() - t0) / 1000;

    await flooder.stop();
    const done = await flooder.waitForOutput(/sent \d+ in [\d.]+ s/, { timeoutMs: 5000 });
    const [, n, secs] = /sent (\d+) in ([\d.]+) s/.exec(done)!;
    const achieved = Number(n) / Number(secs);
    flooder = null;
    console.log(`${plane}: handshake after ${seconds.toFixed(1)} s under ${(achieved / 1000).toFixed(0)} k initiations/s`);
    // The flood was real: well over the rate at which tswg goes under load (512/s).
    expect(achieved).toBeGreaterThan(30_000);
    const dump = await wg.peerDump();
    expect(dump.get(keysS.publicKey)?.latestHandshake ?? 0).toBeGreaterThan(0);
  }, 120_000);
});
