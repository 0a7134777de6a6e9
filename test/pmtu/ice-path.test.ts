/**
 * ICE paths across a small-MTU link, tunnel MTU left at 1420: a on the "inet" segment with the
 * signaling server and coturn, b on a "far" segment behind a router whose link to b has MTU 1280.
 * Direct and relayed (b offers only relay candidates) paths: a TCP transfer completes in both
 * directions, checked by hash, and `tswg show` reports the 1280 bottleneck on both ends, as
 * confirmed by padded STUN probes (a's kernel sees only its own 1500 leg on the relayed path).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCoturn, Topology, topologyUnavailableReason, waitFor, type Coturn, type NetNode, type TrackedProcess } from "../../src/testbed/index.js";
import { newKeyPair, transfer, TSWG_BIN, type KeyPair } from "../interop/nodes.js";

const skip = await topologyUnavailableReason();
const MB = 1024 * 1024;

describe.skipIf(skip !== null)("ICE across a 1280 link, tunnel MTU 1420", () => {
  const dir = mkdtempSync(join(tmpdir(), "tswgt-pice-"));
  let net: Topology;
  let a: NetNode;
  let b: NetNode;
  let srv: NetNode;
  let turn: Coturn;
  const procs: TrackedProcess[] = [];

  beforeAll(async () => {
    net = await Topology.create("pice");
    const inet = await net.segment("inet", "198.51.100.0/24");
    const far = await net.segment("far", "203.0.113.0/24");
    srv = await net.host("srv", { on: inet });
    a = await net.host("a", { on: inet });
    b = await net.host("b", { on: far });
    const r = await net.router("r", { segments: [inet, far] });
    // The router's link towards b, and b's own, carry at most 1280 bytes.
    await r.host.ip(["link", "set", "eth1", "mtu", "1280"]);
    await b.host.ip(["link", "set", "eth0", "mtu", "1280"]);
    turn = await startCoturn(srv);
    const signal = srv.spawn(["node", TSWG_BIN, "signal", "--listen", `${srv.ip}:8080`]);
    procs.push(signal);
    await signal.waitForOutput(/listening on ws:/, { timeoutMs: 10_000 });
  }, 90_000);

  afterAll(async () => {
    for (const p of procs) await p.stop().catch(() => {});
    await net?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  async function up(node: NetNode, tag: string, ip: string, keys: KeyPair, peer: { keys: KeyPair; ip: string }, relayOnly: boolean): Promise<string> {
    const ifname = net.bed.ifname(tag);
    const conf = join(dir, `${ifname}.conf`);
    const lines = [
      "[Interface]",
      `PrivateKey = ${keys.privateKey}`,
      `Address = ${ip}/24`,
      `Signaling = ws://${srv.ip}:8080`,
      `ICEServers = turn:${turn.username}:${turn.password}@${turn.ip}:${turn.port}?transport=udp`,
      ...(relayOnly ? ["ICECandidateTypes = relay"] : []),
      "",
      "[Peer]",
      `PublicKey = ${peer.keys.publicKey}`,
      `AllowedIPs = ${peer.ip}/32`,
    ];
    writeFileSync(conf, lines.join("\n") + "\n", { mode: 0o600 });
    const p = node.spawn(["node", TSWG_BIN, "up", conf], { env: { TSWG_RUN_DIR: dir } });
    procs.push(p);
    await p.waitForOutput(`interface ${ifname} is up`, { timeoutMs: 20_000 });
    return ifname;
  }

  const show = async (node: NetNode, ifname: string): Promise<string> => (await node.exec(["node", TSWG_BIN, "show", ifname])).stdout;

  it.each([
    { path: "direct", net: 61 },
    { path: "relay", net: 62 },
  ])("$path path: transfers complete and show reports the 1280 bottleneck", async ({ path, net: n }) => {
    for (const p of procs.splice(1)) await p.stop().catch(() => {});
    const ka = newKeyPair();
    const kb = newKeyPair();
    const ipA = `10.${n}.0.1`;
    const ipB = `10.${n}.0.2`;
    const ifA = await up(a, `a${n}`, ipA, ka, { keys: kb, ip: ipB }, false);
    const ifB = await up(b, `b${n}`, ipB, kb, { keys: ka, ip: ipA }, path === "relay");
    await waitFor(async () => (await a.exec(["ping", "-c", "1", "-W", "1", ipB], { check: false })).code === 0, { timeoutMs: 60_000, what: `a ping over the ${path} path` });
    expect(await show(a, ifA)).toContain(`path: ${path}`);
    // Both ends probe their path with padded STUN binding requests (src/ice/pmtu-probe.ts):
    // direct, the search finds the 1280 link from either side; relayed, the base is confirmed,
    // sized for the TURN server's ChannelData leg (a 1248-byte datagram, 1280 on each leg).
    const t0 = performance.now();
    const pathMtu = async (node: NetNode, ifname: string): Promise<string> => /path mtu: ([^\n]*)/u.exec(await show(node, ifname))?.[1] ?? "";
    for (const [node, ifname] of [
      [a, ifA],
      [b, ifB],
    ] as const) {
      await waitFor(async () => (await pathMtu(node, ifname)) === "1280 (probe)", { timeoutMs: 30_000, what: `${node.label} shows the probed 1280 on the ${path} path` }).catch(() => undefined);
      expect(await pathMtu(node, ifname)).toBe("1280 (probe)");
      console.log(`ICE ${path}: ${node.label} shows 1280 (probe) ${((performance.now() - t0) / 1000).toFixed(1)} s after the first ping`);
    }
    for (const [from, to, ip] of [
      [a, b, ipB],
      [b, a, ipA],
    ] as const) {
      const r = await transfer(from.host, to.host, ip, 8 * MB, { timeoutMs: 90_000 });
      expect(r.received.replace(/^received/u, "")).toBe(r.sent.replace(/^sent/u, ""));
      console.log(`ICE ${path} across 1280: ${((8 * 8 * MB) / r.seconds / 1e9).toFixed(3)} Gbit/s (${from.label}->${to.label})`);
    }
    // The probed size reached a's data plane (the native one keeps its own table): an inner
    // packet over the tunnel's 1216 with DF is answered with that, also on the relayed path,
    // where a's kernel sees only its own 1500 leg.
    const ping = await a.exec(["ping", "-c", "2", "-M", "do", "-s", "1300", ipB], { check: false });
    expect(ping.stdout).toContain("mtu = 1216");
    expect((await a.exec(["ip", "route", "get", ipB])).stdout).toContain("mtu 1216");
  }, 240_000);
});
