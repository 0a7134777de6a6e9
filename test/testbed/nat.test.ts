/**
 * The two NAT mapping behaviours, proved with one socket talking to two servers, and what they
 * mean for hole punching between two NATed hosts.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  reflectedAddresses,
  startReflector,
  topologyUnavailableReason,
  Topology,
  udpExchange,
  type Nat,
  type NetNode,
  type Segment,
} from "../../src/testbed/index.js";

const reason = await topologyUnavailableReason();
if (reason !== null) console.warn(`skipping NAT tests: ${reason}`);

describe.skipIf(reason !== null)("NAT gateways", () => {
  let net: Topology;
  let inet: Segment;
  const nat: Record<string, Nat> = {};
  const host: Record<string, NetNode> = {};
  let s1: NetNode;
  let s2: NetNode;

  beforeAll(async () => {
    net = await Topology.create("nat");
    inet = await net.segment("inet", "198.51.100.0/24");
    for (const [label, mapping, lan] of [
      ["e1", "endpoint-independent", "10.1.0.0/24"],
      ["e2", "endpoint-independent", "10.2.0.0/24"],
      ["y1", "symmetric", "10.3.0.0/24"],
      ["y2", "symmetric", "10.4.0.0/24"],
    ] as const) {
      nat[label] = await net.nat(`nat${label}`, { wan: inet, lan, mapping });
      host[label] = await net.host(label, { behind: nat[label]! });
    }
    s1 = await net.host("s1", { on: inet });
    s2 = await net.host("s2", { on: inet });
    await Promise.all([startReflector(s1, { port: 4000 }), startReflector(s1, { port: 4001 }), startReflector(s2, { port: 4000 })]);
  });
  afterAll(async () => {
    await net?.cleanup();
  });

  it("endpoint-independent: one socket keeps one public address:port for every destination", async () => {
    const r = await reflectedAddresses(host.e1!, [
      { ip: s1.ip, port: 4000 },
      { ip: s2.ip, port: 4000 },
      { ip: s1.ip, port: 4001 },
    ]);
    const expected = `${nat.e1!.wanIp}:${r.localPort}`; // the port is kept when free
    expect(r.addresses).toEqual([expected, expected, expected]);
  });

  it("symmetric: one socket gets a different public port for each destination", async () => {
    const r = await reflectedAddresses(host.y1!, [
      { ip: s1.ip, port: 4000 },
      { ip: s2.ip, port: 4000 },
      { ip: s1.ip, port: 4001 },
    ]);
    const seen = r.addresses.map((a) => a!.split(":"));
    for (const [ip] of seen) expect(ip).toBe(nat.y1!.wanIp);
    const ports = seen.map(([, p]) => Number(p));
    // Different server address, and the same address on a different port: new mappings each.
    expect(new Set(ports).size).toBe(3);
    expect(ports).not.toContain(r.localPort);
  });

  it("symmetric: the mapping for one destination stays while it is in use", async () => {
    const first = await reflectedAddresses(host.y2!, [{ ip: s1.ip, port: 4000 }], { localPort: 7100 });
    const again = await reflectedAddresses(host.y2!, [{ ip: s1.ip, port: 4000 }], { localPort: 7100 });
    expect(first.addresses[0]).not.toBeNull();
    expect(again.addresses[0]).toBe(first.addresses[0]);
  });

  it("drops unsolicited traffic from outside", async () => {
    // A server inside listens on 5000; nothing inside has talked to s2, so nothing gets in.
    await startReflector(host.e2!, { port: 5000 });
    const direct = await udpExchange(s2, [{ ip: nat.e2!.wanIp, port: 5000, payload: Buffer.from("hi") }], { timeoutMs: 600 });
    expect(direct.replies).toEqual([null]);
    const inside = await reflectedAddresses(host.e1!, [{ ip: host.e2!.ip, port: 5000 }], { timeoutMs: 600 });
    expect(inside.addresses).toEqual([null]); // private addresses are not routed between sites
  });

  /**
   * Both hosts send to the other's NAT at the same time, from port 6000, as hole-punching peers
   * do, and keep sending a little after hearing from the other (whose first datagrams may have
   * arrived before our side's mapping existed, and been dropped).
   */
  async function punch(a: string, b: string): Promise<[Uint8Array | null, Uint8Array | null]> {
    const port = 6000;
    const [ra, rb] = await Promise.all([
      udpExchange(host[a]!, [{ ip: nat[b]!.wanIp, port, payload: Buffer.from(`from ${a}`) }], { localPort: port, timeoutMs: 1500, lingerMs: 400 }),
      udpExchange(host[b]!, [{ ip: nat[a]!.wanIp, port, payload: Buffer.from(`from ${b}`) }], { localPort: port, timeoutMs: 1500, lingerMs: 400 }),
    ]);
    return [ra.replies[0]!, rb.replies[0]!];
  }

  it("hole punching works between two endpoint-independent NATs", async () => {
    const [atA, atB] = await punch("e1", "e2");
    expect(Buffer.from(atA ?? []).toString()).toBe("from e2");
    expect(Buffer.from(atB ?? []).toString()).toBe("from e1");
  });

  it("hole punching fails between two symmetric NATs", async () => {
    expect(await punch("y1", "y2")).toEqual([null, null]);
  });
});

describe.skipIf(reason !== null)("nested NATs (carrier-grade NAT in front of a home router)", () => {
  let net: Topology | undefined;
  afterAll(async () => {
    await net?.cleanup();
  });

  it("shows the outer NAT's address to the internet", async () => {
    net = await Topology.create("cgn");
    const inet = await net.segment("inet", "198.51.100.0/24");
    const cgn = await net.nat("cgn", { wan: inet, lan: "100.64.0.0/24" });
    const home = await net.nat("home", { wan: cgn.lan, lan: "192.168.1.0/24" });
    const pc = await net.host("pc", { behind: home });
    const srv = await net.host("srv", { on: inet });
    await startReflector(srv, { port: 4000 });
    expect(home.wanIp).toBe("100.64.0.2");
    expect(home.defaultRoute).toBe(cgn.lanIp);
    const r = await reflectedAddresses(pc, [{ ip: srv.ip, port: 4000 }]);
    expect(r.addresses[0]).toBe(`${cgn.wanIp}:${r.localPort}`);
  });
});
