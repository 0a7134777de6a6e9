/**
 * Path MTU per peer endpoint: the largest outer IP packet its current path carries, and how it
 * was learnt.
 *
 * 1. A reader asks the kernel (the addon's `pathMtu`: a connected probe socket, IP_MTU /
 *    IPV6_MTU), which has applied ICMP "fragmentation needed" / "packet too big" from the
 *    underlay to its route cache. Entries are re-read after RECHECK_MS.
 * 2. A prober (DPLPMTUD on ICE paths) may `set` a confirmed size; it stands until the kernel
 *    reports something smaller for the same destination.
 * 3. `innerMtu` turns it into the largest inner packet: minus outer IP/UDP and the 32 bytes of
 *    WireGuard's transport header and tag, rounded down to the 16-byte padding step.
 */
import type { Endpoint } from "../bind/bind.js";

export type PathMtuSource = "kernel" | "probe" | "unknown";

export interface PathMtu {
  /** Largest outer IP packet, header included; 0 when unknown. */
  mtu: number;
  source: PathMtuSource;
}

/** Reads the kernel's path MTU towards an endpoint; 0 when it cannot tell. */
export type PathMtuReader = (endpoint: Endpoint) => number;

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
    const kernel = this.reader === null ? 0 : this.reader(endpoint);
    if (e === undefined) {
      if (this.entries.size >= MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
      e = { mtu: 0, source: "unknown", checked: t };
      this.entries.set(endpoint.key, e);
    }
    e.checked = t;
    if (e.source === "probe" && e.mtu > 0 && (kernel === 0 || e.mtu <= kernel)) return e;
    e.mtu = kernel;
    e.source = kernel > 0 ? "kernel" : "unknown";
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

/** A reader through the addon's `pathMtu`, or null without the addon. */
export function kernelPathMtuReader(pathMtu: ((family: 4 | 6, address: Uint8Array, port: number, mark: number) => number) | undefined): PathMtuReader | null {
  if (typeof pathMtu !== "function") return null;
  return (endpoint) => {
    const e = addressed(endpoint);
    if (e === null) return 0;
    const bytes = e.addressBytes();
    return pathMtu(bytes.length === 4 ? 4 : 6, bytes, e.port, 0);
  };
}
