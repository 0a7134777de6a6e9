import { describe, expect, it } from "vitest";
import { addAddress, addRoute, linkExists, runIp, setLinkUp, setMtu } from "../../src/tun/linux-ifconfig.js";
import { run } from "./support/netns.js";

const ipAvailable = (await run("ip", ["-V"])).code === 0;

describe("linux-ifconfig", () => {
  it("checks names, MTUs and prefixes before running ip", async () => {
    await expect(setLinkUp("a-name-that-is-too-long")).rejects.toThrow(/invalid interface name/);
    await expect(setMtu("wg0", 20)).rejects.toThrow(/invalid MTU 20/);
    await expect(addAddress("wg0", "10.0.0.1/24; reboot")).rejects.toThrow(/invalid address or prefix/);
    await expect(addRoute("wg0", "")).rejects.toThrow(/invalid address or prefix/);
  });

  it("says when ip cannot be run at all", async () => {
    await expect(runIp(["link"], { ip: "/nonexistent/ip" })).rejects.toThrow(
      "/nonexistent/ip link: cannot run /nonexistent/ip: not found (is iproute2 installed?)",
    );
  });

  it.skipIf(!ipAvailable)("puts the command line and ip's message in the error", async () => {
    await expect(setMtu("tswgt-nodev", 1400)).rejects.toThrow(
      /^ip link set dev tswgt-nodev mtu 1400: .*(Cannot find device|does not exist)/,
    );
  });

  it.skipIf(!ipAvailable)("tells whether a link exists", async () => {
    expect(await linkExists("lo")).toBe(true);
    expect(await linkExists("tswgt-nodev")).toBe(false);
  });

  it.skipIf(!ipAvailable)("reports a missing namespace as an error, not as a missing link", async () => {
    await expect(linkExists("lo", { netns: `tswgt-none-${process.pid}` })).rejects.toThrow(/^ip -n tswgt-none-\d+ link show dev lo: /);
  });
});
