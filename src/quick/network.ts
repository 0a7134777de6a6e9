/**
 * The host side of `tswg up`, done as wg-quick does it and with the same iproute2 commands
 * (each one is logged as "[#] ip ..." so it can be reproduced by hand): addresses, MTU, link up,
 * a route per AllowedIPs prefix, DNS through resolvconf, and for a default route (a /0 prefix
 * with Table = auto) policy routing on a firewall mark so the tunnel's own UDP packets do not
 * loop back into it.
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import type { QuickInterface } from "../conf/wgquick.js";
import type { Logger } from "../log/logger.js";
import type { Journal } from "./journal.js";
import { IpCommandError, runIp } from "../tun/linux-ifconfig.js";

export interface NetworkOptions {
  name: string;
  iface: QuickInterface;
  /** Every peer's AllowedIPs. */
  allowedIps: string[];
  /** Endpoint IPs, for the automatic MTU. */
  endpointHosts: string[];
  /** Current fwmark of the device (0 = none) and how to set it. */
  fwmark: number;
  setFwmark: (mark: number) => Promise<void>;
  log: Logger;
  /** `ip` options, e.g. a namespace; default the current one. */
  netns?: string;
  /** Where changes that outlive the process (rules, DNS) are noted for recovery after a crash. */
  journal?: Journal;
}

/** Undoes what {@link setUpNetwork} did that does not vanish with the link itself. */
export type Teardown = () => Promise<void>;

const WG_OVERHEAD = 80; // IPv6 header 40 + UDP 8 + WireGuard 32, as wg-quick assumes

function family(cidr: string): "-4" | "-6" {
  return cidr.includes(":") ? "-6" : "-4";
}

function prefixLength(cidr: string): number {
  const slash = cidr.lastIndexOf("/");
  return slash < 0 ? (cidr.includes(":") ? 128 : 32) : Number(cidr.slice(slash + 1));
}

async function mtuOfDevice(dev: string): Promise<number | null> {
  try {
    const v = Number(readFileSync(`/sys/class/net/${dev}/mtu`, "utf8").trim());
    return Number.isInteger(v) && v > 0 ? v : null;
  } catch {
    return null;
  }
}

/** wg-quick's automatic MTU: the largest MTU on the way to the endpoints (or of the default route) minus 80. */
export async function autoMtu(endpointHosts: string[], ip: (args: string[]) => Promise<string>): Promise<number> {
  let best = 0;
  const devOf = (out: string) => /\bdev (\S+)/u.exec(out)?.[1];
  for (const host of endpointHosts) {
    try {
      const dev = devOf(await ip([family(host), "route", "get", host]));
      const m = dev === undefined ? null : await mtuOfDevice(dev);
      if (m !== null && m > best) best = m;
    } catch {
      // unreachable endpoints do not count
    }
  }
  if (best === 0) {
    try {
      const dev = devOf(await ip(["-4", "route", "show", "default"]));
      const m = dev === undefined ? null : await mtuOfDevice(dev);
      if (m !== null) best = m;
    } catch {
      // no default route
    }
  }
  return (best || 1500) - WG_OVERHEAD;
}

async function run(cmd: string, args: string[], input: string | null): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: [input === null ? "ignore" : "pipe", "ignore", "pipe"] });
    let err = "";
    child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(" ")}: ${err.trim() || `exit ${code}`}`))));
    if (input !== null) child.stdin!.end(input);
  });
}

function commandExists(cmd: string): boolean {
  return (process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin").split(":").some((d) => existsSync(`${d}/${cmd}`));
}

const MISSING_RESOLVCONF =
  "DNS is set but resolvconf is not installed: install resolvconf (or openresolv), or remove DNS from the configuration";

/**
 * Refuses, before anything changes, what {@link setUpNetwork} could not do: DNS without
 * resolvconf (wg-quick fails there too, but only after the interface is up).
 */
export function checkNetworkPrerequisites(iface: QuickInterface): void {
  if ((iface.dns.length > 0 || iface.dnsSearch.length > 0) && !commandExists("resolvconf")) throw new Error(MISSING_RESOLVCONF);
}

export async function setUpNetwork(opts: NetworkOptions): Promise<Teardown> {
  const { name, iface, log } = opts;
  const ipOpts = opts.netns === undefined ? {} : { netns: opts.netns };
  const ip = async (args: string[]): Promise<string> => {
    log.info(`[#] ip ${args.join(" ")}`);
    return runIp(args, ipOpts);
  };
  const quietIp = (args: string[]) => runIp(args, ipOpts);
  const undo: (() => Promise<void>)[] = [];
  const teardown: Teardown = async () => {
    for (const u of undo.reverse()) {
      try {
        await u();
      } catch (err) {
        log.warn(err instanceof Error ? err.message : String(err));
      }
    }
  };

  try {
    for (const a of iface.addresses) await ip([family(a), "address", "add", a, "dev", name]);
    const mtu = iface.mtu ?? (await autoMtu(opts.endpointHosts, quietIp));
    await ip(["link", "set", "mtu", String(mtu), "up", "dev", name]);

    if (iface.dns.length > 0 || iface.dnsSearch.length > 0) {
      if (commandExists("resolvconf")) {
        const text =
          iface.dns.map((d) => `nameserver ${d}\n`).join("") +
          (iface.dnsSearch.length > 0 ? `search ${iface.dnsSearch.join(" ")}\n` : "");
        log.info(`[#] resolvconf -a tun.${name} -m 0 -x`);
        opts.journal?.add({ cmd: "resolvconf", args: ["-d", `tun.${name}`, "-f"] });
        await run("resolvconf", ["-a", `tun.${name}`, "-m", "0", "-x"], text);
        undo.push(() => run("resolvconf", ["-d", `tun.${name}`, "-f"], null));
      } else {
        throw new Error(MISSING_RESOLVCONF);
      }
    }

    const table = iface.table ?? { kind: "auto" };
    if (table.kind !== "off") {
      // Most specific first, as wg-quick does.
      const prefixes = [...new Set(opts.allowedIps)].sort((a, b) => prefixLength(b) - prefixLength(a));
      for (const p of prefixes) {
        if (table.kind === "id" || table.kind === "name") {
          await ip([family(p), "route", "add", p, "dev", name, "table", table.kind === "id" ? String(table.id) : table.name]);
        } else if (prefixLength(p) === 0) {
          undo.push(...(await addDefaultRoute(p, opts, ip)));
        } else {
          try {
            await ip([family(p), "route", "add", p, "dev", name]);
          } catch (err) {
            // An existing identical route (e.g. from the address's own subnet) is fine.
            if (!(err instanceof IpCommandError && /File exists/u.test(err.stderr))) throw err;
          }
        }
      }
    }
    return teardown;
  } catch (err) {
    await teardown();
    throw err;
  }
}

const defaultTables = new Map<string, number>();

/**
 * The routes of one table. A table that never held a route does not exist yet, and iproute2
 * then fails with "FIB table does not exist" (exit 2): that means empty, as wg-quick reads it.
 */
async function routesInTable(ip: (args: string[]) => Promise<string>, f: "-4" | "-6", table: number): Promise<string> {
  try {
    return await ip([f, "route", "show", "table", String(table)]);
  } catch (err) {
    if (err instanceof IpCommandError && /FIB table does not exist/u.test(err.stderr)) return "";
    throw err;
  }
}

/**
 * A /0 prefix: route everything through the tunnel except the tunnel's own packets, which carry
 * the device's fwmark. Returns the undo steps.
 */
async function addDefaultRoute(
  prefix: string,
  opts: NetworkOptions,
  ip: (args: string[]) => Promise<string>,
): Promise<(() => Promise<void>)[]> {
  const f = family(prefix);
  let table = opts.fwmark || defaultTables.get(opts.name) || 0;
  if (table === 0) {
    // The first table number from 51820 that has no routes in either family.
    for (table = 51820; ; table++) {
      const v4 = await routesInTable(ip, "-4", table);
      const v6 = await routesInTable(ip, "-6", table);
      if (v4.trim() === "" && v6.trim() === "") break;
    }
    await opts.setFwmark(table);
  }
  defaultTables.set(opts.name, table);
  const t = String(table);
  await ip([f, "route", "add", prefix, "dev", opts.name, "table", t]);
  // Noted before each is made: a crash in between leaves at most a harmless failing delete.
  const ns = opts.netns === undefined ? [] : ["-n", opts.netns];
  opts.journal?.add({ cmd: "ip", args: [...ns, f, "rule", "delete", "table", t] });
  await ip([f, "rule", "add", "not", "fwmark", t, "table", t]);
  opts.journal?.add({ cmd: "ip", args: [...ns, f, "rule", "delete", "table", "main", "suppress_prefixlength", "0"] });
  await ip([f, "rule", "add", "table", "main", "suppress_prefixlength", "0"]);
  if (f === "-4") {
    // Lets replies to the marked packets pass reverse-path filtering.
    try {
      writeFileSync("/proc/sys/net/ipv4/conf/all/src_valid_mark", "1");
    } catch {
      opts.log.warn("cannot set net.ipv4.conf.all.src_valid_mark=1");
    }
  }
  return [
    async () => void (await ip([f, "rule", "delete", "table", t])),
    async () => void (await ip([f, "rule", "delete", "table", "main", "suppress_prefixlength", "0"])),
  ];
}
