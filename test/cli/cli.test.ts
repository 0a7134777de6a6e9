/**
 * The `tswg` command as an operator uses it: keys, `up` (detached) on a wg-quick file, the
 * standard `wg` tool and `tswg show` against the running interface, hooks, clear errors for
 * bad configuration, and `down`.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { netnsUnavailableReason, TestBed, waitFor, type Host } from "../helpers/netns.js";
import { newKeyPair, pingUntilReply, startNode, TSWG_BIN, type WgNode } from "../interop/nodes.js";

function tswg(args: string[], input?: string) {
  const r = spawnSync("node", [TSWG_BIN, ...args], { input, encoding: "utf8" });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("keys", () => {
  it("genkey | pubkey agrees with wg pubkey", () => {
    const priv = tswg(["genkey"]).stdout.trim();
    expect(Buffer.from(priv, "base64")).toHaveLength(32);
    const pub = tswg(["pubkey"], priv + "\n").stdout.trim();
    const wgPub = execFileSync("wg", ["pubkey"], { input: priv + "\n", encoding: "utf8" }).trim();
    expect(pub).toBe(wgPub);
  });

  it("genpsk makes distinct 32-byte keys; pubkey refuses garbage", () => {
    const a = tswg(["genpsk"]).stdout.trim();
    const b = tswg(["genpsk"]).stdout.trim();
    expect(Buffer.from(a, "base64")).toHaveLength(32);
    expect(a).not.toBe(b);
    const bad = tswg(["pubkey"], "not a key\n");
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/not a valid base64 32-byte key/);
  });

  it("unknown commands are usage errors", () => {
    const r = tswg(["frobnicate"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown command "frobnicate"/);
  });
});

const skip = await netnsUnavailableReason();

describe.skipIf(skip !== null)("up / show / wg / down", () => {
  let bed: TestBed;
  let a: Host;
  let b: Host;
  let dir: string;
  let peer: WgNode;
  const ka = newKeyPair();
  const kb = newKeyPair();
  let ifname: string;
  const env = () => ({ TSWG_RUN_DIR: dir, TSWG_LOG_DIR: dir });
  const run = (argv: string[], check = true) => a.exec(["node", TSWG_BIN, ...argv], { env: env(), check });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "tswgt-cli-"));
    bed = await TestBed.create("cli");
    a = await bed.host("a");
    b = await bed.host("b");
    await bed.link(a, b, { a: "192.168.77.1/24", b: "192.168.77.2/24" });
    ifname = bed.ifname("t");
    peer = await startNode({
      impl: "wireguard-go",
      host: b,
      ifname: bed.ifname("p"),
      keys: kb,
      listenPort: 51821,
      addresses: ["10.77.0.2/24"],
      peers: [{ publicKey: ka.publicKey, allowedIps: ["10.77.0.1/32"] }],
    });
  }, 60_000);

  afterAll(async () => {
    await peer?.stop().catch(() => {});
    await bed?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it("reports a bad configuration with file, line and key, and changes nothing", async () => {
    const conf = join(dir, `${ifname}.conf`);
    writeFileSync(
      conf,
      ["[Interface]", `PrivateKey = ${ka.privateKey}`, "Address = 10.77.0.1/24", "", "[Peer]", `PublicKey = ${kb.publicKey}`, "AllowedIPs = 10.77.0.300/32"].join("\n"),
    );
    const r = await run(["up", conf], false);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${ifname}.conf:7`);
    expect(r.stderr).toContain("AllowedIPs");
    expect((await a.ip(["link", "show", ifname], { check: false })).code).not.toBe(0);
    expect(existsSync(`/var/run/wireguard/${ifname}.sock`)).toBe(false);

    writeFileSync(conf, ["[Interface]", `PrivateKey = ${ka.privateKey}`, "Adress = 10.77.0.1/24"].join("\n"));
    const r2 = await run(["up", conf], false);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toContain(`${ifname}.conf:3`);
    expect(r2.stderr).toContain("Adress");
  });

  it("brings an interface up in the background, with hooks, and `wg` and `tswg show` see it", async () => {
    const conf = join(dir, `${ifname}.conf`);
    const marker = join(dir, "hook-marker");
    writeFileSync(
      conf,
      [
        "[Interface]",
        `PrivateKey = ${ka.privateKey}`,
        "Address = 10.77.0.1/24",
        "ListenPort = 51820",
        `PostUp = echo up %i > ${marker}`,
        `PostDown = echo down %i >> ${marker}`,
        "",
        "[Peer]",
        `PublicKey = ${kb.publicKey}`,
        "AllowedIPs = 10.77.0.2/32",
        "Endpoint = 192.168.77.2:51821",
        "PersistentKeepalive = 25",
      ].join("\n") + "\n",
    );
    const r = await run(["up", conf, "--detach"]);
    expect(r.stdout).toMatch(new RegExp(`${ifname} is up in the background`));
    expect(readFileSync(marker, "utf8")).toBe(`up ${ifname}\n`);
    await pingUntilReply(a, "10.77.0.2");

    const show = (await run(["show", ifname])).stdout;
    expect(show).toContain(`interface: ${ifname}`);
    expect(show).toContain(`public key: ${ka.publicKey}`);
    expect(show).toContain("listening port: 51820");
    expect(show).toContain(`peer: ${kb.publicKey}`);
    expect(show).toContain("endpoint: 192.168.77.2:51821");
    expect(show).toContain("allowed ips: 10.77.0.2/32");
    expect(show).toMatch(/latest handshake: /);
    expect(show).toContain("persistent keepalive: every 25 seconds");
    // tswg's own lines: which data path and crypto backend move the packets.
    expect(show).toMatch(/ {2}data path: (native|portable)\n/);
    expect(show).toMatch(/ {2}crypto: \w+\n/);

    // The standard tool reads the same state.
    const dump = (await a.exec(["wg", "show", ifname, "dump"])).stdout.trim().split("\n");
    expect(dump[0]!.split("\t").slice(0, 3)).toEqual([ka.privateKey, ka.publicKey, "51820"]);
    const fields = dump[1]!.split("\t");
    expect(fields[0]).toBe(kb.publicKey);
    expect(fields[3]).toBe("10.77.0.2/32");
    expect(Number(fields[4])).toBeGreaterThan(0);
    // tswg's own dump has the same layout; counters move between the two reads, so compare the rest.
    const ours = (await run(["show", ifname, "dump"])).stdout.trim().split("\n");
    expect(ours[0]).toBe(dump[0]);
    const strip = (l: string) => l.split("\t").filter((_, i) => i < 4 || i === 7);
    expect(strip(ours[1]!)).toEqual(strip(dump[1]!));

    // `wg set`: add a peer, change allowed IPs, remove it again.
    const extra = newKeyPair();
    await a.exec(["wg", "set", ifname, "peer", extra.publicKey, "allowed-ips", "10.77.0.9/32,fd77::9/128", "endpoint", "192.168.77.9:1234"]);
    let conf2 = (await a.exec(["wg", "showconf", ifname])).stdout;
    expect(conf2).toContain(`PublicKey = ${extra.publicKey}`);
    expect(conf2).toMatch(/AllowedIPs = 10\.77\.0\.9\/32, fd77::9\/128/);
    expect((await run(["show", ifname])).stdout).toContain(`peer: ${extra.publicKey}`);
    await a.exec(["wg", "set", ifname, "peer", extra.publicKey, "remove"]);
    conf2 = (await a.exec(["wg", "showconf", ifname])).stdout;
    expect(conf2).not.toContain(extra.publicKey);

    // `wg syncconf` with a file holding only the real peer plus a new one.
    const other = newKeyPair();
    const sync = join(dir, "sync.conf");
    writeFileSync(
      sync,
      ["[Interface]", `PrivateKey = ${ka.privateKey}`, "ListenPort = 51820", "", "[Peer]", `PublicKey = ${kb.publicKey}`, "AllowedIPs = 10.77.0.2/32", "Endpoint = 192.168.77.2:51821", "", "[Peer]", `PublicKey = ${other.publicKey}`, "AllowedIPs = 10.77.0.7/32"].join("\n") + "\n",
    );
    await a.exec(["wg", "syncconf", ifname, sync]);
    const peers = (await a.exec(["wg", "show", ifname, "peers"])).stdout.trim().split("\n").sort();
    expect(peers).toEqual([kb.publicKey, other.publicKey].sort());
    await pingUntilReply(a, "10.77.0.2");

    // A second `up` of the same interface is refused.
    const again = await run(["up", conf], false);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already (up|exists)/);
  }, 60_000);

  it("down tears the interface, socket and process away and runs PostDown", async () => {
    await run(["down", ifname]);
    expect((await a.ip(["link", "show", ifname], { check: false })).code).not.toBe(0);
    await waitFor(() => !existsSync(`/var/run/wireguard/${ifname}.sock`), { timeoutMs: 5000, what: "the UAPI socket to go" });
    expect(readFileSync(join(dir, "hook-marker"), "utf8")).toBe(`up ${ifname}\ndown ${ifname}\n`);
    const r = await run(["down", ifname], false);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/is not a tswg interface that is up/);
  }, 30_000);

  it("SaveConfig writes changes made with `wg set` back to the file on down", async () => {
    const name = bed.ifname("s");
    const conf = join(dir, `${name}.conf`);
    writeFileSync(
      conf,
      ["[Interface]", `PrivateKey = ${ka.privateKey}`, "Address = 10.77.1.1/24", "ListenPort = 51822", "SaveConfig = true", "", "[Peer]", `PublicKey = ${kb.publicKey}`, "AllowedIPs = 10.77.1.2/32"].join("\n") + "\n",
    );
    await run(["up", conf, "--detach"]);
    const added = newKeyPair();
    await a.exec(["wg", "set", name, "peer", added.publicKey, "allowed-ips", "10.77.1.5/32", "persistent-keepalive", "15"]);
    await run(["down", name]);
    const saved = readFileSync(conf, "utf8");
    expect(saved).toContain("Address = 10.77.1.1/24");
    expect(saved).toContain("SaveConfig = true");
    expect(saved).toContain(`PublicKey = ${added.publicKey}`);
    expect(saved).toMatch(/AllowedIPs = 10\.77\.1\.5\/32/);
    expect(saved).toContain("PersistentKeepalive = 15");
    expect(saved).toContain(`PublicKey = ${kb.publicKey}`);
  }, 30_000);
});
