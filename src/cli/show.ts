/**
 * `tswg show`: the same report as `wg show`, read over each interface's UAPI socket, so it
 * works for any userspace WireGuard listening there (tswg or wireguard-go), and through the status
 * socket a kernel-mode run keeps in /run/tswg for the kernel interfaces it manages.
 */
import { defaultBackend } from "../crypto/index.js";
import { keyToBase64 } from "../crypto/keys.js";
import { KERNEL_STATUS_DIR } from "../quick/kernel.js";
import { listInterfaces, uapiGet } from "../uapi/client.js";
import type { UapiDeviceState, UapiPeerState } from "../uapi/types.js";
import { UsageError } from "./main.js";

function plural(n: number, unit: string): string {
  return `${n} ${unit}${n === 1 ? "" : "s"}`;
}

/** "1 day, 2 hours, 3 minutes, 4 seconds", as wg prints durations. */
export function prettyDuration(totalSeconds: number): string {
  let left = Math.max(0, Math.floor(totalSeconds));
  const parts: string[] = [];
  const units: [number, string][] = [
    [365 * 24 * 3600, "year"],
    [24 * 3600, "day"],
    [3600, "hour"],
    [60, "minute"],
  ];
  for (const [size, name] of units) {
    const n = Math.floor(left / size);
    left -= n * size;
    if (n > 0) parts.push(plural(n, name));
  }
  if (left > 0 || parts.length === 0) parts.push(plural(left, "second"));
  return parts.join(", ");
}

/** "1.23 KiB": wg's byte formatting. */
export function prettyBytes(n: number | bigint): string {
  const v = Number(n);
  const units = ["KiB", "MiB", "GiB", "TiB"];
  if (v < 1024) return `${v} B`;
  let x = v / 1024;
  let i = 0;
  while (x >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  return `${x.toFixed(2)} ${units[i]}`;
}

/** tswg's own status keys ("tswg_ice_state") as show lines ("  ice state: connected"). */
function extraLines(extra: Record<string, string> | undefined): string[] {
  if (extra === undefined) return [];
  return Object.entries(extra).map(([k, v]) => `  ${k.replace(/^tswg_/u, "").replaceAll("_", " ")}: ${v}`);
}

function sortPeers(peers: UapiPeerState[]): UapiPeerState[] {
  // Most recent handshake first, as wg does.
  return [...peers].sort((a, b) => b.lastHandshakeMs - a.lastHandshakeMs);
}

export function formatShow(name: string, s: UapiDeviceState, nowMs: number = Date.now()): string {
  const lines: string[] = [`interface: ${name}`];
  if (s.privateKey) {
    lines.push(`  public key: ${keyToBase64(defaultBackend().publicKey(s.privateKey))}`);
    lines.push("  private key: (hidden)");
  }
  if (s.listenPort) lines.push(`  listening port: ${s.listenPort}`);
  if (s.fwmark) lines.push(`  fwmark: 0x${s.fwmark.toString(16)}`);
  lines.push(...extraLines(s.extra));
  for (const p of sortPeers(s.peers)) {
    lines.push("", `peer: ${keyToBase64(p.publicKey)}`);
    if (p.presharedKey) lines.push("  preshared key: (hidden)");
    if (p.endpoint) lines.push(`  endpoint: ${p.endpoint}`);
    lines.push(`  allowed ips: ${p.allowedIps.length > 0 ? p.allowedIps.join(", ") : "(none)"}`);
    if (p.lastHandshakeMs > 0) {
      const ago = Math.floor((nowMs - p.lastHandshakeMs) / 1000);
      lines.push(`  latest handshake: ${ago <= 0 ? "Now" : prettyDuration(ago) + " ago"}`);
    }
    if (Number(p.rxBytes) > 0 || Number(p.txBytes) > 0) {
      lines.push(`  transfer: ${prettyBytes(p.rxBytes)} received, ${prettyBytes(p.txBytes)} sent`);
    }
    if (p.persistentKeepalive > 0) lines.push(`  persistent keepalive: every ${prettyDuration(p.persistentKeepalive)}`);
    lines.push(...extraLines(p.extra));
  }
  return lines.join("\n") + "\n";
}

/** The machine-readable form of `wg show <iface> dump`; `prefix` is set for `all`. */
export function formatDump(name: string, s: UapiDeviceState, withName: boolean): string {
  const pre = withName ? `${name}\t` : "";
  const priv = s.privateKey ? keyToBase64(s.privateKey) : "(none)";
  const pub = s.privateKey ? keyToBase64(defaultBackend().publicKey(s.privateKey)) : "(none)";
  const lines = [`${pre}${priv}\t${pub}\t${s.listenPort}\t${s.fwmark ? "0x" + s.fwmark.toString(16) : "off"}`];
  for (const p of s.peers) {
    lines.push(
      [
        pre + keyToBase64(p.publicKey),
        p.presharedKey ? keyToBase64(p.presharedKey) : "(none)",
        p.endpoint ?? "(none)",
        p.allowedIps.length > 0 ? p.allowedIps.join(",") : "(none)",
        Math.floor(p.lastHandshakeMs / 1000),
        p.rxBytes.toString(),
        p.txBytes.toString(),
        p.persistentKeepalive > 0 ? p.persistentKeepalive : "off",
      ].join("\t"),
    );
  }
  return lines.join("\n") + "\n";
}

/** Interfaces to show: userspace ones by their UAPI socket, and kernel-mode runs by their status socket. */
function allInterfaces(): string[] {
  return [...new Set([...listInterfaces(), ...listInterfaces(KERNEL_STATUS_DIR)])].sort();
}

/** A kernel-mode run's status socket first (it adds ICE and port-sharing lines), else the UAPI socket. */
function readInterface(name: string): Promise<UapiDeviceState> {
  return listInterfaces(KERNEL_STATUS_DIR).includes(name) ? uapiGet(name, KERNEL_STATUS_DIR) : uapiGet(name);
}

export async function runShow(args: string[]): Promise<number> {
  const dump = args[args.length - 1] === "dump";
  const rest = dump ? args.slice(0, -1) : args;
  if (rest.length > 1) throw new UsageError("show takes at most an interface name and `dump`");
  const target = rest[0] ?? "all";
  if (target === "interfaces") {
    const names = allInterfaces();
    if (names.length > 0) process.stdout.write(names.join(" ") + "\n");
    return 0;
  }
  const names = target === "all" ? allInterfaces() : [target];
  let status = 0;
  const out: string[] = [];
  for (const name of names) {
    let state: UapiDeviceState;
    try {
      state = await readInterface(name);
    } catch (err) {
      process.stderr.write(`tswg: unable to access interface ${name}: ${err instanceof Error ? err.message : String(err)}\n`);
      status = 1;
      continue;
    }
    out.push(dump ? formatDump(name, state, target === "all") : formatShow(name, state));
  }
  process.stdout.write(dump ? out.join("") : out.join("\n"));
  return status;
}
