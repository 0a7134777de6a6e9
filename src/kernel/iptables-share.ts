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
 * --noflush` (one transaction per table); the built-in chains only get a jump.
 *
 * IPv6 pairs get the same chains through ip6tables. Its STUN match reads the cookie at a fixed
 * offset behind the 40-byte IPv6 header: a datagram with extension headers is taken for
 * WireGuard (redirected to the device, which drops it), so such a STUN check goes unanswered.
 */
import { isIPv6 } from "node:net";
import type { SelectedPair } from "../ice/agent.js";
import type { PortShare } from "./port-share.js";
import { mustRunTool, runTool } from "./tool.js";

export interface IptablesShareOptions {
  ifname: string;
  listenPort: number;
  iptables?: string;
  /** The IPv6 tool; default "ip6tables". */
  ip6tables?: string;
  conntrack?: string;
}

/** The STUN cookie at UDP payload offset 4: IPv4 reads the header length, IPv6 has 40 bytes. */
const STUN_U32 = { 4: "0>>22&0x3C@12=0x2112A442", 6: "52=0x2112A442" } as const;

type Family = 4 | 6;
const familyOf = (pair: SelectedPair): Family => (isIPv6(pair.remote.address) ? 6 : 4);

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

/**
 * iptables-restore --noflush input that (re)writes our chains for the attached peers of one
 * family (IPv4 for iptables-restore, IPv6 for ip6tables-restore). With `jumps` it also inserts
 * the built-in chains' jumps to ours (the first write; cleanStale has removed any old ones).
 */
export function iptablesRestoreInput(ifname: string, listenPort: number, allPeers: ReadonlyMap<string, SelectedPair>, family: Family = 4, jumps = false): string {
  const c = `TSWG-${ifname}`;
  const peers = [...allPeers.values()].filter((p) => familyOf(p) === family);
  const icePorts = [...new Set(peers.map((p) => p.local.port))];
  const jumpsTo = (table: "raw" | "nat"): string[] => (jumps ? iptablesChains(ifname).filter((j) => j.table === table).map((j) => `-I ${j.builtin} -j ${j.chain}`) : []);
  const out = ["*raw", `:${c}-pre - [0:0]`, `:${c}-out - [0:0]`];
  for (const port of icePorts) {
    out.push(`-A ${c}-pre -p udp --dport ${port} -m u32 --u32 "${STUN_U32[family]}" -j CT --notrack`);
    out.push(`-A ${c}-out -p udp --sport ${port} -j CT --notrack`);
  }
  out.push(...jumpsTo("raw"), "COMMIT", "*nat", `:${c}-pre - [0:0]`, `:${c}-post - [0:0]`);
  for (const port of icePorts) out.push(`-A ${c}-pre -p udp --dport ${port} -m addrtype --dst-type LOCAL -j REDIRECT --to-ports ${listenPort}`);
  for (const pair of peers) {
    out.push(`-A ${c}-post -p udp --sport ${listenPort} -d ${pair.remote.address} --dport ${pair.remote.port} -j SNAT --to-source :${pair.local.port}`);
  }
  out.push(...jumpsTo("nat"), "COMMIT");
  return out.join("\n") + "\n";
}

/** iptables-restore --noflush input that removes our chains and the one jump to each (all or nothing). */
export function iptablesRemoveInput(ifname: string): string {
  const out: string[] = [];
  for (const table of ["raw", "nat"] as const) {
    const chains = iptablesChains(ifname).filter((j) => j.table === table);
    out.push(`*${table}`, ...chains.map((j) => `:${j.chain} - [0:0]`), ...chains.map((j) => `-D ${j.builtin} -j ${j.chain}`), ...chains.map((j) => `-X ${j.chain}`), "COMMIT");
  }
  return out.join("\n") + "\n";
}

export class IptablesShare implements PortShare {
  readonly mode = "iptables";
  private readonly peers = new Map<string, SelectedPair>();
  private readonly tools: Record<Family, string>;
  private readonly conntrack: string;
  private chain: Promise<void> = Promise.resolve();
  private readonly installed = new Set<Family>();
  /** Families whose rules were ever written: what close() removes. */
  private readonly touched = new Set<Family>();
  /** ICE ports (per family) whose earlier conntrack entries were cleared. */
  private readonly cleared = new Set<string>();

  constructor(private readonly opts: IptablesShareOptions) {
    this.tools = { 4: opts.iptables ?? "iptables", 6: opts.ip6tables ?? "ip6tables" };
    this.conntrack = opts.conntrack ?? "conntrack";
  }

  /** Removes chains and jumps a previous run left behind (both families). */
  cleanStale(): Promise<void> {
    return this.serial(async () => {
      await this.remove(4);
      await this.remove(6);
    });
  }

  async attach(peer: string, pair: SelectedPair): Promise<string> {
    const family = familyOf(pair);
    const before = this.peers.get(peer);
    this.peers.set(peer, pair);
    try {
      await this.serial(async () => {
        await this.write(family);
        // A peer that moved from one family to the other leaves the old family's rules.
        if (before !== undefined && familyOf(before) !== family) await this.rewrite(familyOf(before));
      });
    } catch (e) {
      if (before === undefined) this.peers.delete(peer);
      else this.peers.set(peer, before);
      throw e;
    }
    return family === 6 ? `[${pair.remote.address}]:${pair.remote.port}` : `${pair.remote.address}:${pair.remote.port}`;
  }

  async detach(peer: string): Promise<void> {
    const pair = this.peers.get(peer);
    if (pair === undefined) return;
    this.peers.delete(peer);
    await this.serial(() => this.rewrite(familyOf(pair)));
  }

  async close(): Promise<void> {
    this.peers.clear();
    await this.serial(async () => {
      for (const f of [...this.touched]) await this.remove(f);
    });
  }

  private serial(f: () => Promise<void>): Promise<void> {
    const next = this.chain.then(f);
    this.chain = next.catch(() => undefined);
    return next;
  }

  private hasPeers(family: Family): boolean {
    return [...this.peers.values()].some((p) => familyOf(p) === family);
  }

  /** Whether any of our chains (or a jump to one) is in `tool`'s raw or nat table. */
  private async anyLeft(tool: string): Promise<boolean> {
    const prefix = `TSWG-${this.opts.ifname}-`;
    for (const table of ["raw", "nat"]) {
      const r = await runTool([tool, "-t", table, "-S"]);
      if (r.code === null) return false; // no such tool: nothing of ours can be there
      // Unreadable otherwise: assume there may be something, and let the removal try.
      if (r.code !== 0 || r.stdout.includes(prefix)) return true;
    }
    return false;
  }

  /** After a peer left `family`: rewrite its rules, or remove its chains when none is left. */
  private rewrite(family: Family): Promise<void> {
    return this.hasPeers(family) ? this.write(family) : this.remove(family);
  }

  // Each write and each removal is one iptables-restore run: under load (or emulation) every
  // process costs, and a pair change should not wait for a dozen of them.
  private async write(family: Family): Promise<void> {
    const tool = this.tools[family];
    this.touched.add(family);
    const first = !this.installed.has(family);
    await mustRunTool([`${tool}-restore`, "--noflush"], iptablesRestoreInput(this.opts.ifname, this.opts.listenPort, this.peers, family, first));
    this.installed.add(family);
    // ICE's checks ran before these rules existed, so conntrack already holds entries for the ICE
    // port's tuples; WireGuard's packets would match them (and bypass the REDIRECT, or be SNATed
    // to another port). Clear them once per new ICE port. Without the conntrack tool this is skipped.
    for (const pair of this.peers.values()) {
      if (familyOf(pair) !== family) continue;
      const port = pair.local.port;
      if (this.cleared.has(`${family}/${port}`)) continue;
      this.cleared.add(`${family}/${port}`);
      const f = family === 6 ? "ipv6" : "ipv4";
      await runTool([this.conntrack, "-D", "-f", f, "-p", "udp", "--orig-port-src", String(port)]);
      await runTool([this.conntrack, "-D", "-f", f, "-p", "udp", "--orig-port-dst", String(port)]);
    }
  }

  private async remove(family: Family): Promise<void> {
    const tool = this.tools[family];
    // What this run installed goes in one transaction; anything else (a crashed run's chains,
    // perhaps with several jumps, or a half-removed set) is looked for and removed piece by piece.
    const whole = this.installed.has(family) && (await runTool([`${tool}-restore`, "--noflush"], iptablesRemoveInput(this.opts.ifname))).code === 0;
    if (!whole && (await this.anyLeft(tool))) {
      for (const { table, builtin, chain } of iptablesChains(this.opts.ifname)) {
        for (let i = 0; i < 16; i++) if ((await runTool([tool, "-t", table, "-D", builtin, "-j", chain])).code !== 0) break;
        await runTool([tool, "-t", table, "-F", chain]);
        await runTool([tool, "-t", table, "-X", chain]);
      }
    }
    this.installed.delete(family);
    for (const k of [...this.cleared]) if (k.startsWith(`${family}/`)) this.cleared.delete(k);
  }
}
