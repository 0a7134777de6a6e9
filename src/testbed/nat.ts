/**
 * NAT gateways for test topologies: nftables rules that make a namespace with a "wan" and a "lan"
 * side behave like a home router, with a choice of port-mapping behaviour (RFC 4787 terms).
 */
import type { Host } from "./netns.js";

/**
 * - `endpoint-independent`: one internal address:port keeps one external address:port for every
 *   destination (and the port is kept when it is free), so a STUN server's answer is valid for
 *   any peer — hole punching works.
 * - `symmetric`: every new destination gets its own random external port, so the port a STUN
 *   server sees is useless to a peer — only a relay gets through two of them.
 *
 * Filtering is the same for both: only replies from the address:port a mapping was made for get
 * in (address- and port-dependent filtering), and unsolicited traffic is silently dropped.
 */
export type NatMapping = "endpoint-independent" | "symmetric";

export const NAT_MAPPINGS: readonly NatMapping[] = ["endpoint-independent", "symmetric"];

export interface NatRules {
  /** The interface towards the outside, whose address the inside is hidden behind. */
  wanIf: string;
  mapping: NatMapping;
  /**
   * External ports to map to (inclusive). Without it the kernel keeps a free source port; with
   * it every new mapping takes a port from this range.
   */
  ports?: readonly [number, number];
}

/** The nftables ruleset (for `nft -f -`) of a NAT gateway. */
export function natRuleset(opts: NatRules): string {
  if (!NAT_MAPPINGS.includes(opts.mapping)) throw new Error(`unknown NAT mapping "${String(opts.mapping)}"; use ${NAT_MAPPINGS.join(" or ")}`);
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(opts.wanIf)) throw new Error(`bad interface name "${opts.wanIf}"`);
  const wan = JSON.stringify(opts.wanIf);
  return `table ip tswgt_nat {
\tchain postrouting {
\t\ttype nat hook postrouting priority srcnat; policy accept;
${masqueradeRules(opts)
  .map((r) => `\t\t${r}\n`)
  .join("")}\t}
}
table inet tswgt_nat_filter {
\tchain input {
\t\ttype filter hook input priority filter; policy accept;
\t\tiifname ${wan} ct state established,related accept
\t\tiifname ${wan} meta l4proto { tcp, udp } drop
\t}
\tchain forward {
\t\ttype filter hook forward priority filter; policy accept;
\t\tiifname ${wan} ct state established,related accept
\t\tiifname ${wan} drop
\t}
}
`;
}

/** The masquerade rules of the postrouting chain. */
function masqueradeRules(opts: NatRules): string[] {
  // Linux keeps the source port when it is free and, because conntrack entries also differ by
  // destination, reuses it for every destination: endpoint-independent. `random` derives the port
  // from a keyed hash that includes the destination instead: a new port per destination.
  const wan = JSON.stringify(opts.wanIf);
  const flags = opts.mapping === "symmetric" ? "random" : "persistent";
  const all = `oifname ${wan} masquerade ${flags}`;
  if (opts.ports === undefined) return [all];
  const [lo, hi] = opts.ports;
  if (!Number.isInteger(lo) || !Number.isInteger(hi) || lo < 1 || hi > 65535 || lo > hi) throw new Error(`bad NAT port range ${lo}-${hi}`);
  // A port range needs a protocol with ports; the rest (ICMP) is masqueraded as before.
  return [`oifname ${wan} meta l4proto { tcp, udp } masquerade to :${lo}-${hi} ${flags}`, all];
}

/**
 * Rebinds every mapping of the NAT gateway `host`, as a home router does after a reboot or when
 * its mappings time out: new mappings take ports from `opts.ports` (so they differ from the old
 * ones), and the connection-tracking table, which holds the current mappings, is flushed.
 */
export async function rebindNat(host: Host, opts: NatRules & { ports: readonly [number, number] }): Promise<void> {
  const rules = masqueradeRules(opts).map((r) => `add rule ip tswgt_nat postrouting ${r}\n`);
  await host.exec(["nft", "-f", "-"], { input: `flush chain ip tswgt_nat postrouting\n${rules.join("")}` });
  await host.exec(["conntrack", "-F"]);
}

/** Turns `host` into a NAT gateway (forwarding on, rules loaded). */
export async function configureNat(host: Host, opts: NatRules): Promise<void> {
  const rules = natRuleset(opts);
  await host.sysctl("net.ipv4.ip_forward", 1);
  await host.exec(["nft", "-f", "-"], { input: rules });
}
