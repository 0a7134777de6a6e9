/**
 * Firewalls for test topologies: nftables tables that drop UDP and/or TCP, or traffic with
 * particular addresses, with exceptions — to model networks where only a relay gets through, or
 * to cut a path in the middle of a test and restore it later.
 */
import { normalizeCidr, parseCidr } from "../allowedips/prefix.js";
import type { Host } from "./netns.js";

/** Traffic to an address (optionally a port and protocol) — and the replies coming back from it. */
export interface FirewallMatch {
  /** An IPv4 or IPv6 address or prefix: "198.51.100.7", "10.2.0.0/24". */
  to: string;
  /** Only this port (destination port going out, source port coming back). */
  port?: number;
  /** Only this protocol. Default: both. */
  proto?: "udp" | "tcp";
}

export interface FirewallOptions {
  /** Drop all UDP (IPv4 and IPv6) other than `except`. */
  dropUdp?: boolean;
  /** Drop all TCP other than `except`. */
  dropTcp?: boolean;
  /** Drop any traffic to or from these (e.g. the other site's public address), unless in `except`. */
  drop?: FirewallMatch[];
  /** Always let these through, whatever else this firewall drops. */
  except?: FirewallMatch[];
}

/**
 * Where the rules apply: `inet` on a host, router or NAT gateway (what it sends, receives and
 * forwards); `bridge` on the namespace that holds a segment's bridge (what crosses the segment).
 */
export type FirewallFamily = "inet" | "bridge";

/** The nftables ruleset (for `nft -f -`) of one firewall, as table `table`. */
export function firewallRuleset(table: string, family: FirewallFamily, opts: FirewallOptions): string {
  if (!/^[a-z][a-z0-9_]{0,30}$/.test(table)) throw new Error(`bad nftables table name "${table}"`);
  const except = (opts.except ?? []).map((m, i) => matchRules(m, `except[${i}]`));
  const drop = (opts.drop ?? []).map((m, i) => matchRules(m, `drop[${i}]`));
  if (!opts.dropUdp && !opts.dropTcp && drop.length === 0) {
    throw new Error("firewall would drop nothing: set dropUdp, dropTcp or drop");
  }
  const rules: string[] = [];
  for (const [out, back] of except) rules.push(`${out} accept`, `${back} accept`);
  for (const [out, back] of drop) rules.push(`${out} drop`, `${back} drop`);
  if (opts.dropUdp) rules.push("meta l4proto udp drop");
  if (opts.dropTcp) rules.push("meta l4proto tcp drop");
  const hooks = family === "bridge" ? ["forward"] : ["input", "output", "forward"];
  const chains = hooks.map(
    (hook) => `\tchain ${hook} {\n\t\ttype filter hook ${hook} priority filter; policy accept;\n${rules.map((r) => `\t\t${r}\n`).join("")}\t}\n`,
  );
  return `table ${family} ${table} {\n${chains.join("")}}\n`;
}

/** The two directions of a match: [to it, back from it], as nftables expressions. */
function matchRules(m: FirewallMatch, what: string): [string, string] {
  if (m === null || typeof m !== "object" || typeof m.to !== "string") throw new Error(`firewall ${what}: needs "to", an address or prefix`);
  let cidr: string;
  let family: 4 | 6;
  try {
    family = parseCidr(m.to).family;
    cidr = normalizeCidr(m.to);
  } catch (e) {
    throw new Error(`firewall ${what}: ${(e as Error).message}`);
  }
  if (m.port !== undefined && (!Number.isInteger(m.port) || m.port < 1 || m.port > 65535)) {
    throw new Error(`firewall ${what}: port ${String(m.port)} is not 1-65535`);
  }
  if (m.proto !== undefined && m.proto !== "udp" && m.proto !== "tcp") throw new Error(`firewall ${what}: proto must be "udp" or "tcp"`);
  const ip = family === 4 ? "ip" : "ip6";
  const l4 = m.proto !== undefined ? ` meta l4proto ${m.proto}` : m.port !== undefined ? " meta l4proto { tcp, udp }" : "";
  const dport = m.port !== undefined ? ` th dport ${m.port}` : "";
  const sport = m.port !== undefined ? ` th sport ${m.port}` : "";
  return [`${ip} daddr ${cidr}${l4}${dport}`, `${ip} saddr ${cidr}${l4}${sport}`];
}

/** A firewall in force; {@link remove} lifts it (e.g. to restore a path cut mid-test). */
export class Firewall {
  private removed = false;

  constructor(
    /** The namespace the rules live in. */
    readonly host: Host,
    readonly family: FirewallFamily,
    /** The nftables table, e.g. `tswgt_fw1`. */
    readonly table: string,
    /** The ruleset as loaded, for logs. */
    readonly ruleset: string,
  ) {}

  get active(): boolean {
    return !this.removed;
  }

  /** Deletes the table; traffic flows as before. Idempotent. */
  async remove(): Promise<void> {
    if (this.removed) return;
    await this.host.exec(["nft", "delete", "table", this.family, this.table]);
    this.removed = true;
  }
}

/** Loads a firewall into `host` as a new table. */
export async function installFirewall(host: Host, family: FirewallFamily, table: string, opts: FirewallOptions): Promise<Firewall> {
  const ruleset = firewallRuleset(table, family, opts);
  await host.exec(["nft", "-f", "-"], { input: ruleset });
  return new Firewall(host, family, table, ruleset);
}
