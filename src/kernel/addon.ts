/**
 * Loads the tswg_kernel addon (native/src/kernel): netlink and raw UDP sockets for kernel mode.
 * Never throws: callers get the addon or the reason it is unavailable.
 */
import { createRequire } from "node:module";
import { builtAddonPath, loadAddonFile, type AddonLoad } from "../native/addon-file.js";

export interface KernelAddon {
  abiVersion: number;
  /** A bound netlink socket of `protocol` (NETLINK_ROUTE = 0, NETLINK_GENERIC = 16); returns the fd. */
  netlinkOpen(protocol: number): number;
  netlinkSend(fd: number, message: Uint8Array): void;
  /** One datagram, or null after `timeoutMs`. */
  netlinkRecv(fd: number, timeoutMs: number): Buffer | null;
  /** A non-blocking SOCK_RAW/IPPROTO_UDP socket with a classic-BPF filter (8-byte instructions). */
  rawOpen(family: 4 | 6, filter: Uint8Array): number;
  /** The next queued packet (IPv4: with its IP header; IPv6: from the UDP header), or null. */
  rawRecv(fd: number): { data: Buffer; address: string } | null;
  /** Sends a UDP header + payload to `address`; the kernel adds the IP header. */
  rawSend(fd: number, packet: Uint8Array, address: string): number;
  /** Calls `onReadable` on the event loop whenever `fd` has something queued (drain with rawRecv). */
  rawWatch(fd: number, onReadable: () => void): void;
  /** Stops the watch of `fd` (idempotent); call before close. */
  rawUnwatch(fd: number): void;
  close(fd: number): void;
}

export const KERNEL_ADDON_ABI = 2;
export const KERNEL_ADDON_PATH = builtAddonPath("tswg_kernel");

let cached: { addon: KernelAddon; reason: null } | { addon: null; reason: string } | undefined;

export function loadKernelAddon(): { addon: KernelAddon; reason: null } | { addon: null; reason: string } {
  if (cached !== undefined) return cached;
  if (process.platform !== "linux") return (cached = { addon: null, reason: "kernel mode needs Linux" });
  return (cached = loadAddonFile("tswg_kernel", loadKernelAddonFrom));
}

function loadKernelAddonFrom(path: string): AddonLoad<KernelAddon> {
  try {
    const exports = createRequire(import.meta.url)(path) as Partial<KernelAddon> | null;
    if (exports?.abiVersion !== KERNEL_ADDON_ABI) {
      return { addon: null, reason: `${path} has ABI ${String(exports?.abiVersion)}, expected ${KERNEL_ADDON_ABI} (run "npm rebuild")` };
    }
    return { addon: exports as KernelAddon, reason: null };
  } catch (e) {
    return { addon: null, reason: `kernel addon not loadable (${path}): ${(e as Error).message}` };
  }
}

/** The addon, or an Error saying why it is missing. */
export function requireKernelAddon(): KernelAddon {
  const r = loadKernelAddon();
  if (r.addon === null) throw new Error(r.reason);
  return r.addon;
}
