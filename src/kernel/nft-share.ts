/**
 * Port sharing with nftables: ICE keeps its own sockets, and one table `inet tswg-<ifname>`
 * moves WireGuard packets between the ICE port and the device's port, statelessly.
 *
 * Flow, peer to device: 1. a datagram arrives for a peer's ICE port; 2. chain `ingress`
 * (prerouting, raw priority: `notrack` is only allowed there and in output) lets STUN (magic
 * cookie at UDP payload offset 4, `@th,96,32`) through to ICE and rewrites the destination port of
 * everything else to the device's port, untracked. Device to peer: 1. the device sends from its
 * port to the peer's remote candidate; 2. chain `egress` (output, raw) rewrites the source port to
 * the peer's ICE port, so the peer's NAT and firewall see the flow ICE opened.
 *
 * The whole table is replaced in one `nft -f` transaction on every change ("add table; delete
 * table; table { ... }"), which also removes a table left behind by a crashed run.
 */
import { isIPv6 } from "node:net";
import type { SelectedPair } from "../ice/agent.js";
import type { PortShare } from "./port-share.js";
import { mustRunTool, runTool } from "./tool.js";

export interface NftShareOptions {
  ifname: string;
  listenPort: number;
  nft?: string;
}

const STUN_COOKIE = "0x2112a442";

/** The table's name for an interface. */
export function nftTableName(ifname: string): string {
  return `tswg-${ifname}`;
}

/** Null when nft can change this host's ruleset; otherwise why not. */
export async function nftUnavailableReason(nft = "nft"): Promise<string | null> {
  const r = await runTool([nft, "list", "tables"]);
  if (r.code === 0) return null;
  return r.code === null ? `${nft} is not installed` : `${nft} list tables: ${r.stderr.trim()}`;
}

/** The ruleset for the attached peers (ICE port -> remote candidate), as nft -f input. */
export function nftRuleset(ifname: string, listenPort: number, peers: ReadonlyMap<string, SelectedPair>): string {
  const table = `inet ${nftTableName(ifname)}`;
  const lines = [`add table ${table}`, `delete table ${table}`];
  if (peers.size === 0) return lines.join("\n") + "\n";
  const ingress: string[] = [];
  const egress: string[] = [];
  const icePorts = new Set<number>();
  for (const [peer, pair] of peers) {
    const tag = `comment "${peer.replace(/[^A-Za-z0-9+/=]/g, "")}"`;
    if (!icePorts.has(pair.local.port)) {
      icePorts.add(pair.local.port);
      ingress.push(`fib daddr type local udp dport ${pair.local.port} @th,96,32 != ${STUN_COOKIE} counter notrack udp dport set ${listenPort} ${tag}`);
    }
    const family = isIPv6(pair.remote.address) ? "ip6" : "ip";
    egress.push(`${family} daddr ${pair.remote.address} udp sport ${listenPort} udp dport ${pair.remote.port} counter notrack udp sport set ${pair.local.port} ${tag}`);
  }
  lines.push(`table ${table} {`);
  lines.push("  chain ingress {", "    type filter hook prerouting priority raw; policy accept;", ...ingress.map((r) => `    ${r}`), "  }");
  lines.push("  chain egress {", "    type filter hook output priority raw; policy accept;", ...egress.map((r) => `    ${r}`), "  }");
  lines.push("}");
  return lines.join("\n") + "\n";
}

export class NftShare implements PortShare {
  readonly mode = "nftables";
  private readonly peers = new Map<string, SelectedPair>();
  private readonly nft: string;
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly opts: NftShareOptions) {
    this.nft = opts.nft ?? "nft";
  }

  /** Removes a table a previous run left behind. */
  async cleanStale(): Promise<void> {
    await this.apply();
  }

  async attach(peer: string, pair: SelectedPair): Promise<string> {
    this.peers.set(peer, pair);
    await this.apply();
    const a = pair.remote.address;
    return isIPv6(a) ? `[${a}]:${pair.remote.port}` : `${a}:${pair.remote.port}`;
  }

  async detach(peer: string): Promise<void> {
    if (!this.peers.delete(peer)) return;
    await this.apply();
  }

  async close(): Promise<void> {
    this.peers.clear();
    await this.apply();
  }

  /** Packets each rule has moved so far, by direction (for status and tests). */
  async counters(): Promise<{ ingress: number; egress: number }> {
    const r = await runTool([this.nft, "-j", "list", "table", "inet", nftTableName(this.opts.ifname)]);
    const out = { ingress: 0, egress: 0 };
    if (r.code !== 0) return out;
    const doc = JSON.parse(r.stdout) as { nftables?: { rule?: { chain: string; expr: { counter?: { packets: number } }[] } }[] };
    for (const item of doc.nftables ?? []) {
      const rule = item.rule;
      if (rule === undefined) continue;
      const packets = rule.expr.reduce((n, e) => n + (e.counter?.packets ?? 0), 0);
      if (rule.chain === "ingress") out.ingress += packets;
      else if (rule.chain === "egress") out.egress += packets;
    }
    return out;
  }

  /** Replaces the table with one for the current peers; changes are applied one at a time, in order. */
  private apply(): Promise<void> {
    const ruleset = nftRuleset(this.opts.ifname, this.opts.listenPort, this.peers);
    const next = this.chain.then(() => mustRunTool([this.nft, "-f", "-"], ruleset).then(() => undefined));
    this.chain = next.catch(() => undefined);
    return next;
  }
}
