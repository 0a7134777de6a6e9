import { describe, expect, it } from "vitest";
import { coturnConfig } from "../../src/testbed/coturn.js";
import { firewallRuleset } from "../../src/testbed/firewall.js";
import { natRuleset, type NatMapping } from "../../src/testbed/nat.js";

describe("natRuleset", () => {
  it("masquerades with a kept port for endpoint-independent mapping", () => {
    const r = natRuleset({ wanIf: "wan", mapping: "endpoint-independent" });
    expect(r).toMatch(/oifname "wan" masquerade persistent\n/);
    expect(r).not.toMatch(/random/);
    // Unsolicited traffic from outside is dropped, replies get in.
    expect(r).toMatch(/iifname "wan" ct state established,related accept\n\t\tiifname "wan" drop/);
  });

  it("masquerades with random ports for symmetric mapping", () => {
    expect(natRuleset({ wanIf: "up0", mapping: "symmetric" })).toMatch(/oifname "up0" masquerade random\n/);
  });

  it("maps into a port range when given one, and refuses a bad range", () => {
    expect(natRuleset({ wanIf: "wan", mapping: "endpoint-independent", ports: [40000, 40999] })).toMatch(/oifname "wan" meta l4proto \{ tcp, udp \} masquerade to :40000-40999 persistent\n\t\toifname "wan" masquerade persistent\n/);
    expect(() => natRuleset({ wanIf: "wan", mapping: "symmetric", ports: [5000, 10] })).toThrow(/bad NAT port range/);
    expect(() => natRuleset({ wanIf: "wan", mapping: "symmetric", ports: [0, 10] })).toThrow(/bad NAT port range/);
  });

  it("rejects unknown mappings and bad interface names", () => {
    expect(() => natRuleset({ wanIf: "wan", mapping: "full-cone" as NatMapping })).toThrow(/unknown NAT mapping "full-cone"/);
    expect(() => natRuleset({ wanIf: 'wan"; flush ruleset', mapping: "symmetric" })).toThrow(/bad interface name/);
  });
});

describe("firewallRuleset", () => {
  it("puts exceptions first, in both directions, then the drops", () => {
    const r = firewallRuleset("tswgt_fw1", "inet", { dropUdp: true, except: [{ to: "198.51.100.9", port: 3478 }] });
    const lines = r.split("\n").map((l) => l.trim());
    const i = lines.indexOf("ip daddr 198.51.100.9/32 meta l4proto { tcp, udp } th dport 3478 accept");
    expect(i).toBeGreaterThan(0);
    expect(lines[i + 1]).toBe("ip saddr 198.51.100.9/32 meta l4proto { tcp, udp } th sport 3478 accept");
    expect(lines[i + 2]).toBe("meta l4proto udp drop");
    expect(r.match(/type filter hook (\w+)/g)).toEqual(["type filter hook input", "type filter hook output", "type filter hook forward"]);
    expect(r.startsWith("table inet tswgt_fw1 {")).toBe(true);
  });

  it("drops addresses and prefixes both ways, IPv6 too, and only forwards on a bridge", () => {
    const r = firewallRuleset("t", "bridge", { drop: [{ to: "10.2.0.7/24", proto: "udp" }, { to: "fd00::1" }], dropTcp: true });
    expect(r).toContain("ip daddr 10.2.0.0/24 meta l4proto udp drop");
    expect(r).toContain("ip saddr 10.2.0.0/24 meta l4proto udp drop");
    expect(r).toContain("ip6 daddr fd00::1/128 drop");
    expect(r).toContain("meta l4proto tcp drop");
    expect(r.split("\n").map((l) => l.trim())).not.toContain("meta l4proto udp drop");
    expect(r.match(/hook (\w+)/g)).toEqual(["hook forward"]);
  });

  it("refuses a firewall that drops nothing, and bad matches", () => {
    expect(() => firewallRuleset("t", "inet", {})).toThrow(/would drop nothing/);
    expect(() => firewallRuleset("t", "inet", { except: [{ to: "1.2.3.4" }] })).toThrow(/would drop nothing/);
    expect(() => firewallRuleset("t", "inet", { dropUdp: true, except: [{ to: "1.2.3" }] })).toThrow(/except\[0\]/);
    expect(() => firewallRuleset("t", "inet", { drop: [{ to: "1.2.3.4", port: 0 }] })).toThrow(/drop\[0\]: port 0 is not 1-65535/);
    expect(() => firewallRuleset("t", "inet", { drop: [{ to: "1.2.3.4", proto: "icmp" as "udp" }] })).toThrow(/proto must be/);
    expect(() => firewallRuleset("bad name", "inet", { dropUdp: true })).toThrow(/table name/);
  });
});

describe("coturnConfig", () => {
  const base = {
    ip: "198.51.100.5",
    port: 3478,
    username: "u",
    password: "p",
    realm: "r.test",
    dir: "/tmp/x",
    relayPorts: { min: 50000, max: 50100 },
  };

  it("listens and relays on the given address with static credentials, without TLS by default", () => {
    const c = coturnConfig(base).split("\n");
    for (const l of ["listening-ip=198.51.100.5", "relay-ip=198.51.100.5", "listening-port=3478", "lt-cred-mech", "user=u:p", "realm=r.test", "no-tls", "no-dtls", "min-port=50000", "max-port=50100", "userdb=/tmp/x/turndb"]) {
      expect(c).toContain(l);
    }
  });

  it("adds the TLS listener and certificate when asked", () => {
    const c = coturnConfig({ ...base, tls: { port: 5349, cert: "/tmp/x/cert.pem", key: "/tmp/x/key.pem" } }).split("\n");
    expect(c).toEqual(expect.arrayContaining(["tls-listening-port=5349", "cert=/tmp/x/cert.pem", "pkey=/tmp/x/key.pem"]));
    expect(c).not.toContain("no-tls");
  });

  it("refuses values that would break or inject configuration", () => {
    expect(() => coturnConfig({ ...base, password: "a:b" })).toThrow(/password/);
    expect(() => coturnConfig({ ...base, username: "x\nno-auth" })).toThrow(/username/);
    expect(() => coturnConfig({ ...base, port: 70000 })).toThrow(/70000/);
    expect(() => coturnConfig({ ...base, relayPorts: { min: 9, max: 8 } })).toThrow(/reversed/);
    expect(() => coturnConfig({ ...base, extraConfig: ["a\nb"] })).toThrow(/line breaks/);
  });
});
