/**
 * Path MTU per peer endpoint: the largest outer IP packet its current path carries, and how it
 * was learnt.
 *
 * 1. A reader asks the kernel (the addon's `pathMtu`: a connected probe socket, IP_MTU /
 *    IPV6_MTU), which has applied ICMP "fragmentation needed" / "packet too big" from the
 *    underlay to its route cache. Entries are re-read after RECHECK_MS. Compared with the MTU
 *    of the interface the path leaves by, the value says how it was learnt: equal, the
 *    interface's own ("interface"); lower, lowered by ICMP from the path ("icmp").
 * 2. A prober (DPLPMTUD on ICE paths) may `set` a confirmed size; it stands until the kernel
 *    reports something smaller for the same destination.
 * 3. `innerMtu` turns it into the largest inner packet: minus outer IP/UDP and the 32 bytes of
 *    WireGuard's transport header and tag, rounded down to the 16-byte padding step.
 */
import type { Endpoint } from "../bind/bind.js";
import { carrierOf, isAddressEndpoint } from "../bind/capabilities.js";

/**
 * How a path MTU was learnt: the interface's own MTU, lowered by ICMP from the path (the
 * kernel's route cache), the kernel's value with no interface to compare with, a prober's
 * confirmed size, or a TCP path (the outer TCP segments itself: no datagram limit).
 */
export type PathMtuSource = "interface" | "icmp" | "kernel" | "probe" | "tcp" | "unknown";

export interface PathMtu {
  /** Largest outer IP packet, header included; 0 when unknown. */
  mtu: number;
  source: PathMtuSource;
}

/** The kernel's path MTU towards an endpoint and the MTU of the interface it leaves by (0: cannot tell). */
export interface KernelPathMtu {
  mtu: number;
  interfaceMtu: number;
}

export type PathMtuReader = (endpoint: Endpoint) => KernelPathMtu;

/** How a kernel reading was learnt. */
function kernelSource(k: KernelPathMtu): PathMtuSource {
  if (k.mtu === 0) return "unknown";
  if (k.interfaceMtu === 0) return "kernel";
  return k.mtu < k.interfaceMtu ? "icmp" : "interface";
}

export const RECHECK_MS = 1000;
const MAX_ENTRIES = 1024;

/** The largest inner packet that fits an outer path MTU (0: unknown or too small). */
export function innerMtu(pathMtu: number, outerFamily: 4 | 6): number {
  const overhead = (outerFamily === 4 ? 28 : 48) + 32;
  return pathMtu > overhead + 16 ? (pathMtu - overhead) & ~15 : 0;
}

interface Entry extends PathMtu {
  checked: number;
}

export class PathMtuTable {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly reader: PathMtuReader | null,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** The path MTU towards `endpoint`, re-read from the kernel when stale. */
  get(endpoint: Endpoint): PathMtu {
    const t = this.now();
    let e = this.entries.get(endpoint.key);
    if (e !== undefined && t - e.checked < RECHECK_MS) return e;
    const reading = this.reader === null ? { mtu: 0, interfaceMtu: 0 } : this.reader(endpoint);
    const kernel = reading.mtu;
    if (e === undefined) {
      if (this.entries.size >= MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
      e = { mtu: 0, source: "unknown", checked: t };
      this.entries.set(endpoint.key, e);
    }
    e.checked = t;
    if (e.source === "probe" && e.mtu > 0 && (kernel === 0 || e.mtu <= kernel)) return e;
    e.mtu = kernel;
    e.source = kernelSource(reading);
    return e;
  }

  /** A size confirmed by a prober for `endpoint`. */
  set(endpoint: Endpoint, mtu: number, source: PathMtuSource = "probe"): void {
    this.entries.set(endpoint.key, { mtu, source, checked: this.now() });
  }
}

interface AddressedEndpoint {
  addressBytes(): Uint8Array;
  port: number;
}

function addressed(endpoint: Endpoint): AddressedEndpoint | null {
  const e = endpoint as Partial<AddressedEndpoint>;
  return typeof e.addressBytes === "function" && typeof e.port === "number" ? (e as AddressedEndpoint) : null;
}

/** The outer family of an endpoint with an IP address (UDP), else null (no kernel path to ask). */
export function outerFamily(endpoint: Endpoint): 4 | 6 | null {
  const e = addressed(endpoint);
  return e === null ? null : e.addressBytes().length === 4 ? 4 : 6;
}

/** ChannelData header a TURN server strips from each relayed datagram (RFC 8656). */
const CHANNEL_DATA_HEADER = 4;

/**
 * Where an endpoint's datagrams really go (an ICE path's carrier: the remote candidate, or the
 * TURN server on a relayed path) and the bytes a TURN channel adds in front; null without an IP
 * destination (TCP, in-memory).
 */
function datagramTarget(endpoint: Endpoint): { target: Endpoint; family: 4 | 6; overhead: number } | null {
  const target = carrierOf(endpoint);
  const family = target === null ? null : outerFamily(target);
  if (target === null || family === null) return null;
  const channel = isAddressEndpoint(target) ? (target.channel ?? 0) : 0;
  return { target, family, overhead: channel !== 0 ? CHANNEL_DATA_HEADER : 0 };
}

/**
 * What `tswg show` reports for a peer's endpoint: the path MTU towards where its datagrams go
 * (for a relayed ICE path, the TURN server); for a TCP (UoTLV) path no datagram limit, as the
 * outer TCP segments itself; null when unknown.
 */
export function endpointPathMtu(table: PathMtuTable, endpoint: Endpoint): PathMtu | null {
  if ((carrierOf(endpoint) ?? endpoint).bind.kind === "tcp") return { mtu: 0, source: "tcp" };
  const t = datagramTarget(endpoint);
  if (t === null) return null;
  const m = table.get(t.target);
  return m.mtu > 0 ? { mtu: m.mtu, source: m.source } : null;
}

/** The largest inner packet a peer's path carries, ChannelData accounted for; 0 when unknown. */
export function endpointInnerMtu(table: PathMtuTable, endpoint: Endpoint): number {
  const t = datagramTarget(endpoint);
  if (t === null) return 0;
  const mtu = table.get(t.target).mtu;
  return mtu > t.overhead ? innerMtu(mtu - t.overhead, t.family) : 0;
}

/** A reader through the addon's `pathMtu`, or null without the addon. */
export function kernelPathMtuReader(
  pathMtu: ((family: 4 | 6, address: Uint8Array, port: number, mark: number, detail: true) => KernelPathMtu) | undefined,
): PathMtuReader | null {
  if (typeof pathMtu !== "function") return null;
  return (endpoint) => {
    const e = addressed(endpoint);
    if (e === null) return { mtu: 0, interfaceMtu: 0 };
    const bytes = e.addressBytes();
    return pathMtu(bytes.length === 4 ? 4 : 6, bytes, e.port, 0, true);
  };
}
