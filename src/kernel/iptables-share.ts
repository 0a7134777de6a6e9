/**
 * Port sharing with iptables, for hosts without nft. iptables has no stateless port rewrite, so
 * this uses connection tracking: `nat` REDIRECTs non-STUN datagrams from the ICE port to the
 * device's port, and SNATs the device's datagrams to a remote candidate back to the ICE port;
 * whichever side sends first, the conntrack entry maps the other direction.
 *
 * Flow, peer to device: 1. raw PREROUTING: STUN to the ICE port (u32 match on the magic cookie,
 * IHL-aware) is not tracked, so it skips nat and reaches ICE; 2. nat PREROUTING: everything else
 * to the ICE port is redirected to the device's port. Device to peer: 1. raw OUTPUT: whatever ICE
 * itself sends from its port is not tracked, so its checks never pin the tuple WireGuard needs;
 * 2. nat POSTROUTING: the device's datagrams to the remote candidate get the ICE port as source.
 *
 * Rules live in chains of our own (TSWG-<ifname>-...), written with one `iptables-restore
 * --noflush` (one transaction per table); the built-in chains only get a jump. IPv4 only.
 */
import { isIPv4 } from "node:net";
import type { SelectedPair } from "../ice/agent.js";
import type { PortShare } from "./port-share.js";
import { mustRunTool, runTool } from "./tool.js";

export interface IptablesShareOptions {
  ifname: string;
  listenPort: number;
  iptables?: string;
  conntrack?: string;
}

const STUN_U32 = "0>>22&0x3C@12=0x2112A442";

export function iptablesChains(ifname: string): { table: "raw" | "nat"; builtin: string; chain: string }[] {
  const c = `TSWG-${ifname}`;
  return [
    { table: "raw", builtin: "PREROUTING", chain: `${c}-pre` },
    { table: "raw", builtin: "OUTPUT", chain: `${c}-out` },
    { table: "nat", builtin: "PREROUTING", chain: `${c}-pre` },
    { table: "nat", builtin: "POSTROUTING", chain: `${c}-post` },
  ];
}

/** Null when iptables can change this host's rules (with the u32 match); otherwise why not. */
export async function iptablesUnavailableReason(iptables = "iptables"): Promise<string | null> {
  const r = await runTool([iptables, "-t", "nat", "-S", "PREROUTING"]);
  if (r.code === 0) return null;
  return r.code === null ? `${iptables} is not installed` : `${iptables} -t nat: ${r.stderr.trim()}`;
}

/** iptables-restore --noflush input that (re)writes our chains for the attached peers. */
export function iptablesRestoreInput(ifname: string, listenPort: number, peers: ReadonlyMap<string, SelectedPair>): string {
  const c = `TSWG-${ifname}`;
  const icePorts = [...new Set([...peers.values()].map((p) => p.local.port))];
  const out = ["*raw", `:${c}-pre - [0:0]`, `:${c}-out - [0:0]`];
  for (const port of icePorts) {
    out.push(`-A ${c}-pre -p udp --dport ${port} -m u32 --u32 "${STUN_U32}" -j CT --notrack`);
    out.push(`-A ${c}-out -p udp --sport ${port} -j CT --notrack`);
  }
  out.push("COMMIT", "*nat", `:${c}-pre - [0:0]`, `:${c}-post - [0:0]`);
  for (const port of icePorts) out.push(`-A ${c}-pre -p udp --dport ${port} -m addrtype --dst-type LOCAL -j REDIRECT --to-ports ${listenPort}`);
  for (const pair of peers.values()) {
    out.push(`-A ${c}-post -p udp --sport ${listenPort} -d ${pair.remote.address} --dport ${pair.remote.port} -j SNAT --to-source :${pair.local.port}`);
  }
  out.push("COMMIT");
  return out.join("\n") + "\n";
}

export class IptablesShare implements PortShare {
  readonly mode = "iptables";
  private readonly peers = new Map<string, SelectedPair>();
  private readonly iptables: string;
  private readonly conntrack: string;
  private chain: Promise<void> = Promise.resolve();
  private installed = false;
  /** ICE ports whose earlier conntrack entries were cleared. */
  private readonly cleared = new Set<number>();

  constructor(private readonly opts: IptablesShareOptions) {
    this.iptables = opts.iptables ?? "iptables";
    this.conntrack = opts.conntrack ?? "conntrack";
  }

  /** Removes chains and jumps a previous run left behind. */
  cleanStale(): Promise<void> {
    return this.serial(() => this.remove());
  }

  async attach(peer: string, pair: SelectedPair): Promise<string> {
    if (!isIPv4(pair.remote.address)) throw new Error(`iptables mode carries IPv4 pairs only (remote ${pair.remote.address})`);
    this.peers.set(peer, pair);
    await this.serial(() => this.write());
    return `${pair.remote.address}:${pair.remote.port}`;
  }

  async detach(peer: string): Promise<void> {
    if (!this.peers.delete(peer)) return;
    await this.serial(() => (this.peers.size === 0 ? this.remove() : this.write()));
  }

  async close(): Promise<void> {
    this.peers.clear();
    await this.serial(() => this.remove());
  }

  private serial(f: () => Promise<void>): Promise<void> {
    const next = this.chain.then(f);
    this.chain = next.catch(() => undefined);
    return next;
  }

  private async write(): Promise<void> {
    await mustRunTool([`${this.iptables}-restore`, "--noflush"], iptablesRestoreInput(this.opts.ifname, this.opts.listenPort, this.peers));
    if (!this.installed) {
      for (const { table, builtin, chain } of iptablesChains(this.opts.ifname)) {
        const present = await runTool([this.iptables, "-t", table, "-C", builtin, "-j", chain]);
        if (present.code !== 0) await mustRunTool([this.iptables, "-t", table, "-I", builtin, "-j", chain]);
      }
      this.installed = true;
    }
    // ICE's checks ran before these rules existed, so conntrack already holds entries for the ICE
    // port's tuples; WireGuard's packets would match them (and bypass the REDIRECT, or be SNATed
    // to another port). Clear them once per new ICE port. Without the conntrack tool this is skipped.
    for (const pair of this.peers.values()) {
      const port = pair.local.port;
      if (this.cleared.has(port)) continue;
      this.cleared.add(port);
      await runTool([this.conntrack, "-D", "-p", "udp", "--orig-port-src", String(port)]);
      await runTool([this.conntrack, "-D", "-p", "udp", "--orig-port-dst", String(port)]);
    }
  }

  private async remove(): Promise<void> {
    for (const { table, builtin, chain } of iptablesChains(this.opts.ifname)) {
      // Every jump (a crash may have left several), then the chain itself.
      for (let i = 0; i < 16; i++) if ((await runTool([this.iptables, "-t", table, "-D", builtin, "-j", chain])).code !== 0) break;
      await runTool([this.iptables, "-t", table, "-F", chain]);
      await runTool([this.iptables, "-t", table, "-X", chain]);
    }
    this.installed = false;
    this.cleared.clear();
  }
}
