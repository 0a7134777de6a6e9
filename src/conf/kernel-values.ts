/**
 * Values of tswg's kernel-mode keys ([Interface] Kernel, PortShare, AttachTo), checked when the
 * file is read.
 */
import { ValueError } from "./values.js";

export type KernelSetting = "auto" | "on" | "off";
export type PortShareSetting = "auto" | "proxy" | "raw" | "nftables" | "iptables";

const PORT_SHARES: readonly PortShareSetting[] = ["auto", "proxy", "raw", "nftables", "iptables"];

export function parseKernelSetting(value: string): KernelSetting {
  const v = value.trim().toLowerCase();
  if (v === "auto" || v === "on" || v === "off") return v;
  if (v === "true" || v === "yes") return "on";
  if (v === "false" || v === "no") return "off";
  throw new ValueError(`expected auto, on or off, got ${JSON.stringify(value)}`);
}

export function parsePortShare(value: string): PortShareSetting {
  const v = value.trim().toLowerCase();
  if ((PORT_SHARES as readonly string[]).includes(v)) return v as PortShareSetting;
  throw new ValueError(`expected one of ${PORT_SHARES.join(", ")}, got ${JSON.stringify(value)}`);
}

/** An interface name as the kernel accepts it (1-15 bytes, no "/", whitespace or ":"). */
export function parseAttachTo(value: string): string {
  const v = value.trim();
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(v) || v === "." || v === "..") throw new ValueError(`${JSON.stringify(value)} is not an interface name`);
  return v;
}
