/**
 * The README's embedding example, run as written (only the package name points at this
 * checkout's build) in a namespace, against wireguard-go: it must bring up an addressed
 * interface that pings the peer, and remove it on SIGINT.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { netnsUnavailableReason, TestBed, waitFor, type Host } from "../helpers/netns.js";
import { newKeyPair, pingUntilReply, REPO, startNode, type WgNode } from "./nodes.js";

function readmeExample(): string {
  const readme = readFileSync(join(REPO, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("## Embedding"));
  const m = /```ts\n([\s\S]*?)```/u.exec(section);
  if (m === null) throw new Error("README has no ts block under ## Embedding");
  return m[1]!;
}

const skip = await netnsUnavailableReason();

describe.skipIf(skip !== null)("the README's embedding example", () => {
  let bed: TestBed;
  let a: Host;
  let b: Host;
  let peer: WgNode;
  let peerIf: string;
  const kb = newKeyPair();

  beforeAll(async () => {
    bed = await TestBed.create("readme");
    a = await bed.host("a");
    b = await bed.host("b");
    await bed.link(a, b, { a: "192.168.84.1/24", b: "192.168.84.2/24" });
    // The example's peer: 10.0.0.2, which will learn the example's key once it prints it.
    peerIf = bed.ifname("p");
    peer = await startNode({ impl: "wireguard-go", host: b, ifname: peerIf, keys: kb, listenPort: 51821, addresses: ["10.0.0.2/24"], peers: [] });
  }, 60_000);
  afterAll(async () => {
    await peer?.stop().catch(() => {});
    await bed?.cleanup();
  });

  it("runs as written: an addressed interface that reaches the peer, gone after SIGINT", async () => {
    const code = readmeExample();
    expect(code).toMatch(/from "tswg";/);
    const file = join(bed.tempDir("example"), "example.mjs");
    writeFileSync(file, code.replace(/from "tswg";/u, `from ${JSON.stringify(join(REPO, "dist/index.js"))};`));
    const proc = a.spawn(["node", file], { env: { PEER_PUBLIC_KEY: kb.publicKey, PEER_ENDPOINT: "192.168.84.2:51821" } });
    const line = await proc.waitForOutput(/public key: (\S+)/, { timeoutMs: 20_000 });
    const ours = /public key: (\S+)/u.exec(line)![1]!;
    await b.exec(["wg", "set", peerIf, "peer", ours, "allowed-ips", "10.0.0.1/32"]);
    await proc.waitForOutput("wg0 is up", { timeoutMs: 20_000 });
    expect((await a.ip(["-4", "address", "show", "dev", "wg0"])).stdout).toContain("10.0.0.1/24");
    await pingUntilReply(a, "10.0.0.2");
    proc.signal("SIGINT");
    const exit = await proc.exited;
    expect(exit.code).toBe(0);
    await waitFor(async () => (await a.ip(["link", "show", "wg0"], { check: false })).code !== 0, { what: "wg0 to go", timeoutMs: 5000 });
  }, 60_000);
});
