import { describe, expect, it } from "vitest";
import { parseAttachTo, parseKernelSetting, parsePortShare } from "../../src/conf/kernel-values.js";
import { iptablesRemoveInput, iptablesRestoreInput } from "../../src/kernel/iptables-share.js";
import { nftRuleset } from "../../src/kernel/nft-share.js";
import { chooseShareMode, type ShareCapabilities } from "../../src/kernel/port-share.js";
import type { SelectedPair } from "../../src/ice/agent.js";

const direct: SelectedPair = { local: { type: "host", address: "10.0.0.1", port: 40001 }, remote: { type: "srflx", address: "198.51.100.7", port: 50002 } };
const relayed: SelectedPair = { local: { type: "relay", address: "198.51.100.1", port: 49160 }, remote: { type: "host", address: "10.0.0.2", port: 40002 } };
const all: ShareCapabilities = { nftables: null, iptables: null, raw: "raw sockets: EPERM" };
const onDevicePort: SelectedPair = { local: { type: "host", address: "10.0.0.1", port: 51820 }, remote: { type: "host", address: "10.0.0.2", port: 51820 } };

describe("choosing the port-sharing mode", () => {
  it("auto keeps packets in the kernel with nftables first, then iptables, else the proxy", () => {
    expect(chooseShareMode("auto", direct, all).mode).toBe("nftables");
    expect(chooseShareMode("auto", direct, { ...all, nftables: "nft missing" }).mode).toBe("iptables");
    const none = chooseShareMode("auto", direct, { ...all, nftables: "nft missing", iptables: "iptables missing" });
    expect(none.mode).toBe("proxy");
    expect(none.why).toMatch(/nft missing.*iptables missing/);
  });

  it("auto prefers raw sockets for a pair on the device's port; any other pair falls to the next mode", () => {
    const rawToo: ShareCapabilities = { ...all, raw: null };
    expect(chooseShareMode("auto", onDevicePort, rawToo, 51820)).toEqual({ mode: "raw", why: "auto: direct host pair on the device's port, raw sockets usable" });
    expect(chooseShareMode("auto", direct, rawToo, 51820).mode).toBe("nftables");
    expect(chooseShareMode("raw", onDevicePort, rawToo, 51820)).toEqual({ mode: "raw", why: "configured" });
    const off = chooseShareMode("raw", direct, rawToo, 51820);
    expect(off.mode).toBe("proxy");
    expect(off.why).toMatch(/port 40001 is not the device's port 51820/);
    expect(chooseShareMode("auto", onDevicePort, all, 51820).mode).toBe("nftables");
  });

  it("a relay pair always goes through the proxy, whatever was asked", () => {
    for (const s of ["auto", "nftables", "iptables", "raw"] as const) {
      const c = chooseShareMode(s, relayed, all);
      expect(c.mode).toBe("proxy");
      expect(c.why).toMatch(/relay/);
    }
  });

  it("an unusable requested mode falls back to the proxy and says why", () => {
    const c = chooseShareMode("raw", direct, all);
    expect(c).toEqual({ mode: "proxy", why: "raw is not usable here (raw sockets: EPERM)" });
  });
});

describe("firewall rules", () => {
  it("nftables: one transaction that replaces the table; STUN passes, the rest is moved statelessly", () => {
    const text = nftRuleset("wg0", 51820, new Map([["AAAA", direct]]));
    const lines = text.split("\n");
    expect(lines.slice(0, 2)).toEqual(["add table inet tswg-wg0", "delete table inet tswg-wg0"]);
    expect(text).toContain("udp dport 40001 @th,96,32 != 0x2112a442 counter notrack udp dport set 51820");
    expect(text).toContain("ip daddr 198.51.100.7 udp sport 51820 udp dport 50002 counter notrack udp sport set 40001");
    // No peers: the transaction only removes the table.
    expect(nftRuleset("wg0", 51820, new Map())).toBe("add table inet tswg-wg0\ndelete table inet tswg-wg0\n");
  });

  it("iptables: STUN untracked, the rest redirected; the device's packets SNATed to the ICE port", () => {
    const text = iptablesRestoreInput("wg0", 51820, new Map([["AAAA", direct]]));
    expect(text).toContain('-A TSWG-wg0-pre -p udp --dport 40001 -m u32 --u32 "0>>22&0x3C@12=0x2112A442" -j CT --notrack');
    expect(text).toContain("-A TSWG-wg0-out -p udp --sport 40001 -j CT --notrack");
    expect(text).toContain("-A TSWG-wg0-pre -p udp --dport 40001 -m addrtype --dst-type LOCAL -j REDIRECT --to-ports 51820");
    expect(text).toContain("-A TSWG-wg0-post -p udp --sport 51820 -d 198.51.100.7 --dport 50002 -j SNAT --to-source :40001");
    expect(text.match(/^COMMIT$/gm)).toHaveLength(2);
    // The IPv4 input carries no IPv6 peer, and the other way round.
    const v6: SelectedPair = { local: { type: "host", address: "fd00::1", port: 40003 }, remote: { type: "host", address: "fd00::2", port: 50004 } };
    const both = new Map([
      ["AAAA", direct],
      ["BBBB", v6],
    ]);
    expect(iptablesRestoreInput("wg0", 51820, both, 4)).not.toContain("fd00::2");
    const text6 = iptablesRestoreInput("wg0", 51820, both, 6);
    expect(text6).not.toContain("198.51.100.7");
    expect(text6).toContain('-A TSWG-wg0-pre -p udp --dport 40003 -m u32 --u32 "52=0x2112A442" -j CT --notrack');
    expect(text6).toContain("-A TSWG-wg0-post -p udp --sport 51820 -d fd00::2 --dport 50004 -j SNAT --to-source :40003");
  });

  it("iptables: the first write inserts the jumps in the same transaction; removal is one transaction too", () => {
    expect(iptablesRestoreInput("wg0", 51820, new Map([["AAAA", direct]]))).not.toContain("-I ");
    const first = iptablesRestoreInput("wg0", 51820, new Map([["AAAA", direct]]), 4, true).split("\n");
    const raw = first.slice(0, first.indexOf("COMMIT"));
    const nat = first.slice(first.indexOf("COMMIT") + 1);
    expect(raw).toEqual(expect.arrayContaining(["-I PREROUTING -j TSWG-wg0-pre", "-I OUTPUT -j TSWG-wg0-out"]));
    expect(nat).toEqual(expect.arrayContaining(["-I PREROUTING -j TSWG-wg0-pre", "-I POSTROUTING -j TSWG-wg0-post"]));
    expect(iptablesRemoveInput("wg0")).toBe(
      [
        "*raw",
        ":TSWG-wg0-pre - [0:0]",
        ":TSWG-wg0-out - [0:0]",
        "-D PREROUTING -j TSWG-wg0-pre",
        "-D OUTPUT -j TSWG-wg0-out",
        "-X TSWG-wg0-pre",
        "-X TSWG-wg0-out",
        "COMMIT",
        "*nat",
        ":TSWG-wg0-pre - [0:0]",
        ":TSWG-wg0-post - [0:0]",
        "-D PREROUTING -j TSWG-wg0-pre",
        "-D POSTROUTING -j TSWG-wg0-post",
        "-X TSWG-wg0-pre",
        "-X TSWG-wg0-post",
        "COMMIT",
        "",
      ].join("\n"),
    );
  });
});

describe("kernel-mode configuration values", () => {
  it("parses Kernel, PortShare and AttachTo and rejects nonsense", () => {
    expect(parseKernelSetting("Auto")).toBe("auto");
    expect(parseKernelSetting("yes")).toBe("on");
    expect(() => parseKernelSetting("maybe")).toThrow(/auto, on or off/);
    expect(parsePortShare("NFTables")).toBe("nftables");
    expect(() => parsePortShare("ebpf")).toThrow(/expected one of/);
    expect(parseAttachTo("wg0")).toBe("wg0");
    expect(() => parseAttachTo("a/b")).toThrow(/not an interface name/);
    expect(() => parseAttachTo("waytoolonginterfacename")).toThrow();
  });
});
