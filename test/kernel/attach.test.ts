/**
 * ICE beside a userspace WireGuard (wireguard-go) through its UAPI socket: `tswg up` with
 * `AttachTo` in two namespaces, the embedded signaling server, and each port-sharing mode that
 * works without the kernel module (proxy, raw sockets, nftables, iptables). Each case pings through the
 * tunnel, moves data checked by hash, checks the mode `tswg show` reports (and for the firewall
 * modes that the kernel's rules moved the packets), and that nothing is left behind.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { coturnConfig, missingCommands, netnsUnavailableReason, TestBed, waitFor, type Host, type TrackedProcess } from "../../src/testbed/index.js";
import { newKeyPair, transfer, TSWG_BIN, type KeyPair } from "../interop/nodes.js";

const missing = missingCommands(["wireguard-go", "wg", "nft", "iptables", "ping"]);
const reason = (await netnsUnavailableReason()) ?? (missing.length > 0 ? `missing ${missing.join(", ")}` : null);
if (reason !== null) console.warn(`skipping attach tests: ${reason}`);

interface Side {
  host: Host;
  wg: string;
  keys: KeyPair;
  under: string;
  tunnel: string;
}

describe.skipIf(reason !== null)("ICE beside wireguard-go over UAPI", () => {
  let bed: TestBed;
  let a: Side;
  let b: Side;
  let dir: string;

  beforeAll(async () => {
    bed = await TestBed.create("attach");
    dir = bed.tempDir("conf");
    const ha = await bed.host("a");
    const hb = await bed.host("b");
    await bed.link(ha, hb, { a: "10.77.0.1/24", b: "10.77.0.2/24" });
    a = { host: ha, wg: bed.ifname("wga"), keys: newKeyPair(), under: "10.77.0.1", tunnel: "10.88.0.1" };
    b = { host: hb, wg: bed.ifname("wgb"), keys: newKeyPair(), under: "10.77.0.2", tunnel: "10.88.0.2" };
    for (const [s, peer] of [
      [a, b],
      [b, a],
    ] as const) {
      s.host.spawn(["wireguard-go", "-f", s.wg]);
      await waitFor(async () => (await s.host.exec(["wg", "show", s.wg], { check: false })).code === 0, { what: `${s.wg} UAPI`, timeoutMs: 10_000 });
      const key = join(dir, `${s.wg}.key`);
      writeFileSync(key, s.keys.privateKey + "\n", { mode: 0o600 });
      await s.host.exec(["wg", "set", s.wg, "private-key", key, "listen-port", "51820", "peer", peer.keys.publicKey, "allowed-ips", `${peer.tunnel}/32`]);
      await s.host.ip(["address", "add", `${s.tunnel}/24`, "dev", s.wg]);
      await s.host.ip(["link", "set", s.wg, "up"]);
    }
    const signal = ha.spawn(["node", TSWG_BIN, "signal", "--listen", "10.77.0.1:8080"]);
    await signal.waitForOutput(/listening/i, { timeoutMs: 15_000 });
  }, 60_000);

  afterAll(async () => {
    await bed?.cleanup();
  });

  /** tswg processes of the current case: stopped after it, whatever its outcome. */
  const running: TrackedProcess[] = [];
  afterEach(async () => {
    await Promise.all(running.splice(0).map((p) => p.stop()));
  });

  function attach(s: Side, peer: Side, mode: string, tag: string, ice: string[] = ["ICECandidateTypes = host"]): { proc: TrackedProcess; name: string } {
    const name = `ice${tag}${s === a ? "a" : "b"}`;
    const conf = join(dir, `${name}.conf`);
    const text = [
      "[Interface]",
      `PrivateKey = ${s.keys.privateKey}`,
      `AttachTo = ${s.wg}`,
      `PortShare = ${mode}`,
      "Signaling = ws://10.77.0.1:8080",
      ...ice,
      "",
      "[Peer]",
      `PublicKey = ${peer.keys.publicKey}`,
      `AllowedIPs = ${peer.tunnel}/32`,
      "",
    ].join("\n");
    writeFileSync(conf, text, { mode: 0o600 });
    return { proc: s.host.spawn(["node", TSWG_BIN, "up", conf, "--log-level", "debug"], { env: { TSWG_RUN_DIR: join(dir, s === a ? "run-a" : "run-b") } }), name };
  }

  async function leftovers(s: Side): Promise<string[]> {
    const found: string[] = [];
    if ((await s.host.exec(["nft", "list", "tables"])).stdout.includes("tswg-")) found.push("nft table");
    if ((await s.host.exec(["iptables-save"])).stdout.includes("TSWG-")) found.push("iptables chains");
    if ((await s.host.exec(["ip6tables-save"])).stdout.includes("TSWG-")) found.push("ip6tables chains");
    // Raw sockets of IPPROTO_UDP (17) are listed by `ss -w` (raw); only tswg opens any here.
    if (/:(17|udp)\s/.test((await s.host.exec(["ss", "-wan"])).stdout.split("\n").slice(1).join("\n"))) found.push("raw socket");
    return found;
  }

  for (const [mode, tag] of [
    ["proxy", "p"],
    ["raw", "r"],
    ["nftables", "n"],
    ["iptables", "i"],
  ] as const) {
    it(`${mode}: ping and a transfer by hash through ICE beside wireguard-go; nothing left behind`, async () => {
      const pa = attach(a, b, mode, tag);
      const pb = attach(b, a, mode, tag);
      running.push(pa.proc, pb.proc);
      await pa.proc.waitForOutput("is up", { timeoutMs: 20_000 });
      await pb.proc.waitForOutput("is up", { timeoutMs: 20_000 });
      try {
        await waitFor(async () => (await a.host.exec(["ping", "-c", "1", "-W", "1", b.tunnel], { check: false })).code === 0, { what: "ping through the tunnel", timeoutMs: 30_000 });
      } catch (e) {
        console.log(`--- a ---\n${pa.proc.stdout.slice(-3000)}\n${pa.proc.stderr.slice(-3000)}\n--- b ---\n${pb.proc.stderr.slice(-2000)}`);
        throw e;
      }
      const t = await transfer(a.host, b.host, b.tunnel, 4 * 1024 * 1024);
      expect(t.received.replace(/^received /, "")).toBe(t.sent.replace(/^sent /, ""));
      const show = (await a.host.exec(["node", TSWG_BIN, "show", pa.name], { env: { TSWG_RUN_DIR: join(dir, "run-a") } })).stdout;
      expect(show).toContain(`port share: ${mode}`);
      expect(show).toContain(`device: userspace over UAPI (${a.wg})`);
      // The endpoint tswg reports is the one wireguard-go uses.
      const endpoint = (await a.host.exec(["wg", "show", a.wg, "endpoints"])).stdout.trim().split("\t")[1];
      expect(show).toContain(`endpoint: ${endpoint}`);
      if (mode === "proxy") expect(endpoint).toMatch(/^127\.0\.0\.1:/);
      // Raw: ICE ran on wireguard-go's own port, so the endpoint is the peer's device port itself.
      if (mode === "raw") expect(endpoint).toBe(`${b.under}:51820`);
      if (mode === "nftables") {
        // Both rules count the tunnel's datagrams. A table written anew (a pair change) starts
        // from zero, so a ping goes through before each look.
        const counts = async (): Promise<{ ingress: number; egress: number }> => {
          await a.host.exec(["ping", "-c", "1", "-W", "1", b.tunnel], { check: false });
          const j = JSON.parse((await a.host.exec(["nft", "-j", "list", "table", "inet", `tswg-${a.wg}`])).stdout) as { nftables: { rule?: { chain: string; expr: { counter?: { packets: number } }[] } }[] };
          const packets = (chain: string) => j.nftables.filter((i) => i.rule?.chain === chain).reduce((n, i) => n + i.rule!.expr.reduce((m, e) => m + (e.counter?.packets ?? 0), 0), 0);
          return { ingress: packets("ingress"), egress: packets("egress") };
        };
        let seen = { ingress: 0, egress: 0 };
        try {
          await waitFor(async () => {
            seen = await counts();
            return seen.ingress > 0 && seen.egress > 0;
          }, { what: "the nft rules to count the tunnel's datagrams", timeoutMs: 10_000 });
        } catch (e) {
          console.log(`counters ${JSON.stringify(seen)}\n--- a ---\n${pa.proc.stderr.slice(-4000)}\n--- b ---\n${pb.proc.stderr.slice(-3000)}`);
          throw e;
        }
      }
      if (mode === "iptables") {
        const rules = (await a.host.exec(["iptables", "-t", "nat", "-S", `TSWG-${a.wg}-post`])).stdout;
        expect(rules).toContain("--to-source :");
      }
      console.log(`attach ${mode}: ${((4 * 8) / t.seconds).toFixed(0)} Mbit/s over ${endpoint}`);
      pa.proc.signal("SIGTERM");
      pb.proc.signal("SIGTERM");
      await waitFor(() => !pa.proc.running && !pb.proc.running, { what: "tswg to exit", timeoutMs: 15_000 });
      expect([...(await leftovers(a)), ...(await leftovers(b))]).toEqual([]);
    }, 90_000);
  }

  it.skipIf(missingCommands(["turnserver"]).length > 0)("raw: a relay-only pair falls back to the proxy, allocated from the device's port", async () => {
    const turnDir = bed.tempDir("turn");
    const conf = join(turnDir, "turnserver.conf");
    writeFileSync(conf, coturnConfig({ ip: a.under, port: 3478, username: "tk", password: "tk-secret", realm: "tswg.test", dir: turnDir, relayPorts: { min: 49152, max: 49200 } }));
    const turn = a.host.spawn(["turnserver", "-c", conf]);
    running.push(turn);
    const ice = [`ICEServers = turn:tk:tk-secret@${a.under}:3478`, "ICECandidateTypes = relay"];
    const pa = attach(a, b, "raw", "t", ice);
    const pb = attach(b, a, "raw", "t", ice);
    running.push(pa.proc, pb.proc);
    await pa.proc.waitForOutput("is up", { timeoutMs: 20_000 });
    await pb.proc.waitForOutput("is up", { timeoutMs: 20_000 });
    await waitFor(async () => (await a.host.exec(["ping", "-c", "1", "-W", "1", b.tunnel], { check: false })).code === 0, { what: "ping through the relay", timeoutMs: 40_000 });
    const t = await transfer(a.host, b.host, b.tunnel, 1024 * 1024);
    expect(t.received.replace(/^received /, "")).toBe(t.sent.replace(/^sent /, ""));
    const show = (await a.host.exec(["node", TSWG_BIN, "show", pa.name], { env: { TSWG_RUN_DIR: join(dir, "run-a") } })).stdout;
    expect(show).toMatch(/port share: proxy \(the pair goes through a TURN relay/);
    expect((await a.host.exec(["wg", "show", a.wg, "endpoints"])).stdout).toMatch(/\t127\.0\.0\.1:\d+/);
    // The allocation was made from the device's port through the raw socket: tswg itself has no
    // UDP socket but its proxy's on loopback.
    const own = (await a.host.exec(["ss", "-uanp"])).stdout.split("\n").filter((l) => l.includes(`pid=${pa.proc.pid},`));
    expect(own.length).toBeGreaterThan(0);
    for (const l of own) expect(l).toMatch(/127\.0\.0\.1:\d+/);
    pa.proc.signal("SIGTERM");
    pb.proc.signal("SIGTERM");
    await waitFor(() => !pa.proc.running && !pb.proc.running, { what: "tswg to exit", timeoutMs: 15_000 });
    expect([...(await leftovers(a)), ...(await leftovers(b))]).toEqual([]);
  }, 90_000);

  it("a table left by a killed run is replaced at the next start and removed at its end", async () => {
    const pa = attach(a, b, "nftables", "k");
    const pb = attach(b, a, "nftables", "k");
    running.push(pa.proc, pb.proc);
    await pa.proc.waitForOutput("is up", { timeoutMs: 20_000 });
    await pb.proc.waitForOutput("is up", { timeoutMs: 20_000 });
    await waitFor(async () => (await a.host.exec(["nft", "list", "tables"])).stdout.includes(`tswg-${a.wg}`), { what: "nft table", timeoutMs: 30_000 });
    pa.proc.signal("SIGKILL");
    await waitFor(() => !pa.proc.running, { what: "killed", timeoutMs: 5000 });
    expect((await a.host.exec(["nft", "list", "tables"])).stdout).toContain(`tswg-${a.wg}`);
    const again = attach(a, b, "nftables", "k");
    running.push(again.proc);
    await again.proc.waitForOutput("is up", { timeoutMs: 20_000 });
    await waitFor(async () => (await a.host.exec(["ping", "-c", "1", "-W", "1", b.tunnel], { check: false })).code === 0, { what: "ping after restart", timeoutMs: 30_000 });
    again.proc.signal("SIGTERM");
    pb.proc.signal("SIGTERM");
    await waitFor(() => !again.proc.running && !pb.proc.running, { what: "tswg to exit", timeoutMs: 15_000 });
    expect([...(await leftovers(a)), ...(await leftovers(b))]).toEqual([]);
  }, 90_000);
});
