/**
 * The operator's tools where NATs are real: `tswg netcheck` behind an endpoint-independent and a
 * symmetric NAT (two coturns as STUN servers, one also as TURN over UDP and TCP), `tswg ping`
 * over a relayed ICE path, and the signaling server's metrics.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCoturn, Topology, topologyUnavailableReason, waitFor, type Coturn, type Nat, type NetNode, type TrackedProcess } from "../../src/testbed/index.js";
import { newKeyPair, TSWG_BIN, type KeyPair } from "../interop/nodes.js";

const skip = await topologyUnavailableReason();

interface Report {
  udp: boolean;
  behindNat: boolean | null;
  mapping: string;
  stun: { url: string; mapped: (string | null)[]; rttMs: number[] }[];
  turn: { url: string; transport: string; answers: boolean; detail: string }[];
}

describe.skipIf(skip !== null)("netcheck, ping and signaling metrics behind NATs", () => {
  const dir = mkdtempSync(join(tmpdir(), "tswgt-tnat-"));
  let net: Topology;
  let natE: Nat;
  let e: NetNode;
  let s: NetNode;
  let srv: NetNode;
  let t1: Coturn;
  let t2: Coturn;
  let signal: TrackedProcess;
  const procs: TrackedProcess[] = [];

  beforeAll(async () => {
    net = await Topology.create("tnat");
    const inet = await net.segment("inet", "198.51.100.0/24");
    natE = await net.nat("natE", { wan: inet, lan: "10.1.0.0/24", mapping: "endpoint-independent" });
    const natS = await net.nat("natS", { wan: inet, lan: "10.2.0.0/24", mapping: "symmetric" });
    e = await net.host("e", { behind: natE });
    s = await net.host("s", { behind: natS });
    srv = await net.host("srv", { on: inet });
    const srv2 = await net.host("srv2", { on: inet });
    [t1, t2] = await Promise.all([startCoturn(srv), startCoturn(srv2)]);
    signal = srv.spawn(["node", TSWG_BIN, "signal", "--listen", `${srv.ip}:8080`, "--metrics", "127.0.0.1:9587"]);
    await signal.waitForOutput(/listening on ws:/, { timeoutMs: 10_000 });
  }, 90_000);

  afterAll(async () => {
    for (const p of procs) await p.stop().catch(() => {});
    await net?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  const servers = () =>
    [t1.stunUrl, t2.stunUrl, `turn:${t1.username}:${t1.password}@${t1.ip}:${t1.port}?transport=udp`, `turn:${t1.username}:${t1.password}@${t1.ip}:${t1.port}?transport=tcp`].join(",");

  async function netcheck(node: NetNode): Promise<Report> {
    const r = await node.exec(["node", TSWG_BIN, "netcheck", "--ice-servers", servers(), "--json"]);
    return JSON.parse(r.stdout) as Report;
  }

  it("behind an endpoint-independent NAT: UDP works, one mapping for every server, TURN answers on UDP and TCP", async () => {
    const r = await netcheck(e);
    expect(r).toMatchObject({ udp: true, behindNat: true, mapping: "endpoint-independent" });
    console.log(`netcheck behind the EIM NAT: STUN RTTs ${r.stun.map((x) => x.rttMs.map((v) => v.toFixed(2)).join("/")).join(" | ")} ms`);
    expect(r.stun.every((x) => x.rttMs.length > 0)).toBe(true);
    expect(r.stun[0]!.mapped[0]).toMatch(new RegExp(`^${natE.wanIp.replaceAll(".", "\\.")}:\\d+$`));
    expect(r.turn.map((t) => [t.transport, t.answers])).toEqual([
      ["udp", true],
      ["tcp", true],
    ]);
    expect(r.turn[0]!.detail).toMatch(/^401/);
    const text = (await e.exec(["node", TSWG_BIN, "netcheck", "--ice-servers", servers()])).stdout;
    expect(text).toMatch(/mapping: endpoint-independent/);
    expect(text).toMatch(/hole punching works/);
  });

  it("behind a symmetric NAT: the servers see different ports, and the report says so", async () => {
    const r = await netcheck(s);
    expect(r).toMatchObject({ udp: true, behindNat: true, mapping: "endpoint-dependent" });
    const text = (await s.exec(["node", TSWG_BIN, "netcheck", "--ice-servers", servers()])).stdout;
    expect(text).toMatch(/expect peers behind NATs to use the relay/);
  });

  it("contacts nothing without servers, and says UDP is blocked when nothing answers", async () => {
    const none = await e.exec(["node", TSWG_BIN, "netcheck"], { check: false });
    expect(none.code).toBe(2);
    const blocked = await e.exec(["node", TSWG_BIN, "netcheck", "--ice-servers", `stun:${srv.ip}:3999`, "--timeout", "300", "--json"], { check: false });
    expect(blocked.code).toBe(1);
    expect(JSON.parse(blocked.stdout)).toMatchObject({ udp: false, mapping: "unknown" });
  });

  async function up(node: NetNode, tag: string, ip: string, keys: KeyPair, other: { keys: KeyPair; ip: string }, relayOnly: boolean): Promise<string> {
    const ifname = net.bed.ifname(tag);
    const conf = join(dir, `${ifname}.conf`);
    const lines = [
      "[Interface]",
      `PrivateKey = ${keys.privateKey}`,
      `Address = ${ip}/24`,
      "MTU = 1280",
      `Signaling = ws://${srv.ip}:8080`,
      `ICEServers = ${t1.stunUrl}, turn:${t1.username}:${t1.password}@${t1.ip}:${t1.port}?transport=udp`,
      ...(relayOnly ? ["ICECandidateTypes = relay"] : []),
      "",
      "[Peer]",
      `PublicKey = ${other.keys.publicKey}`,
      `AllowedIPs = ${other.ip}/32`,
    ];
    writeFileSync(conf, lines.join("\n") + "\n", { mode: 0o600 });
    const p = node.spawn(["node", TSWG_BIN, "up", conf], { env: { TSWG_RUN_DIR: dir } });
    procs.push(p);
    await p.waitForOutput(`interface ${ifname} is up`, { timeoutMs: 20_000 });
    return ifname;
  }

  it("tswg ping over a relayed ICE path says relay; the signaling server counts it all", async () => {
    const ke = newKeyPair();
    const ks = newKeyPair();
    const ifE = await up(e, "e", "10.98.0.1", ke, { keys: ks, ip: "10.98.0.2" }, false);
    await up(s, "s", "10.98.0.2", ks, { keys: ke, ip: "10.98.0.1" }, true);
    await waitFor(async () => (await e.exec(["ping", "-c", "1", "-W", "1", "10.98.0.2"], { check: false })).code === 0, { timeoutMs: 40_000, what: "a ping through the relay" });
    const out = (await e.exec(["node", TSWG_BIN, "ping", ks.publicKey, "-c", "2"])).stdout;
    const lines = out.trim().split("\n");
    expect(lines).toHaveLength(2);
    console.log(`tswg ping over the relay: ${lines.map((l) => /in ([0-9.]+) ms/.exec(l)?.[1]).join(", ")} ms`);
    for (const l of lines) expect(l).toMatch(/^pong from 10\.98\.0\.2 \(.{8}…\) via relay \(\w+ [0-9.]+:\d+ -> relay 198\.51\.100\.\d+:\d+\) in [0-9.]+ ms$/);

    // The same answer as data: a relayed ICE path, with its counters.
    const doc = JSON.parse((await e.exec(["node", TSWG_BIN, "show", ifE, "--json"])).stdout) as {
      interfaces: { peers: { transport: string; path: string; rx_bytes: number; rx_packets?: number; ice: { state: string; path_switches: number; selected_pair: { remote: { type: string } } } }[] }[];
    };
    const p = doc.interfaces[0]!.peers[0]!;
    expect(p).toMatchObject({ transport: "ice", path: "relay", ice: { state: "connected", path_switches: 0, selected_pair: { remote: { type: "relay" } } } });
    expect(p.rx_bytes).toBeGreaterThan(0);
    // A relay over UDP TURN is carried by the data plane on the interface's socket: the ICE
    // agent sees none of its datagrams, so it reports no packet count rather than a wrong one.
    expect(p.rx_packets).toBeUndefined();

    // netcheck with the configuration's ICEServers: one STUN server is too few to tell the mapping.
    const fromConf = JSON.parse((await e.exec(["node", TSWG_BIN, "netcheck", join(dir, `${ifE}.conf`), "--json"])).stdout) as Report;
    expect(fromConf).toMatchObject({ udp: true, mapping: "unknown" });
    expect(fromConf.stun.map((x) => x.url)).toEqual([t1.stunUrl]);
    expect(fromConf.turn.map((t) => [t.transport, t.answers])).toEqual([["udp", true]]);

    const metrics = (await srv.exec(["curl", "-sf", "http://127.0.0.1:9587/metrics"])).stdout;
    const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(metrics)?.[1]);
    expect(value("tswg_signal_connections")).toBe(2);
    expect(value("tswg_signal_messages_routed_total")).toBeGreaterThan(0);
    expect(metrics).toMatch(/^tswg_signal_messages_dropped_total\{reason="rate_limited"\} \d+$/m);
    expect(metrics).toMatch(/^# TYPE tswg_signal_rejects_total counter$/m);
  }, 90_000);
});
