/**
 * The iptables port sharing against the real tools, IPv4 and IPv6 side by side, in a namespace
 * of its own: the rules a peer needs are written to the right family's tables and are gone
 * after detach and close.
 */
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SelectedPair } from "../../src/ice/agent.js";
import { IptablesShare } from "../../src/kernel/iptables-share.js";
import { missingCommands, netnsUnavailableReason, TestBed, type Host } from "../../src/testbed/index.js";

const missing = missingCommands(["iptables", "ip6tables", "iptables-restore", "ip6tables-restore"]);
const reason = (await netnsUnavailableReason()) ?? (missing.length > 0 ? `missing ${missing.join(", ")}` : null);

describe.skipIf(reason !== null)("iptables port sharing, IPv4 and IPv6", () => {
  let bed: TestBed;
  let host: Host;
  let tools: { iptables: string; ip6tables: string; conntrack: string };

  beforeAll(async () => {
    bed = await TestBed.create("ipt6");
    host = await bed.host("a");
    // The share runs the tools by name; these run them inside the test's namespace.
    const dir = bed.tempDir("tools");
    const wrap = (name: string, real: string): string => {
      const path = join(dir, name);
      writeFileSync(path, `#!/bin/sh\nexec ip netns exec ${host.ns} ${real} "$@"\n`);
      chmodSync(path, 0o755);
      return path;
    };
    for (const t of ["iptables", "ip6tables"]) wrap(`${t}-restore`, `${t}-restore`);
    tools = { iptables: wrap("iptables", "iptables"), ip6tables: wrap("ip6tables", "ip6tables"), conntrack: wrap("conntrack", "true") };
  }, 30_000);

  afterAll(async () => {
    await bed?.cleanup();
  });

  const save = async (family: 4 | 6): Promise<string> => (await host.exec([family === 4 ? "iptables-save" : "ip6tables-save"])).stdout;

  it("writes each pair to its family's tables and removes them again", async () => {
    const share = new IptablesShare({ ifname: "wgt", listenPort: 51820, ...tools });
    const v4: SelectedPair = { local: { type: "host", address: "10.9.0.1", port: 40001 }, remote: { type: "host", address: "10.9.0.2", port: 40002 } };
    const v6: SelectedPair = { local: { type: "host", address: "fd09::1", port: 40003 }, remote: { type: "host", address: "fd09::2", port: 40004 } };
    try {
      expect(await share.attach("p4", v4)).toBe("10.9.0.2:40002");
      expect(await share.attach("p6", v6)).toBe("[fd09::2]:40004");
      const four = await save(4);
      const six = await save(6);
      expect(four).toMatch(/-A TSWG-wgt-post -d 10\.9\.0\.2\/32 -p udp -m udp --sport 51820 --dport 40002 -j SNAT --to-source :40001/);
      expect(four).not.toContain("fd09::2");
      expect(six).toMatch(/-A TSWG-wgt-post -d fd09::2\/128 -p udp -m udp --sport 51820 --dport 40004 -j SNAT --to-source :40003/);
      expect(six).toMatch(/-A TSWG-wgt-pre -p udp -m udp --dport 40003 -m u32 --u32 "0x34=0x2112a442" -j CT --notrack/);
      expect(six).toMatch(/-A PREROUTING -j TSWG-wgt-pre/);
      expect(six).not.toContain("10.9.0.2");
      // The last IPv6 peer leaves: the IPv6 chains go, the IPv4 ones stay.
      await share.detach("p6");
      expect(await save(6)).not.toContain("TSWG-");
      expect(await save(4)).toContain("TSWG-wgt-post");
    } finally {
      await share.close();
    }
    expect(await save(4)).not.toContain("TSWG-");
    expect(await save(6)).not.toContain("TSWG-");
  }, 60_000);

  it("moves a peer from IPv4 to IPv6 (the IPv4 chains go), and removes a crashed run's chains with several jumps", async () => {
    const share = new IptablesShare({ ifname: "wgt", listenPort: 51820, ...tools });
    const v4: SelectedPair = { local: { type: "host", address: "10.9.0.1", port: 40001 }, remote: { type: "host", address: "10.9.0.2", port: 40002 } };
    const v6: SelectedPair = { local: { type: "host", address: "fd09::1", port: 40005 }, remote: { type: "host", address: "fd09::2", port: 40006 } };
    try {
      await share.attach("p", v4);
      expect((await save(4)).match(/-A PREROUTING -j TSWG-wgt-pre/g)).toHaveLength(2); // raw and nat, once each
      expect(await share.attach("p", v6)).toBe("[fd09::2]:40006");
      expect(await save(4)).not.toContain("TSWG-");
      expect(await save(6)).toMatch(/-A TSWG-wgt-post -d fd09::2\/128 .*--dport 40006 -j SNAT --to-source :40005/);
    } finally {
      await share.close();
    }
    expect(await save(6)).not.toContain("TSWG-");
    // A crashed run: chains and two jumps each, which the next run's cleanStale removes.
    await share.attach("p", v4);
    await host.exec(["iptables", "-t", "nat", "-I", "PREROUTING", "-j", "TSWG-wgt-pre"]);
    await host.exec(["iptables", "-t", "raw", "-I", "OUTPUT", "-j", "TSWG-wgt-out"]);
    const next = new IptablesShare({ ifname: "wgt", listenPort: 51820, ...tools });
    await next.cleanStale();
    expect(await save(4)).not.toContain("TSWG-");
  }, 60_000);
});
