/**
 * The operator's toolbox against a running interface: help for every command, `show --json`
 * validated against its schema, `show all dump` in wg's shape, metrics scraped with curl,
 * `tswg ping` naming the path, `strip`, `save`, SIGHUP reload without dropping the tunnel, and
 * `show interfaces` leaving out a dead socket.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Ajv from "ajv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { netnsUnavailableReason, TestBed, waitFor, type Host } from "../helpers/netns.js";
import { newKeyPair, pingUntilReply, REPO, startNode, TSWG_BIN, type WgNode } from "../interop/nodes.js";

function tswg(args: string[]) {
  const r = spawnSync("node", [TSWG_BIN, ...args], { encoding: "utf8" });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Parses Prometheus text format strictly: every sample's family declared first, values numeric. */
function parseExposition(text: string): { name: string; labels: Record<string, string>; value: number }[] {
  const types = new Map<string, string>();
  const out: { name: string; labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const t = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge)$/.exec(line);
    if (t) {
      expect(types.has(t[1]!), `${t[1]} declared twice`).toBe(false);
      types.set(t[1]!, t[2]!);
      continue;
    }
    if (line.startsWith("# HELP ")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    expect(m, `not a sample line: ${line}`).not.toBeNull();
    const [, name, labelText, value] = m!;
    expect(types.has(name!), `${name} has no TYPE line before it`).toBe(true);
    const labels: Record<string, string> = {};
    for (const l of (labelText ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/g)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, "$1");
    expect(Number.isNaN(Number(value))).toBe(false);
    out.push({ name: name!, labels, value: Number(value) });
  }
  return out;
}

describe("help and usage errors", () => {
  it.each(["up", "down", "show", "strip", "save", "ping", "netcheck", "signal", "genkey"])("`tswg %s --help` prints its help and exits 0", (cmd) => {
    const r = tswg([cmd, "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^Usage: tswg ${cmd}`));
  });

  it("usage mistakes exit 2 everywhere, with the command's own help", () => {
    for (const args of [["up"], ["down", "a", "b"], ["show", "--bogus"], ["ping"], ["netcheck"], ["signal", "--listen", "x"], ["proxyguard", "server", "--bogus"], ["genkey", "x"]]) {
      const r = tswg(args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr, args.join(" ")).toMatch(new RegExp(`^tswg: [^]*\\n\\nUsage:[^]*tswg ${args[0]}`));
    }
  });
});

const skip = await netnsUnavailableReason();

describe.skipIf(skip !== null)("against a running interface", () => {
  let bed: TestBed;
  let a: Host;
  let b: Host;
  let dir: string;
  let peer: WgNode;
  let ifname: string;
  let conf: string;
  const ka = newKeyPair();
  const kb = newKeyPair();
  const env = () => ({ TSWG_RUN_DIR: dir, TSWG_LOG_DIR: dir });
  const run = (argv: string[], check = true) => a.exec(["node", TSWG_BIN, ...argv], { env: env(), check });
  const baseConf = (extraPeers: string[] = []) =>
    [
      "[Interface]",
      `PrivateKey = ${ka.privateKey}`,
      "Address = 10.78.0.1/24",
      "ListenPort = 51830",
      "MetricsListen = 127.0.0.1:9586",
      "PostUp = true",
      "",
      "[Peer]",
      `PublicKey = ${kb.publicKey}`,
      "AllowedIPs = 10.78.0.2/32",
      "Endpoint = 192.168.78.2:51831",
      ...extraPeers,
    ].join("\n") + "\n";

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "tswgt-tool-"));
    bed = await TestBed.create("tool");
    a = await bed.host("a");
    b = await bed.host("b");
    await bed.link(a, b, { a: "192.168.78.1/24", b: "192.168.78.2/24" });
    await a.ip(["link", "set", "lo", "up"]);
    ifname = bed.ifname("t");
    peer = await startNode({
      impl: "wireguard-go",
      host: b,
      ifname: bed.ifname("p"),
      keys: kb,
      listenPort: 51831,
      addresses: ["10.78.0.2/24"],
      peers: [{ publicKey: ka.publicKey, allowedIps: ["10.78.0.1/32"] }],
    });
    conf = join(dir, `${ifname}.conf`);
    writeFileSync(conf, baseConf(), { mode: 0o600 });
    await run(["up", conf, "--detach"]);
    await pingUntilReply(a, "10.78.0.2");
  }, 60_000);

  afterAll(async () => {
    await run(["down", ifname], false).catch(() => {});
    await peer?.stop().catch(() => {});
    await bed?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it("show --json is one document that validates against the published schema", async () => {
    const schema = JSON.parse(readFileSync(join(REPO, "schema/tswg-show.schema.json"), "utf8")) as object;
    const validate = new Ajv({ allErrors: true }).compile(schema);
    const doc = JSON.parse((await run(["show", ifname, "--json"])).stdout) as {
      interfaces: { name: string; public_key: string; listen_port: number; data_path: string; peers: Record<string, unknown>[] }[];
    };
    expect(validate(doc), JSON.stringify(validate.errors)).toBe(true);
    const [i] = doc.interfaces;
    expect(i).toMatchObject({ name: ifname, public_key: ka.publicKey, listen_port: 51830 });
    expect(["native", "portable"]).toContain(i!.data_path);
    expect(i).toMatchObject({ cookie_mode: false, cookie_replies_sent: 0 });
    // The device's drop counters, by reason.
    expect(Object.keys((i as unknown as { drops: object }).drops)).toEqual(expect.arrayContaining(["no_route", "no_endpoint"]));
    const p = i!.peers[0]!;
    expect(p).toMatchObject({ public_key: kb.publicKey, endpoint: "192.168.78.2:51831", allowed_ips: ["10.78.0.2/32"], transport: "udp", path: "direct" });
    expect(p.latest_handshake as number).toBeGreaterThan(0);
    expect(p.rx_bytes as number).toBeGreaterThan(0);
    // A schema that accepted anything would prove nothing: a broken document must fail it.
    expect(validate({ ...doc, interfaces: [{ ...i, peers: [{ ...p, path: "sideways" }] }] })).toBe(false);
  });

  it("show all dump keeps wg's tab-separated shape, with the interface name first", async () => {
    const ours = (await run(["show", "all", "dump"])).stdout.trim().split("\n").filter((l) => l.startsWith(`${ifname}\t`));
    const wg = (await a.exec(["wg", "show", "all", "dump"])).stdout.trim().split("\n").filter((l) => l.startsWith(`${ifname}\t`));
    expect(ours.map((l) => l.split("\t").length)).toEqual(wg.map((l) => l.split("\t").length));
    expect(ours[0]).toBe(wg[0]);
  });

  it("serves Prometheus metrics on MetricsListen that curl can scrape", async () => {
    const text = (await a.exec(["curl", "-sf", "http://127.0.0.1:9586/metrics"])).stdout;
    const samples = parseExposition(text);
    const of = (name: string) => samples.filter((s) => s.name === name && s.labels.public_key === kb.publicKey);
    const labels = { interface: ifname, public_key: kb.publicKey, allowed_ips: "10.78.0.2/32" };
    expect(of("wireguard_sent_bytes_total")[0]).toMatchObject({ labels });
    expect(of("wireguard_sent_bytes_total")[0]!.value).toBeGreaterThan(0);
    expect(of("wireguard_received_bytes_total")[0]!.value).toBeGreaterThan(0);
    expect(of("wireguard_latest_handshake_seconds")[0]!.value).toBeGreaterThan(1_700_000_000);
    expect(of("tswg_peer_path_info")[0]).toMatchObject({ labels: { transport: "udp", path: "direct" }, value: 1 });
    expect(samples.find((s) => s.name === "tswg_interface_info")?.labels.data_path).toMatch(/^(native|portable)$/);
    expect(samples.filter((s) => s.name === "tswg_interface_drops_total").map((s) => s.labels.reason)).toContain("no_route");
    // The handshake that brought the tunnel up is counted; nothing here put the device under load.
    const iface = (name: string) => samples.find((s) => s.name === name && s.labels.interface === ifname)?.value;
    expect(iface("tswg_cookie_mode")).toBe(0);
    expect(iface("tswg_handshake_initiations_received_total")! + iface("tswg_handshake_responses_received_total")!).toBeGreaterThan(0);
    expect(iface("tswg_cookie_replies_sent_total")).toBe(0);
    const status = (await a.exec(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:9586/other"])).stdout;
    expect(status).toBe("404");
  });

  it("tswg ping says which path carried each reply, by key or by tunnel address", async () => {
    const byKey = await run(["ping", kb.publicKey, "-c", "2"]);
    const lines = byKey.stdout.trim().split("\n");
    expect(lines).toHaveLength(2);
    console.log(`tswg ping, direct path: ${lines.map((l) => /in ([0-9.]+) ms/.exec(l)?.[1]).join(", ")} ms`);
    for (const l of lines) expect(l).toMatch(/^pong from 10\.78\.0\.2 \(.{8}…\) via direct \(192\.168\.78\.2:51831\) in [0-9.]+ ms$/);
    const byIp = await run(["ping", "10.78.0.2", "-c", "1"]);
    expect(byIp.stdout).toMatch(/via direct/);
    const none = await run(["ping", "10.99.9.9", "-c", "1"], false);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/no peer with 10\.99\.9\.9 in its AllowedIPs/);
  });

  it("tswg ping over WireGuard over TCP says tcp", async () => {
    const [k1, k2] = [newKeyPair(), newKeyPair()];
    const [n1, n2] = [bed.ifname("c"), bed.ifname("s")];
    const write = (name: string, lines: string[]) => {
      const path = join(dir, `${name}.conf`);
      writeFileSync(path, lines.join("\n") + "\n", { mode: 0o600 });
      return path;
    };
    const server = write(n2, ["[Interface]", `PrivateKey = ${k2.privateKey}`, "Address = 10.78.1.2/24", "ListenPort = 51833", "TCPListen = 192.168.78.2:8443", "", "[Peer]", `PublicKey = ${k1.publicKey}`, "AllowedIPs = 10.78.1.1/32"]);
    const client = write(n1, ["[Interface]", `PrivateKey = ${k1.privateKey}`, "Address = 10.78.1.1/24", "", "[Peer]", `PublicKey = ${k2.publicKey}`, "AllowedIPs = 10.78.1.2/32", "Endpoint = http://192.168.78.2:8443/"]);
    await b.exec(["node", TSWG_BIN, "up", server, "--detach"], { env: env() });
    await run(["up", client, "--detach"]);
    try {
      await pingUntilReply(a, "10.78.1.2");
      const out = (await run(["ping", k2.publicKey, "-c", "1"])).stdout;
      expect(out).toMatch(/^pong from 10\.78\.1\.2 \(.{8}…\) via tcp \(http:\/\/192\.168\.78\.2:8443\/\) in [0-9.]+ ms\n$/);
      const doc = JSON.parse((await run(["show", n1, "--json"])).stdout) as { interfaces: { peers: { transport: string; path: string }[] }[] };
      expect(doc.interfaces[0]!.peers[0]).toMatchObject({ transport: "tcp", path: "tcp" });
    } finally {
      await run(["down", n1], false);
      await b.exec(["node", TSWG_BIN, "down", n2], { env: env(), check: false });
    }
  }, 60_000);

  it("strip prints only what wg setconf takes", async () => {
    const out = (await run(["strip", conf])).stdout;
    expect(out).toContain(`PrivateKey = ${ka.privateKey}`);
    expect(out).toContain("ListenPort = 51830");
    expect(out).toContain(`PublicKey = ${kb.publicKey}`);
    expect(out).toContain("Endpoint = 192.168.78.2:51831");
    expect(out).not.toMatch(/Address|PostUp|MetricsListen/);
    // The standard tool accepts it as it is.
    const stripped = join(dir, "stripped.conf");
    writeFileSync(stripped, out);
    await a.exec(["wg", "syncconf", ifname, stripped]);
  });

  it("SIGHUP re-reads the file: a new peer appears and the tunnel stays up", async () => {
    const kc = newKeyPair();
    const before = (await a.exec(["wg", "show", ifname, "latest-handshakes"])).stdout;
    writeFileSync(conf, baseConf(["", "[Peer]", `PublicKey = ${kc.publicKey}`, "AllowedIPs = 10.78.0.3/32"]), { mode: 0o600 });
    const pid = Number(readFileSync(join(dir, `${ifname}.pid`), "utf8").trim().split(/\s+/u)[0]);
    process.kill(pid, "SIGHUP");
    await waitFor(async () => (await a.exec(["wg", "show", ifname, "peers"])).stdout.includes(kc.publicKey), { timeoutMs: 10_000, what: "the reload to add the peer" });
    await pingUntilReply(a, "10.78.0.2");
    // The session was kept: the handshake time did not change with the reload.
    expect((await a.exec(["wg", "show", ifname, "latest-handshakes"])).stdout).toContain(before.split("\n")[0]!);
    process.kill(pid, 0);
  });

  it("save writes `wg set` changes back and keeps the wg-quick keys", async () => {
    const kd = newKeyPair();
    await a.exec(["wg", "set", ifname, "peer", kd.publicKey, "allowed-ips", "10.78.0.4/32", "persistent-keepalive", "17"]);
    await run(["save", conf]);
    const saved = readFileSync(conf, "utf8");
    expect(saved).toContain("Address = 10.78.0.1/24");
    expect(saved).toContain("MetricsListen = 127.0.0.1:9586");
    expect(saved).toContain(`PublicKey = ${kd.publicKey}`);
    expect(saved).toContain("PersistentKeepalive = 17");
    expect(saved).toContain("Endpoint = 192.168.78.2:51831");
  });

  it("show interfaces leaves out a socket nobody answers on", async () => {
    const dead = bed.ifname("dead");
    const path = `/var/run/wireguard/${dead}.sock`;
    // A socket file whose process is gone: bind, then exit without unlinking.
    spawnSync(process.execPath, ["-e", `require("net").createServer().listen(${JSON.stringify(path)}, () => process.exit(0))`]);
    try {
      const list = await run(["show", "interfaces"]);
      expect(list.stdout.split(/\s+/)).toContain(ifname);
      expect(list.stdout).not.toContain(dead);
      const all = await run(["show"]);
      expect(all.code).toBe(0);
      expect(all.stderr).not.toContain(dead);
    } finally {
      rmSync(path, { force: true });
    }
  });
});
