import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  reflectedAddresses,
  startReflector,
  tcpReflectedAddress,
  topologyUnavailableReason,
  Topology,
  type Firewall,
  type Nat,
  type NetNode,
  type Segment,
} from "../../src/testbed/index.js";

const reason = await topologyUnavailableReason();
if (reason !== null) console.warn(`skipping firewall tests: ${reason}`);

describe.skipIf(reason !== null)("firewalls", () => {
  let net: Topology;
  let inet: Segment;
  let natA: Nat;
  let a: NetNode;
  let s1: NetNode;
  let s2: NetNode;
  const fws: Firewall[] = [];

  /** Which of s1:3478, s1:4000, s2:4000 answer a UDP probe from `from`. */
  async function udpReach(from: NetNode = a): Promise<boolean[]> {
    const r = await reflectedAddresses(
      from,
      [
        { ip: s1.ip, port: 3478 },
        { ip: s1.ip, port: 4000 },
        { ip: s2.ip, port: 4000 },
      ],
      { timeoutMs: 700 },
    );
    return r.addresses.map((x) => x !== null);
  }

  async function tcpReach(from: NetNode = a): Promise<boolean> {
    return (await tcpReflectedAddress(from, { ip: s2.ip, port: 8080 }, { timeoutMs: 700 })) !== null;
  }

  async function pings(from: NetNode, to: string): Promise<boolean> {
    return (await from.exec(["ping", "-c1", "-W1", to], { check: false })).code === 0;
  }

  beforeAll(async () => {
    net = await Topology.create("fw");
    inet = await net.segment("inet", "198.51.100.0/24");
    natA = await net.nat("natA", { wan: inet, lan: "10.1.0.0/24" });
    a = await net.host("a", { behind: natA });
    s1 = await net.host("s1", { on: inet });
    s2 = await net.host("s2", { on: inet });
    await Promise.all([
      startReflector(s1, { port: 3478 }),
      startReflector(s1, { port: 4000 }),
      startReflector(s2, { port: 4000 }),
      startReflector(s2, { port: 8080, proto: "tcp" }),
    ]);
  });
  afterEach(async () => {
    for (const f of fws.splice(0)) await f.remove();
  });
  afterAll(async () => {
    await net?.cleanup();
  });

  it("lets everything through without a firewall", async () => {
    expect(await udpReach()).toEqual([true, true, true]);
    expect(await tcpReach()).toBe(true);
  });

  it("on a NAT gateway: drops UDP except to the TURN server's port, and leaves TCP alone", async () => {
    const fw = await net.firewall(natA, { dropUdp: true, except: [{ to: s1.ip, port: 3478 }] });
    fws.push(fw);
    expect(fw.table).toMatch(/^tswgt_fw\d+$/);
    expect(await udpReach()).toEqual([true, false, false]);
    expect(await tcpReach()).toBe(true);
    // The servers themselves are not affected: the rules are on the gateway only.
    expect(await udpReach(s2)).toEqual([true, true, true]);
  });

  it("drops TCP when asked", async () => {
    fws.push(await net.firewall(natA, { dropTcp: true }));
    expect(await tcpReach()).toBe(false);
    expect(await udpReach()).toEqual([true, true, true]);
  });

  it("remove() restores the path, and also cuts flows that were already running", async () => {
    const before = await reflectedAddresses(a, [{ ip: s2.ip, port: 4000 }], { localPort: 7200 });
    expect(before.addresses[0]).not.toBeNull();
    const fw = await net.firewall(natA, { dropUdp: true });
    expect(fw.active).toBe(true);
    // Same 5-tuple as a moment ago: an established conntrack entry does not get it through.
    const during = await reflectedAddresses(a, [{ ip: s2.ip, port: 4000 }], { localPort: 7200, timeoutMs: 700 });
    expect(during.addresses).toEqual([null]);
    await fw.remove();
    await fw.remove(); // idempotent
    expect(fw.active).toBe(false);
    const after = await reflectedAddresses(a, [{ ip: s2.ip, port: 4000 }], { localPort: 7200 });
    expect(after.addresses[0]).toBe(before.addresses[0]);
  });

  it("on a segment: cuts one site off the internet, in both directions", async () => {
    fws.push(await net.firewall(inet, { drop: [{ to: natA.wanIp }] }));
    expect(await udpReach()).toEqual([false, false, false]);
    expect(await pings(a, s1.ip)).toBe(false);
    expect(await pings(s1, natA.wanIp)).toBe(false);
    // Others on the segment still talk.
    expect(await pings(s1, s2.ip)).toBe(true);
    expect(await udpReach(s1)).toEqual([true, true, true]);
  });

  it("on a segment: except wins over the drops of the same firewall", async () => {
    fws.push(await net.firewall(inet, { drop: [{ to: natA.wanIp }], except: [{ to: s2.ip, proto: "udp" }] }));
    expect(await udpReach()).toEqual([false, false, true]);
    expect(await tcpReach()).toBe(false);
  });

  it("on a plain host: drops what it sends and receives", async () => {
    fws.push(await net.firewall(s2, { dropUdp: true }));
    expect(await udpReach()).toEqual([true, true, false]);
    expect(await pings(a, s2.ip)).toBe(true);
  });

  it("refuses a firewall that drops nothing", async () => {
    await expect(net.firewall(natA, { except: [{ to: s1.ip }] })).rejects.toThrow(/would drop nothing/);
  });
});
