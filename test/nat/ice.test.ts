/**
 * Peers behind NATs that know only each other's public key: `tswg up` with a signaling server
 * and coturn on the "internet" segment, real nftables NATs in between. Each scenario pings
 * through the tunnel, moves data checked by hash, checks which kind of path ICE chose, and prints
 * the time from `tswg up` to the first packet through the tunnel (a figure, not an assertion).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { startCoturn, Topology, topologyUnavailableReason, waitFor, type Coturn, type Nat, type NetNode, type Segment, type TrackedProcess } from "../../src/testbed/index.js";
import { newKeyPair, transfer, TSWG_BIN, type KeyPair } from "../interop/nodes.js";

const skip = (await topologyUnavailableReason()) ?? null;
const MB = 1024 * 1024;

interface IcePeer {
  node: NetNode;
  ifname: string;
  keys: KeyPair;
  tunnelIp: string;
  proc: TrackedProcess;
  startedAt: number;
}

/** Everything a scenario needs: the internet, a server host with coturn and signaling. */
class Scene {
  readonly dir = mkdtempSync(join(tmpdir(), "tswgt-nat-"));
  net!: Topology;
  inet!: Segment;
  srv!: NetNode;
  turn!: Coturn;
  signal: TrackedProcess | null = null;
  signalingUrl = "";

  async build(name: string): Promise<void> {
    this.net = await Topology.create(name);
    this.inet = await this.net.segment("inet", "198.51.100.0/24");
    this.srv = await this.net.host("srv", { on: this.inet });
    this.turn = await startCoturn(this.srv);
  }

  async startSignal(): Promise<void> {
    this.signal = this.srv.spawn(["node", TSWG_BIN, "signal", "--listen", `${this.srv.ip}:8080`]);
    await this.signal.waitForOutput(/listening/i, { timeoutMs: 10_000 });
    this.signalingUrl = `ws://${this.srv.ip}:8080`;
  }

  /** Starts `tswg up` on `node` with ICE towards `peers` (no Endpoint lines). */
  async peer(node: NetNode, tag: string, tunnelIp: string, keys: KeyPair, peers: { keys: KeyPair; ip: string }[], opts: { signaling?: string; relayOnly?: boolean } = {}): Promise<IcePeer> {
    const ifname = this.net.bed.ifname(tag);
    const conf = join(this.dir, `${ifname}.conf`);
    const servers = [this.turn.stunUrl, this.turn.turnUrl("udp").replace("turn:", `turn:${this.turn.username}:${this.turn.password}@`)];
    const lines = [
      "[Interface]",
      `PrivateKey = ${keys.privateKey}`,
      `Address = ${tunnelIp}/24`,
      "MTU = 1280",
      `Signaling = ${opts.signaling ?? this.signalingUrl}`,
      `ICEServers = ${servers.join(", ")}`,
    ];
    if (opts.relayOnly) lines.push("ICECandidateTypes = relay");
    for (const p of peers) lines.push("", "[Peer]", `PublicKey = ${p.keys.publicKey}`, `AllowedIPs = ${p.ip}/32`);
    writeFileSync(conf, lines.join("\n") + "\n", { mode: 0o600 });
    const startedAt = performance.now();
    const proc = node.spawn(["node", TSWG_BIN, "up", conf, "--log-level", "debug"], { env: { TSWG_RUN_DIR: this.dir } });
    await proc.waitForOutput(`interface ${ifname} is up`, { timeoutMs: 20_000 });
    return { node, ifname, keys, tunnelIp, proc, startedAt };
  }

  /** Two sites behind NATs of one kind, hosts a (10.99.0.1) and b (10.99.0.2) peering through ICE. */
  async twoSites(mapping: "endpoint-independent" | "symmetric", beforePeers?: (natA: Nat, natB: Nat) => Promise<void>) {
    const natA = await this.net.nat("natA", { wan: this.inet, lan: "10.1.0.0/24", mapping });
    const natB = await this.net.nat("natB", { wan: this.inet, lan: "10.2.0.0/24", mapping });
    const a = await this.net.host("a", { behind: natA });
    const b = await this.net.host("b", { behind: natB });
    await beforePeers?.(natA, natB);
    const ka = newKeyPair();
    const kb = newKeyPair();
    const pa = await this.peer(a, "a", "10.99.0.1", ka, [{ keys: kb, ip: "10.99.0.2" }]);
    const pb = await this.peer(b, "b", "10.99.0.2", kb, [{ keys: ka, ip: "10.99.0.1" }]);
    return { natA, natB, a, b, pa, pb };
  }

  async cleanup(): Promise<void> {
    await this.net?.cleanup();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The interesting part of a peer's log, for failure messages. */
function logTail(p: IcePeer): string {
  const lines = p.proc.stderr.split("\n").filter((l) => !l.includes("dropped a datagram"));
  return `--- ${p.ifname} ---\n` + lines.slice(-40).join("\n");
}

/** Pings until the first reply; returns seconds since `from` started `tswg up`. */
async function firstPacket(from: IcePeer, to: IcePeer, timeoutMs = 30_000): Promise<number> {
  try {
    await waitFor(async () => (await from.node.exec(["ping", "-c", "1", "-W", "1", to.tunnelIp], { check: false })).code === 0, {
      timeoutMs,
      intervalMs: 50,
      what: `a ping from ${from.ifname} to ${to.tunnelIp} through ICE`,
    });
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${logTail(from)}\n${logTail(to)}`);
  }
  return (performance.now() - from.startedAt) / 1000;
}

/** The `ice pair` line `tswg show` prints for the peer, e.g. "srflx 198.51.100.1:5000 -> host …". */
async function icePair(p: IcePeer): Promise<string> {
  const out = (await p.node.exec(["node", TSWG_BIN, "show", p.ifname])).stdout;
  return /ice pair: (.*)/.exec(out)?.[1] ?? "";
}

describe.skipIf(skip !== null)("ICE through NATs", () => {
  const scenes: Scene[] = [];
  afterAll(async () => {
    for (const s of scenes) await s.cleanup();
  });

  async function scene(name: string): Promise<Scene> {
    const s = new Scene();
    scenes.push(s);
    await s.build(name);
    await s.startSignal();
    return s;
  }

  it("a) two endpoint-independent NATs: a direct path, not the relay", async () => {
    const s = await scene("icea");
    const { a, b, pa, pb } = await s.twoSites("endpoint-independent");
    const t = await firstPacket(pa, pb);
    const r = await transfer(a.host, b.host, "10.99.0.2", 20 * MB);
    expect(r.received).toBe(r.sent.replace("sent", "received"));
    const pair = await icePair(pa);
    console.log(`scenario a: first packet ${t.toFixed(2)} s after tswg up; pair ${pair}; 20 MB in ${r.seconds.toFixed(2)} s`);
    expect(pair).not.toBe("");
    expect(pair).not.toMatch(/relay/);
  }, 120_000);

  it("b) two symmetric NATs: the relay carries the traffic", async () => {
    const s = await scene("iceb");
    const { a, b, pa, pb } = await s.twoSites("symmetric");
    const t = await firstPacket(pa, pb);
    const r = await transfer(a.host, b.host, "10.99.0.2", 10 * MB);
    expect(r.received).toBe(r.sent.replace("sent", "received"));
    const pair = await icePair(pa);
    console.log(`scenario b: first packet ${t.toFixed(2)} s after tswg up; pair ${pair}; 10 MB in ${r.seconds.toFixed(2)} s`);
    expect(pair).toMatch(/relay/);
  }, 120_000);

  it("c) all UDP between the sites blocked except to the TURN server: relay", async () => {
    const s = await scene("icec");
    const { a, b, pa, pb } = await s.twoSites("endpoint-independent", async (natA, natB) => {
      for (const nat of [natA, natB]) await s.net.firewall(nat, { dropUdp: true, except: [{ to: s.srv.ip, port: 3478 }] });
    });
    const t = await firstPacket(pa, pb);
    const r = await transfer(b.host, a.host, "10.99.0.1", 10 * MB);
    expect(r.received).toBe(r.sent.replace("sent", "received"));
    const pair = await icePair(pa);
    console.log(`scenario c: first packet ${t.toFixed(2)} s after tswg up; pair ${pair}`);
    expect(pair).toMatch(/relay/);
  }, 120_000);

  it("d) the direct path is cut mid-transfer: the transfer completes over a new path", async () => {
    const s = await scene("iced");
    const { natA, natB, a, b, pa, pb } = await s.twoSites("endpoint-independent");
    await firstPacket(pa, pb);
    const before = await icePair(pa);
    expect(before).not.toMatch(/relay/);
    let cutAt = 0;
    const r = await transfer(a.host, b.host, "10.99.0.2", 30 * MB, {
      timeoutMs: 150_000,
      during: async () => {
        await new Promise((res) => setTimeout(res, 500));
        // Site A can no longer reach site B's public address; the TURN server stays reachable.
        await s.net.firewall(natA, { drop: [{ to: natB.wanIp }] });
        cutAt = performance.now();
      },
    });
    expect(r.received).toBe(r.sent.replace("sent", "received"));
    // Recovery: from the cut until traffic flows again (a ping answered after the transfer shows the new path).
    await firstPacket(pa, pb, 60_000);
    const after = await icePair(pa);
    console.log(`scenario d: path cut; transfer of 30 MB completed ${((performance.now() - cutAt) / 1000).toFixed(1)} s after the cut; pair before: ${before}; after: ${after}`);
    expect(after).not.toBe(before);
  }, 200_000);

  it("e) the signaling server restarts: the tunnel keeps working and a new peer still connects", async () => {
    const s = await scene("icee");
    const natA = await s.net.nat("natA", { wan: s.inet, lan: "10.1.0.0/24" });
    const natB = await s.net.nat("natB", { wan: s.inet, lan: "10.2.0.0/24" });
    const natC = await s.net.nat("natC", { wan: s.inet, lan: "10.3.0.0/24" });
    const a = await s.net.host("a", { behind: natA });
    const b = await s.net.host("b", { behind: natB });
    const c = await s.net.host("c", { behind: natC });
    const [ka, kb, kc] = [newKeyPair(), newKeyPair(), newKeyPair()];
    const pa = await s.peer(a, "a", "10.99.0.1", ka, [
      { keys: kb, ip: "10.99.0.2" },
      { keys: kc, ip: "10.99.0.3" },
    ]);
    const pb = await s.peer(b, "b", "10.99.0.2", kb, [{ keys: ka, ip: "10.99.0.1" }]);
    await firstPacket(pa, pb);
    await s.signal!.stop();
    // With the signaling server gone, the established path carries on.
    const during = await a.exec(["ping", "-c", "5", "-i", "0.2", "-W", "1", "10.99.0.2"], { check: false });
    expect(during.code).toBe(0);
    const restartedAt = performance.now();
    await s.startSignal();
    const pc = await s.peer(c, "c", "10.99.0.3", kc, [{ keys: ka, ip: "10.99.0.1" }]);
    const t = await firstPacket(pc, pa, 60_000);
    console.log(`scenario e: new peer's first packet ${t.toFixed(2)} s after its tswg up, ${((performance.now() - restartedAt) / 1000).toFixed(1)} s after the signaling restart`);
    await firstPacket(pa, pb);
  }, 200_000);

  it("f) NATS signaling on a 3-node cluster with one node down: peers still connect", async () => {
    const s = await scene("icef");
    const ip = s.srv.ip;
    const nodes = [0, 1, 2].map((i) =>
      s.srv.spawn([
        "nats-server",
        "-a", ip, "-p", String(4222 + i),
        "-n", `n${i}`,
        "--cluster_name", "tswg",
        "--cluster", `nats://${ip}:${6222 + i}`,
        "--routes", [0, 1, 2].filter((j) => j !== i).map((j) => `nats://${ip}:${6222 + j}`).join(","),
      ]),
    );
    for (const n of nodes) await n.waitForOutput(/Server is ready/, { timeoutMs: 15_000 });
    await nodes[0]!.stop();
    const url = [0, 1, 2].map((i) => `nats://${ip}:${4222 + i}`).join(",");
    const natA = await s.net.nat("natA", { wan: s.inet, lan: "10.1.0.0/24" });
    const natB = await s.net.nat("natB", { wan: s.inet, lan: "10.2.0.0/24" });
    const a = await s.net.host("a", { behind: natA });
    const b = await s.net.host("b", { behind: natB });
    const [ka, kb] = [newKeyPair(), newKeyPair()];
    const pa = await s.peer(a, "a", "10.99.0.1", ka, [{ keys: kb, ip: "10.99.0.2" }], { signaling: url });
    const pb = await s.peer(b, "b", "10.99.0.2", kb, [{ keys: ka, ip: "10.99.0.1" }], { signaling: url });
    const t = await firstPacket(pa, pb, 60_000);
    const r = await transfer(b.host, a.host, "10.99.0.1", 10 * MB);
    expect(r.received).toBe(r.sent.replace("sent", "received"));
    console.log(`scenario f: first packet ${t.toFixed(2)} s after tswg up with NATS node 1 of 3 down; pair ${await icePair(pa)}`);
  }, 120_000);
});
