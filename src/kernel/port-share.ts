/**
 * How ICE shares a WireGuard device's UDP port with the device. Four ways, one interface:
 *
 * - `proxy`: per peer a loopback socket connected to the device's port; the device's endpoint for
 *   the peer is that socket, and datagrams are copied to and from the peer's ICE path. Works for
 *   every pair, relay included, and for any WireGuard (kernel or userspace).
 * - `raw`: a raw socket with a BPF filter takes STUN off the device's own port; WireGuard packets
 *   never leave the kernel.
 * - `nftables` / `iptables`: ICE keeps its own sockets; the firewall moves non-STUN datagrams
 *   between the ICE port and the device's port, so WireGuard packets stay in the kernel.
 *
 * The modes that keep packets in the kernel cannot use a relay pair (the relay wraps each
 * datagram in TURN): such a peer falls back to `proxy`.
 */
import type { SelectedPair } from "../ice/agent.js";

export const SHARE_MODES = ["proxy", "raw", "nftables", "iptables"] as const;
export type ShareMode = (typeof SHARE_MODES)[number];
export type ShareModeSetting = ShareMode | "auto";

export class ShareModeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ShareModeError";
  }
}

export function parseShareMode(text: string): ShareModeSetting {
  const t = text.trim().toLowerCase();
  if (t === "auto" || (SHARE_MODES as readonly string[]).includes(t)) return t as ShareModeSetting;
  throw new ShareModeError(`unknown port-sharing mode "${text}" (expected auto, ${SHARE_MODES.join(", ")})`);
}

/** One way of sharing the port, for any number of peers. */
export interface PortShare {
  readonly mode: ShareMode;
  /**
   * Makes `peer`'s current pair carry WireGuard packets; returns the endpoint the WireGuard
   * device must use for the peer ("a.b.c.d:port" or "[v6]:port"). Called again when the pair changes.
   */
  attach(peer: string, pair: SelectedPair): Promise<string>;
  /** Stops carrying the peer's packets (pair lost, peer removed, or moved to another mode). */
  detach(peer: string): Promise<void>;
  /** Removes everything this share installed or opened. */
  close(): Promise<void>;
}

/** What a host offers, probed once at start. */
export interface ShareCapabilities {
  nftables: string | null;
  iptables: string | null;
  raw: string | null;
}

/**
 * The mode for one peer's pair, and why. `setting` is what the configuration asked for;
 * `unavailable` maps each mode to the reason it cannot be used here (null = usable).
 * `devicePort` is the WireGuard device's port: raw sharing carries only pairs whose local
 * candidate is on it (ICE gathered on the device's port through the raw socket).
 *
 * auto: raw when raw sockets could be opened (nothing is written to the firewall, nothing can be
 * left behind by a crash, and ICE's candidates are the device's port itself); else nftables
 * (stateless rewrite); else iptables (conntrack); else the proxy. Relay pairs: always the proxy.
 */
export function chooseShareMode(setting: ShareModeSetting, pair: SelectedPair, unavailable: ShareCapabilities, devicePort?: number): { mode: ShareMode; why: string } {
  if (setting === "proxy") return { mode: "proxy", why: "configured" };
  if (pair.local.type === "relay" || pair.remote.type === "relay") {
    return { mode: "proxy", why: "the pair goes through a TURN relay, which only the proxy can carry" };
  }
  const rawMisses = unavailable.raw ?? (devicePort !== undefined && pair.local.port !== devicePort ? `the local candidate's port ${pair.local.port} is not the device's port ${devicePort}` : null);
  if (setting === "raw") {
    return rawMisses === null ? { mode: "raw", why: "configured" } : { mode: "proxy", why: `raw is not usable here (${rawMisses})` };
  }
  if (setting !== "auto") {
    const reason = unavailable[setting];
    if (reason === null) return { mode: setting, why: "configured" };
    return { mode: "proxy", why: `${setting} is not usable here (${reason})` };
  }
  // auto: keep packets in the kernel where the host allows it.
  if (rawMisses === null) return { mode: "raw", why: `auto: direct ${pair.local.type} pair on the device's port, raw sockets usable` };
  for (const m of ["nftables", "iptables"] as const) {
    if (unavailable[m] === null) return { mode: m, why: `auto: direct ${pair.local.type} pair and ${m} is usable` };
  }
  return { mode: "proxy", why: `auto: neither raw sockets (${unavailable.raw}), nftables (${unavailable.nftables}) nor iptables (${unavailable.iptables}) are usable` };
}
