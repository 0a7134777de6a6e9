/**
 * What agents offer and accept: host address selection (the tunnel's own interface never
 * offered), remote candidate parsing, and no server contacted unless configured.
 */
import dgram from "node:dgram";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir, type NetworkInterfaceInfo } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterEach, describe, expect, it, vi } from "vitest";
import { PeerAgent } from "../../src/ice/agent.js";
import {
  interfaceExcluded,
  parseCandidateTypes,
  parsePortRange,
  parseRemoteCandidate,
  selectHostAddresses,
  isTunnelInterface,
  TUNNEL_NAME_PATTERNS,
  type NetworkInterfaceMap,
} from "../../src/ice/candidates.js";
import { IceConfigError, libraryOptions, resolveIceConfig } from "../../src/ice/config.js";
import { IceSession } from "../../src/ice/session.js";
import { parseIceServers } from "../../src/ice/servers.js";
import { silentLogger } from "../../src/log/logger.js";
import { waitFor } from "../../src/testbed/wait.js";
import { netnsUnavailableReason, TestBed } from "../helpers/netns.js";
import { agentPair, keyPair, LOOPBACK, waitConnected, type AgentPair } from "./helpers.js";
import { MemoryHub } from "./memory-channel.js";

const netnsSkip = await netnsUnavailableReason();

describe.skipIf(netnsSkip !== null)("tunnel interfaces on a real Linux system", () => {
  it("a TUN device with any name is a tunnel; a veth or loopback device is not", async () => {
    const bed = await TestBed.create("tunkind");
    try {
      const a = await bed.host("a");
      const b = await bed.host("b");
      await bed.link(a, b, { a: "192.0.2.1/24", b: "192.0.2.2/24" });
      await a.ip(["tuntap", "add", "dev", "office", "mode", "tun"]);
      const mod = join(import.meta.dirname, "../../dist/ice/candidates.js");
      const script = `const m = await import(${JSON.stringify(mod)}); console.log(["office", "to-b", "lo"].map((n) => m.isTunnelInterface(n)).join(" "));`;
      const r = await a.exec(["node", "--input-type=module", "-e", script]);
      expect(r.stdout.trim()).toBe("true false false");
    } finally {
      await bed.cleanup();
    }
  }, 30_000);
});

function iface(address: string, opts: Partial<NetworkInterfaceInfo> = {}): NetworkInterfaceInfo {
  const v6 = address.includes(":");
  return {
    address,
    netmask: v6 ? "ffff:ffff:ffff:ffff::" : "255.255.255.0",
    family: v6 ? "IPv6" : "IPv4",
    mac: "02:00:00:00:00:01",
    internal: false,
    cidr: null,
    ...(v6 ? { scopeid: 0 } : {}),
    ...opts,
  } as NetworkInterfaceInfo;
}

/** A machine with a LAN, the tunnel, another WireGuard interface, a veth in a test bed, and loopback. */
const MACHINE: NetworkInterfaceMap = {
  lo: [iface("127.0.0.1", { internal: true }), iface("::1", { internal: true })],
  eth0: [iface("198.51.100.7"), iface("2001:db8::7"), iface("fe80::1"), iface("169.254.3.4")],
  tswg0: [iface("10.77.0.1"), iface("fd77::1")],
  wg1: [iface("10.78.0.1")],
  "veth-a": [iface("192.0.2.10")],
};

// Tunnels recognised by name only, so that the host's own /sys does not change the results.
const byName = (n: string) => interfaceExcluded(n, TUNNEL_NAME_PATTERNS);
const all = { ipv4: true, ipv6: true, excludeInterfaces: [] as string[], extraAddresses: [] as string[], isTunnel: byName };

describe("host address selection", () => {
  it("leaves out the tunnel interface, every other tunnel, loopback and link-local, but keeps veth", () => {
    const got = selectHostAddresses(MACHINE, { ...all, excludeInterfaces: ["tswg0"] });
    expect(got).toEqual(["198.51.100.7", "2001:db8::7", "192.0.2.10"]);
    expect(got).not.toContain("10.77.0.1");
    expect(got).not.toContain("fd77::1");
    // Another WireGuard interface is a tunnel too, whatever the tunnel's own name.
    expect(selectHostAddresses(MACHINE, { ...all })).toEqual(["198.51.100.7", "2001:db8::7", "192.0.2.10"]);
    // A tunnel with an unusual name, recognised by kind.
    const office = { ...MACHINE, office: [iface("10.79.0.1")] };
    expect(selectHostAddresses(office, { ...all, isTunnel: (n) => n === "office" || byName(n) })).not.toContain("10.79.0.1");
    expect(selectHostAddresses(office, { ...all })).toContain("10.79.0.1");
  });

  it("matches exclusion patterns with a trailing *", () => {
    expect(interfaceExcluded("wg1", ["wg*"])).toBe(true);
    expect(interfaceExcluded("wg", ["wg*"])).toBe(true);
    expect(interfaceExcluded("awg1", ["wg*"])).toBe(false);
    expect(interfaceExcluded("tswg0", ["tswg0"])).toBe(true);
    expect(interfaceExcluded("tswg01", ["tswg0"])).toBe(false);
    const got = selectHostAddresses(MACHINE, { ...all, excludeInterfaces: ["tswg0", "wg*", "veth*"] });
    expect(got).toEqual(["198.51.100.7", "2001:db8::7"]);
  });

  it("honours the IPv4/IPv6 switches and puts extra addresses first", () => {
    expect(selectHostAddresses(MACHINE, { ...all, ipv6: false, excludeInterfaces: ["tswg0"] })).toEqual(["198.51.100.7", "192.0.2.10"]);
    expect(selectHostAddresses(MACHINE, { ...all, ipv4: false, excludeInterfaces: ["tswg0"] })).toEqual(["2001:db8::7"]);
    expect(selectHostAddresses(MACHINE, { ...all, extraAddresses: ["127.0.0.1", "::1"], ipv6: false, excludeInterfaces: ["tswg0", "wg*", "veth*"] })).toEqual([
      "127.0.0.1",
      "198.51.100.7",
    ]);
  });

  it("recognises tunnels by kind in sysfs: TUN/TAP, WireGuard, no link layer", () => {
    const sys = mkdtempSync(join(tmpdir(), "tswgt-sysfs-"));
    try {
      const dev = (name: string, files: Record<string, string>) => {
        mkdirSync(join(sys, name));
        for (const [f, text] of Object.entries(files)) writeFileSync(join(sys, name, f), text);
      };
      dev("office", { type: "65534\n", tun_flags: "0x1001\n", uevent: "INTERFACE=office\nIFINDEX=7\n" });
      dev("corp", { type: "65534\n", uevent: "DEVTYPE=wireguard\nINTERFACE=corp\n" });
      dev("eth0", { type: "1\n", uevent: "INTERFACE=eth0\n" });
      dev("veth-a", { type: "1\n", uevent: "DEVTYPE=veth\n" });
      expect(isTunnelInterface("office", sys)).toBe(true);
      expect(isTunnelInterface("corp", sys)).toBe(true);
      expect(isTunnelInterface("eth0", sys)).toBe(false);
      expect(isTunnelInterface("veth-a", sys)).toBe(false);
      expect(isTunnelInterface("missing", sys)).toBe(false);
      expect(isTunnelInterface("wg7", sys)).toBe(true);
    } finally {
      rmSync(sys, { recursive: true, force: true });
    }
  });

  it("never offers an excluded interface's address, even when given explicitly", () => {
    const got = selectHostAddresses(MACHINE, { ...all, excludeInterfaces: ["tswg0"], extraAddresses: ["10.77.0.1"] });
    expect(got).not.toContain("10.77.0.1");
    expect(() => selectHostAddresses(MACHINE, { ...all, extraAddresses: ["not-an-ip"] })).toThrow(/not an IP address/);
  });

  it("an agent offers no candidate on the tunnel interface (tunnelInterface + excludeInterfaces)", async () => {
    const [ka, kb] = keyPair();
    const hub = new MemoryHub();
    const ch = hub.channel(ka);
    ch.setPeers([kb]);
    const agent = new PeerAgent({
      localKey: ka,
      peerKey: kb,
      channel: ch,
      networkInterfaces: () => MACHINE,
      tunnelInterface: "tswg0",
      excludeInterfaces: ["wg*"],
      ipv6: false,
    });
    try {
      agent.start();
      await waitFor(() => hub.log.some((r) => r.msg.type === "candidate" && r.msg.candidate === null), { what: "end of candidates", timeoutMs: 5000 });
      const offered = hub.log.flatMap((r) => (r.msg.type === "candidate" && r.msg.candidate !== null ? [r.msg.candidate] : []));
      const hosts = offered.map((c) => c.split(" ")[4]);
      expect(hosts.sort()).toEqual(["192.0.2.10", "198.51.100.7"]);
      expect(offered.every((c) => c.startsWith("candidate:") && c.includes(" typ host"))).toBe(true);
      expect(agent.status().localCandidates.map((c) => c.address)).not.toContain("10.77.0.1");
    } finally {
      await agent.close();
    }
  });
});

describe("no server unless configured", () => {
  it("the library's public STUN fallback is overridden", async () => {
    const cfg = resolveIceConfig(LOOPBACK);
    expect(cfg.stun).toBeNull();
    expect(libraryOptions(cfg, ["127.0.0.1"]).stunServer).toBeUndefined();
    const events = { candidate() {}, gathered() {}, checking() {}, connected() {}, failed() {}, data() {} };
    const s = new IceSession(0, true, ["127.0.0.1"], cfg, events, silentLogger);
    try {
      expect(s.conn.stunServer).toBeUndefined();
      expect(s.conn.turnServer).toBeUndefined();
    } finally {
      await s.close();
    }
    // With a server configured, that one is used.
    const withStun = resolveIceConfig({ ...LOOPBACK, servers: parseIceServers("stun:127.0.0.1:3478") });
    const s2 = new IceSession(0, true, [], withStun, events, silentLogger);
    try {
      expect(s2.conn.stunServer).toEqual(["127.0.0.1", 3478]);
    } finally {
      await s2.close();
    }
  });

  let pair: AgentPair | null = null;
  afterEach(async () => {
    vi.restoreAllMocks();
    await pair?.close();
    pair = null;
  });

  it("two agents with no servers send only to each other (no packet to any other address)", async () => {
    const destinations = new Set<string>();
    const orig = dgram.Socket.prototype.send;
    vi.spyOn(dgram.Socket.prototype, "send").mockImplementation(function (this: dgram.Socket, ...args: unknown[]) {
      const address = args.find((x, i) => i > 0 && typeof x === "string");
      destinations.add(String(address));
      return (orig as (...a: unknown[]) => void).apply(this, args);
    } as typeof orig);
    pair = agentPair();
    pair.a.start();
    pair.b.start();
    await waitConnected([pair.a, pair.b]);
    for (const ag of [pair.a, pair.b]) {
      const st = ag.status();
      expect(st.localCandidates.map((c) => c.type)).toEqual(["host"]);
    }
    await new Promise((r) => setTimeout(r, 200));
    expect(destinations.size).toBeGreaterThan(0);
    expect([...destinations]).toEqual(["127.0.0.1"]);
  });
});

describe("remote candidates", () => {
  const fam = { ipv4: true, ipv6: true };

  it("accepts UDP candidates on IP literals and drops generation", () => {
    const c = parseRemoteCandidate("candidate:abc123 1 udp 2130706431 192.0.2.1 40000 typ host generation 3 ufrag u1", fam);
    expect(c).not.toBeNull();
    expect(c!.host).toBe("192.0.2.1");
    expect(c!.port).toBe(40000);
    expect(c!.type).toBe("host");
    expect(c!.generation).toBeUndefined();
    expect(c!.ufrag).toBe("u1");
    const r = parseRemoteCandidate("a=candidate:x 1 UDP 16777215 203.0.113.9 50000 typ relay raddr 198.51.100.1 rport 1234", fam);
    expect(r?.type).toBe("relay");
    expect(r?.relatedPort).toBe(1234);
    expect(parseRemoteCandidate("1 1 udp 100 2001:db8::2 9 typ srflx", fam)?.host).toBe("2001:db8::2");
  });

  it("refuses mDNS names, TCP, other components, bad ports, link-local, prflx and disabled families", () => {
    const bad = [
      "candidate:1 1 udp 2130706431 3f1c-uuid.local 40000 typ host",
      "candidate:1 1 udp 2130706431 example.org 40000 typ host",
      "candidate:1 1 tcp 2130706431 192.0.2.1 40000 typ host tcptype passive",
      "candidate:1 2 udp 2130706431 192.0.2.1 40000 typ host",
      "candidate:1 1 udp 2130706431 192.0.2.1 0 typ host",
      "candidate:1 1 udp 2130706431 192.0.2.1 70000 typ host",
      "candidate:1 1 udp 2130706431 fe80::1 40000 typ host",
      "candidate:1 1 udp 2130706431 192.0.2.1 40000 typ prflx",
      "candidate:1 1 udp 2130706431 192.0.2.1 40000 type host",
      "candidate:1 1 udp -5 192.0.2.1 40000 typ host",
      "candidate:1 1 udp 2130706431 192.0.2.1",
      "",
      "x".repeat(2000),
    ];
    for (const b of bad) expect(parseRemoteCandidate(b, fam), b).toBeNull();
    expect(parseRemoteCandidate("candidate:1 1 udp 1 2001:db8::1 9 typ host", { ipv4: true, ipv6: false })).toBeNull();
    expect(parseRemoteCandidate("candidate:1 1 udp 1 192.0.2.1 9 typ host", { ipv4: false, ipv6: true })).toBeNull();
  });

  it("never throws on arbitrary input", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.array(fc.constantFrom("candidate:1", "1", "udp", "typ", "host", "127.0.0.1", "9", "::1", " ")).map((a) => a.join(" "))), (s) => {
        const c = parseRemoteCandidate(s, fam);
        if (c !== null) {
          expect(c.port).toBeGreaterThanOrEqual(1);
          expect(c.port).toBeLessThanOrEqual(65535);
        }
      }),
    );
  });
});

describe("settings", () => {
  it("parses candidate types and port ranges with clear errors", () => {
    expect([...parseCandidateTypes("host, relay")]).toEqual(["host", "relay"]);
    expect(() => parseCandidateTypes("host,prflx")).toThrow(/unknown candidate type "prflx"/);
    expect(() => parseCandidateTypes("")).toThrow(/at least one/);
    expect(parsePortRange("50000-50100")).toEqual([50000, 50100]);
    expect(parsePortRange([1, 1])).toEqual([1, 1]);
    expect(() => parsePortRange("50100-50000")).toThrow(/low <= high/);
    expect(() => parsePortRange("0-10")).toThrow(/1 <= low/);
    expect(() => parsePortRange("a-b")).toThrow(/not "low-high"/);
  });

  it("refuses settings that could never produce a candidate", () => {
    expect(() => resolveIceConfig({ candidateTypes: ["relay"] })).toThrow(IceConfigError);
    expect(() => resolveIceConfig({ candidateTypes: ["relay"] })).toThrow(/TURN/);
    expect(() => resolveIceConfig({ candidateTypes: ["srflx"] })).toThrow(/STUN/);
    expect(() => resolveIceConfig({ ipv4: false, ipv6: false })).toThrow(/IPv4 or IPv6/);
    expect(() => resolveIceConfig({ consentTimeoutMs: 1000 })).toThrow(/consentTimeoutMs/);
    expect(() => resolveIceConfig({ hostAddresses: ["nope"] })).toThrow(/not an IP/);
    expect(() => resolveIceConfig({ excludeInterfaces: ["*"] })).toThrow(/matches everything/);
    // Relay only: the library is told to force the relay and to open no host sockets.
    const relay = resolveIceConfig({ candidateTypes: ["relay"], servers: parseIceServers("turn:u:p@127.0.0.1:3478"), hostAddresses: ["127.0.0.1"] });
    expect(relay.relayOnly).toBe(true);
    expect(relay.stun).toBeNull();
    expect(libraryOptions(relay, []).forceTurn).toBe(true);
    // A TURN server over UDP answers STUN too when srflx is allowed and no STUN server is given.
    const both = resolveIceConfig({ servers: parseIceServers("turn:u:p@127.0.0.1:3478") });
    expect(both.stun?.host).toBe("127.0.0.1");
    const tunnel = resolveIceConfig({ tunnelInterface: "tswg0", excludeInterfaces: ["docker*"] });
    expect(tunnel.excludeInterfaces).toEqual(["tswg0", "docker*"]);
  });
});
