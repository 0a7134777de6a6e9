import { existsSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  isAlive,
  namespaceName,
  runCommand,
  sweepStale,
  TestBed,
  Topology,
  topologyUnavailableReason,
  withTopology,
  type Nat,
  type NetNode,
  type Segment,
} from "../../src/testbed/index.js";

const reason = await topologyUnavailableReason();
if (reason !== null) console.warn(`skipping topology tests: ${reason}`);

async function namespaces(): Promise<string[]> {
  const r = await runCommand(["ip", "netns", "list"]);
  return r.stdout.split("\n").map((l) => l.trim().split(/\s+/)[0] ?? "").filter((n) => n !== "");
}

async function pings(from: NetNode, to: string): Promise<boolean> {
  return (await from.exec(["ping", "-c1", "-W1", to], { check: false })).code === 0;
}

describe.skipIf(reason !== null)("Topology: segments, NAT, router", () => {
  let net: Topology;
  let inet: Segment;
  let dmz: Segment;
  let natA: Nat;
  let a1: NetNode;
  let a2: NetNode;
  let srv: NetNode;
  let r: NetNode;
  let d: NetNode;

  beforeAll(async () => {
    net = await Topology.create("topo");
    inet = await net.segment("inet", "198.51.100.0/24");
    natA = await net.nat("natA", { wan: inet, lan: "10.1.0.0/24" });
    a1 = await net.host("a1", { behind: natA });
    a2 = await net.host("a2", { behind: natA, ip: "10.1.0.50" });
    srv = await net.host("srv", { on: inet, ip: "198.51.100.10" });
    dmz = await net.segment("dmz", "203.0.113.0/24");
    // Joins both; becomes the gateway of both (neither has one), so natA and srv route via it.
    r = await net.router("r", { segments: [inet, dmz], ips: { inet: "198.51.100.254" } });
    d = await net.host("d", { on: dmz });
  });
  afterAll(async () => {
    await net?.cleanup();
  });

  it("numbers everything predictably and sets default routes", () => {
    expect(natA.wanIp).toBe("198.51.100.1");
    expect(natA.ip).toBe(natA.wanIp);
    expect(natA.lanIp).toBe("10.1.0.1");
    expect(natA.lan.gateway).toBe(natA);
    expect(natA.mapping).toBe("endpoint-independent");
    expect(a1.ip).toBe("10.1.0.2");
    expect(a2.ip).toBe("10.1.0.50");
    expect(a1.defaultRoute).toBe("10.1.0.1");
    expect(srv.ip).toBe("198.51.100.10");
    expect(r.addressOn(inet)).toBe("198.51.100.254");
    expect(r.addressOn(dmz)).toBe("203.0.113.1");
    expect(inet.gatewayIp).toBe("198.51.100.254");
    expect(srv.defaultRoute).toBe("198.51.100.254");
    expect(natA.defaultRoute).toBe("198.51.100.254");
    expect(r.defaultRoute).toBeUndefined();
    expect(d.ip).toBe("203.0.113.2");
    expect(d.defaultRoute).toBe("203.0.113.1");
    expect(a1.attachments).toEqual([{ segment: natA.lan, ifname: "eth0", ip: "10.1.0.2" }]);
    expect(net.describe()).toContain("segment natA-lan 10.1.0.0/24, gateway natA 10.1.0.1");
    expect(net.describe()).toMatch(/natA wan 198\.51\.100\.1 \(NAT, endpoint-independent\) default route/);
  });

  it("really has those routes in the namespaces", async () => {
    expect((await a1.host.ip(["route", "show", "default"])).stdout).toMatch(/default via 10\.1\.0\.1 dev eth0/);
    expect((await natA.host.ip(["route", "show", "default"])).stdout).toMatch(/default via 198\.51\.100\.254 dev wan/);
    expect((await r.host.ip(["route", "show", "default"])).stdout.trim()).toBe("");
  });

  it("names every namespace with the test prefix and keeps links out of the root namespace", async () => {
    for (const ns of net.bed.namespaces) expect(ns).toMatch(/^tswgt-[0-9a-z]{5}\.[0-9a-z]{3}-topo-[0-9a-z]+$/);
    // inet, natA, a1, a2, srv, dmz, r, d: the NAT's private segment lives in the NAT's namespace.
    expect(net.bed.namespaces).toHaveLength(8);
    const root = await runCommand(["ip", "-o", "link", "show"]);
    expect(root.stdout).not.toMatch(/\bto-a1\b|\bto-natA\b/);
  });

  it("lets hosts behind the NAT reach the internet and each other", async () => {
    expect(await pings(a1, srv.ip)).toBe(true);
    expect(await pings(a1, a2.ip)).toBe(true);
    // Through the NAT and the router.
    expect(await pings(a1, d.ip)).toBe(true);
    expect(await pings(d, srv.ip)).toBe(true);
  });

  it("keeps the private side unreachable from outside", async () => {
    expect(await pings(srv, a1.ip)).toBe(false);
    await srv.host.ip(["route", "add", "10.1.0.0/24", "via", natA.wanIp]);
    try {
      // Even with a route, the gateway does not forward unsolicited traffic inwards.
      expect(await pings(srv, a1.ip)).toBe(false);
    } finally {
      await srv.host.ip(["route", "del", "10.1.0.0/24"]);
    }
  });

  it("attaches a node to another segment", async () => {
    const att = await net.attach(srv, dmz, { ip: "203.0.113.77" });
    expect(att).toMatchObject({ ifname: "eth1", ip: "203.0.113.77" });
    expect(srv.addressOn(dmz)).toBe("203.0.113.77");
    expect(await pings(srv, d.ip)).toBe(true);
    await expect(net.attach(srv, dmz)).rejects.toThrow(/already on segment dmz/);
  });

  it("rejects inconsistent requests with clear errors", async () => {
    await expect(net.host("x1", {})).rejects.toThrow(/exactly one of "on"/);
    await expect(net.host("x2", { on: inet, behind: natA })).rejects.toThrow(/exactly one of "on"/);
    await expect(net.host("x2b", { behind: srv as Nat })).rejects.toThrow(/"behind" must be a NAT gateway/);
    await expect(net.host("A1", { on: inet })).rejects.toThrow(/already has a host "A1"/);
    await expect(net.host("x3", { on: inet, ip: "10.1.0.9" })).rejects.toThrow(/not in subnet 198\.51\.100\.0\/24/);
    await expect(net.host("x4", { on: inet, ip: srv.ip })).rejects.toThrow(/already in use/);
    await expect(net.nat("x5", { wan: inet, lan: "198.51.100.0/25" })).rejects.toThrow(/overlaps/);
    await expect(net.nat("x6", { wan: inet, lan: "10.6.0.0/24", mapping: "cone" as "symmetric" })).rejects.toThrow(/unknown mapping "cone"/);
    await expect(net.router("x7", { segments: [inet] })).rejects.toThrow(/at least two segments/);
    await expect(net.router("x8", { segments: [inet, dmz], gatewayFor: [inet] })).rejects.toThrow(/already has gateway r/);
    const other = await Topology.create("other");
    try {
      const foreign = await other.segment("inet", "198.51.100.0/24");
      await expect(net.host("x9", { on: foreign })).rejects.toThrow(/another topology/);
    } finally {
      await other.cleanup();
    }
  });

  it("can build on an existing test bed", async () => {
    const bed = await TestBed.create("onbed");
    try {
      const t = Topology.on(bed);
      const s = await t.segment("s", "10.77.0.0/24");
      const h1 = await t.host("h1", { on: s });
      const h2 = await t.host("h2", { on: s });
      expect(await pings(h1, h2.ip)).toBe(true);
      expect(bed.namespaces).toHaveLength(3);
    } finally {
      await bed.cleanup();
    }
  });
});

describe.skipIf(reason !== null)("Topology cleanup", () => {
  it("removes namespaces, processes and temporary directories, also when the body throws", async () => {
    let made: string[] = [];
    let pid = 0;
    let dir = "";
    await expect(
      withTopology("gone", async (net) => {
        const inet = await net.segment("inet", "198.51.100.0/24");
        const nat = await net.nat("nat", { wan: inet, lan: "10.3.0.0/24", mapping: "symmetric" });
        const h = await net.host("h", { behind: nat });
        pid = h.spawn(["sleep", "300"]).pid;
        dir = net.bed.tempDir("cfg");
        made = net.bed.namespaces;
        throw new Error("failed half-way");
      }),
    ).rejects.toThrow("failed half-way");
    expect(made).toHaveLength(3);
    expect(existsSync(dir)).toBe(false);
    expect(isAlive(pid)).toBe(false);
    const left = await namespaces();
    for (const ns of made) expect(left).not.toContain(ns);
  });

  it("sweepStale removes temporary directories of dead processes, and only those", async () => {
    const dead = await runCommand(["sh", "-c", "echo $$"]);
    const deadPid = Number(dead.stdout.trim());
    expect(isAlive(deadPid)).toBe(false);
    const stale = join(tmpdir(), namespaceName(`${deadPid.toString(36).padStart(5, "0")}.zzz`, "old", "coturn1"));
    const foreign = join(tmpdir(), `tswgt-not-ours-${process.pid}`);
    mkdirSync(stale, { recursive: true });
    mkdirSync(foreign, { recursive: true });
    await withTopology("live", async (net) => {
      const mine = net.bed.tempDir("mine");
      await sweepStale();
      expect(existsSync(stale)).toBe(false);
      expect(existsSync(mine)).toBe(true);
      expect(existsSync(foreign)).toBe(true);
    });
    await runCommand(["rm", "-rf", foreign]);
  });
});
