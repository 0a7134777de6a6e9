/**
 * Is the kernel's WireGuard module usable here? Asking the kernel to create a `wireguard` link
 * with an impossible MTU loads the module when it is installed (the kernel asks modprobe for the
 * link kind) and then fails with EINVAL; without the module the answer is EOPNOTSUPP. The
 * generic netlink family is checked afterwards, so a module that did load is confirmed.
 */
import { loadKernelAddon } from "./addon.js";
import { NETLINK_GENERIC, NetlinkSocket } from "./netlink.js";
import { Rtnl } from "./rtnl.js";
import { resolveGenlFamily } from "./wireguard-genl.js";

export interface KernelModuleStatus {
  available: boolean;
  /** Why not, or how it was found. */
  reason: string;
}

export function detectKernelWireGuard(): KernelModuleStatus {
  const addon = loadKernelAddon();
  if (addon.addon === null) return { available: false, reason: addon.reason };
  let rtnl: Rtnl | null = null;
  let genl: NetlinkSocket | null = null;
  try {
    genl = new NetlinkSocket(NETLINK_GENERIC);
    if (resolveGenlFamily(genl, "wireguard") !== null) return { available: true, reason: "the wireguard generic netlink family is registered" };
    rtnl = new Rtnl();
    const probe = `tswgprobe${process.pid % 100000}`;
    try {
      rtnl.createLink(probe, "wireguard", 0x7fffffff);
      rtnl.deleteLink(probe); // an MTU this large should have been refused; do not keep the link
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === "EOPNOTSUPP") return { available: false, reason: "the kernel has no WireGuard module (creating a wireguard link: EOPNOTSUPP)" };
      if (code === "EPERM") return { available: false, reason: "not permitted to create network interfaces (needs CAP_NET_ADMIN)" };
      if (code !== "EINVAL") return { available: false, reason: `probing for the WireGuard module: ${(e as Error).message}` };
    }
    if (resolveGenlFamily(genl, "wireguard") !== null) return { available: true, reason: "the WireGuard module was loaded on demand" };
    return { available: false, reason: "the kernel accepts wireguard links but has no wireguard generic netlink family" };
  } catch (e) {
    return { available: false, reason: `probing for the WireGuard module: ${(e as Error).message}` };
  } finally {
    rtnl?.close();
    genl?.close();
  }
}
