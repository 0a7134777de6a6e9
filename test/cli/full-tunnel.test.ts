/**
 * The commonest VPN configuration: every address through the tunnel (`AllowedIPs = 0.0.0.0/0,
 * ::/0`, default `Table = auto`, no `FwMark`). tswg must pick a fresh routing table (which does
 * not exist yet, so iproute2 says "FIB table does not exist"), mark its own packets, add the
 * policy rules, carry traffic to any address through the peer, and remove the rules on `down`.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { netnsUnavailableReason, TestBed, type Host } from "../helpers/netns.js";
import { newKeyPair, pingUntilReply, startNode, TSWG_BIN, type WgNode } from "../interop/nodes.js";

const skip = await netnsUnavailableReason();

describe.skipIf(skip !== null)("full tunnel (0.0.0.0/0, ::/0, Table = auto)", () => {
  let bed: TestBed;
  let a: Host;
  let b: Host;
  let dir: string;
  let peer: WgNode;
  const ka = newKeyPair();
  const kb = newKeyPair();
  let ifname: string;
  const run = (argv: string[], check = true) => a.exec(["node", TSWG_BIN, ...argv], { env: { TSWG_RUN_DIR: dir, TSWG_LOG_DIR: dir }, check });
  const rules = async (f: "-4" | "-6") => (await a.ip([f, "rule", "show"])).stdout;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "tswgt-full-"));
    bed = await TestBed.create("full");
    a = await bed.host("a");
    b = await bed.host("b");
    await bed.link(a, b, { a: "192.168.78.1/24", b: "192.168.78.2/24" });
    ifname = bed.ifname("f");
    peer = await startNode({
      impl: "wireguard-go",
      host: b,
      ifname: bed.ifname("p"),
      keys: kb,
      listenPort: 51821,
      addresses: ["10.78.0.2/24"],
      peers: [{ publicKey: ka.publicKey, allowedIps: ["10.78.0.1/32"] }],
    });
    // An address beyond the peer, reachable from a only through the default route.
    await b.ip(["address", "add", "10.99.0.1/32", "dev", "lo"]);
  }, 60_000);

  afterAll(async () => {
    await peer?.stop().catch(() => {});
    await bed?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it("comes up, routes everything through the peer, and removes its rules on down", async () => {
    const conf = join(dir, `${ifname}.conf`);
    writeFileSync(
      conf,
      [
        "[Interface]",
        `PrivateKey = ${ka.privateKey}`,
        "Address = 10.78.0.1/24",
        "",
        "[Peer]",
        `PublicKey = ${kb.publicKey}`,
        "AllowedIPs = 0.0.0.0/0, ::/0",
        "Endpoint = 192.168.78.2:51821",
      ].join("\n") + "\n",
      { mode: 0o600 },
    );
    const before4 = await rules("-4");
    const r = await run(["up", conf, "--detach"], false);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);

    // A fresh table (none existed in the new namespace) holds the default routes of both families.
    expect((await a.ip(["-4", "route", "show", "table", "51820"])).stdout).toMatch(new RegExp(`^default dev ${ifname}`, "m"));
    expect((await a.ip(["-6", "route", "show", "table", "51820"])).stdout).toMatch(new RegExp(`^default dev ${ifname}`, "m"));
    for (const f of ["-4", "-6"] as const) {
      const text = await rules(f);
      expect(text).toMatch(/not from all fwmark 0xca6c lookup 51820/);
      expect(text).toMatch(/from all lookup main suppress_prefixlength 0/);
    }
    expect((await a.exec(["wg", "show", ifname, "fwmark"])).stdout.trim()).toBe("0xca6c");

    // The tunnel's own UDP still leaves through the veth (it carries the mark), and any other
    // address goes through the peer.
    await pingUntilReply(a, "10.78.0.2");
    await pingUntilReply(a, "10.99.0.1");
    const route = (await a.ip(["-4", "route", "get", "10.99.0.1"])).stdout;
    expect(route).toContain(`dev ${ifname}`);

    await run(["down", ifname]);
    expect(await rules("-4")).toBe(before4);
    expect(await rules("-6")).not.toMatch(/51820|suppress_prefixlength/);
    expect((await a.ip(["link", "show", ifname], { check: false })).code).not.toBe(0);
  }, 60_000);
});
