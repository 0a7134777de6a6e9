/**
 * `tswg show`: the same report as `wg show`, read over each interface's UAPI socket, so it
 * works for any userspace WireGuard listening there (tswg or wireguard-go), and through the status
 * socket a kernel-mode run keeps in /run/tswg for the kernel interfaces it manages.
 */
import { defaultBackend } from "../crypto/index.js";
import { keyToBase64 } from "../crypto/keys.js";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { listLiveInterfaces, uapiGet } from "../uapi/client.js";
import { DEFAULT_UAPI_DIR } from "../uapi/server.js";
import { peerExtraView } from "../uapi/tswg-status.js";
import { userRuntimeDir } from "../quick/runtime-dir.js";
import { KERNEL_STATUS_DIR } from "../quick/kernel.js";
import type { UapiDeviceState, UapiPeerState } from "../uapi/types.js";
import { recordState } from "../quick/journal.js";
import { parseArgs, UsageError, wantsHelp } from "./args.js";
import { interfaceJson, showDocument, type ShowJsonInterface } from "./show-json.js";
import { RUN_DIR } from "./runstate.js";

/** Why an interface does not answer, when it is one whose `tswg up` was killed. */
function crashHint(name: string): string {
  const s = recordState(RUN_DIR, name);
  if (s.kind !== "crashed") return "";
  return `tswg: ${name} is not running: its process (pid ${s.pid}) ended without taking it down; \`tswg down ${name}' cleans up what it left\n`;
}

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
  const lines: string[] = [];
  const drops: string[] = [];
  for (const [k, v] of Object.entries(extra)) {
    const drop = /^tswg_drops?_(.+)$/u.exec(k);
    if (drop === null) lines.push(`  ${k.replace(/^tswg_/u, "").replaceAll("_", " ")}: ${v}`);
    else if (v !== "0") drops.push(`${drop[1]!.replaceAll("_", " ")} ${v}`);
  }
  // Drop counters in one line, and only when something was dropped.
  if (drops.length > 0) lines.push(`  dropped: ${drops.join(", ")}`);
  return lines;
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
    // The answer to "why is my peer relayed?" in one word, for peers that are not plain UDP.
    const view = peerExtraView(p.extra);
    if (view.transport !== "udp") lines.push(`  path: ${view.path ?? "none yet"}`);
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

export const SHOW_USAGE = `Usage: tswg show [<iface>|all|interfaces] [dump] [--json]

Shows interfaces like \`wg show\`: every userspace WireGuard whose socket answers in
/var/run/wireguard (tswg or wireguard-go) or, for network-stack interfaces of an unprivileged
user, in $XDG_RUNTIME_DIR/tswg, with tswg's own status (ICE state, selected pair, data path)
under each peer.

  interfaces   list the interfaces, one line
  dump         tab-separated, exactly as \`wg show ... dump\`
  --json       one JSON document (schema/tswg-show.schema.json, see docs/operations.md)
`;

export async function runShow(args: string[]): Promise<number> {
  if (wantsHelp(args)) {
    process.stdout.write(SHOW_USAGE);
    return 0;
  }
  const p = parseArgs(args, { command: "show", flags: { json: "bool" }, positionals: ["interface", "dump"], required: 0, usage: SHOW_USAGE });
  const json = p.flags.get("json") === "true";
  const [first, second] = p.positionals;
  const dump = first === "dump" || second === "dump";
  const rest = p.positionals.filter((a) => a !== "dump");
  if (rest.length > 1 || (second !== undefined && second !== "dump")) throw new UsageError("show: takes at most an interface name and `dump`", SHOW_USAGE);
  if (json && dump) throw new UsageError("show: choose --json or dump", SHOW_USAGE);
  const target = rest[0] ?? "all";
  // Kernel-mode runs answer on a status socket (it adds ICE and port-sharing lines to the
  // device's); interfaces on the network stack of an unprivileged user keep their socket in the
  // user's runtime directory. An earlier directory wins for a name found in several.
  const dirs = [KERNEL_STATUS_DIR, DEFAULT_UAPI_DIR, userRuntimeDir()];
  const dirOf = new Map<string, string>();
  for (const d of [...dirs].reverse()) for (const n of await listLiveInterfaces(d)) dirOf.set(n, d);
  const all = [...dirOf.keys()].sort();
  if (target === "interfaces") {
    if (json) process.stdout.write(JSON.stringify(all) + "\n");
    else if (all.length > 0) process.stdout.write(all.join(" ") + "\n");
    return 0;
  }
  const names = target === "all" ? all : [target];
  let status = 0;
  const out: string[] = [];
  const docs: ShowJsonInterface[] = [];
  const errors: { name: string; error: string }[] = [];
  for (const name of names) {
    let state: UapiDeviceState;
    try {
      state = await uapiGet(name, dirOf.get(name) ?? dirs.find((d) => existsSync(join(d, `${name}.sock`))));
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      if (json) errors.push({ name, error: why });
      else process.stderr.write(`tswg: unable to access interface ${name}: ${why}\n${crashHint(name)}`);
      status = 1;
      continue;
    }
    if (json) docs.push(interfaceJson(name, state));
    else out.push(dump ? formatDump(name, state, target === "all") : formatShow(name, state));
  }
  if (json) process.stdout.write(JSON.stringify(showDocument(docs, errors), null, 2) + "\n");
  else process.stdout.write(dump ? out.join("") : out.join("\n"));
  return status;
}
