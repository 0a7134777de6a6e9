/**
 * `tswg netcheck [--ice-servers URLS] [name|file.conf] [--json]`: the network report of
 * netcheck/netcheck.ts, for the servers given or the ICEServers of a configuration. No server is
 * contacted unless it is named one of these two ways.
 */
import { parseIceServers, type IceServer } from "../ice/servers.js";
import { netcheck, type NetcheckReport } from "../netcheck/netcheck.js";
import { intFlag, parseArgs, UsageError, wantsHelp } from "./args.js";
import { locateConfig, readConfig } from "./config-file.js";

export const NETCHECK_USAGE = `Usage: tswg netcheck [--ice-servers URLS] [<name|file.conf>] [--json] [--timeout MS]

Reports what the local network allows for ICE: whether UDP gets out, the NAT's mapping behaviour
(endpoint-independent or endpoint-dependent), whether ports are preserved, the latency to each
STUN server, and which TURN servers answer on which transport. Only the servers named with
--ice-servers or in the configuration's ICEServers are contacted.

  --ice-servers URLS   stun:/turn:/turns: URLs, comma separated (as ICEServers)
  --json               the report as JSON
  --timeout MS         per-request timeout (default 1000)
`;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

export function formatReport(r: NetcheckReport): string {
  const yn = (b: boolean | null): string => (b === null ? "unknown" : b ? "yes" : "no");
  const lines = [
    "Report:",
    `  UDP: ${yn(r.udp)}`,
    `  behind a NAT: ${yn(r.behindNat)}`,
    `  mapping: ${r.mapping}`,
    `  port preserved: ${yn(r.portPreserved)}`,
  ];
  if (r.stun.length > 0) {
    lines.push("  STUN:");
    for (const s of r.stun) {
      const seen = [...new Set(s.mapped.filter((m): m is string => m !== null))].join(", ");
      lines.push(s.error !== undefined ? `    ${s.url}: ${s.error}` : `    ${s.url}: ${median(s.rttMs).toFixed(1)} ms, sees ${seen}`);
    }
  }
  if (r.turn.length > 0) {
    lines.push("  TURN:");
    for (const t of r.turn) lines.push(`    ${t.url}: ${t.answers ? `answers over ${t.transport} in ${t.rttMs!.toFixed(1)} ms` : `no answer over ${t.transport}`} (${t.detail})`);
  }
  lines.push("", ...r.hints.map((h) => `* ${h}`));
  return lines.join("\n") + "\n";
}

export async function runNetcheck(args: string[]): Promise<number> {
  if (wantsHelp(args)) {
    process.stdout.write(NETCHECK_USAGE);
    return 0;
  }
  const p = parseArgs(args, {
    command: "netcheck",
    flags: { "ice-servers": "value", json: "bool", timeout: "value" },
    positionals: ["configuration"],
    required: 0,
    usage: NETCHECK_USAGE,
  });
  const timeoutMs = intFlag(p, "timeout", 1000, 50, 60_000, NETCHECK_USAGE);
  const texts: string[] = [];
  const given = p.flags.get("ice-servers");
  if (given !== undefined) texts.push(given);
  const target = p.positionals[0];
  if (target !== undefined) {
    const located = locateConfig(target);
    const config = readConfig(located.path);
    if (config.interface.iceServers === undefined) throw new Error(`${located.path} has no ICEServers`);
    texts.push(config.interface.iceServers);
  }
  if (texts.length === 0) throw new UsageError("netcheck: name the servers to ask: --ice-servers URLS or a configuration with ICEServers", NETCHECK_USAGE);
  let servers: IceServer[];
  try {
    servers = texts.flatMap((t) => parseIceServers(t));
  } catch (err) {
    throw new UsageError(`netcheck: ${(err as Error).message}`, NETCHECK_USAGE);
  }
  const report = await netcheck(servers, { timeoutMs });
  process.stdout.write(p.flags.get("json") === "true" ? JSON.stringify(report, null, 2) + "\n" : formatReport(report));
  return report.udp || report.turn.some((t) => t.answers) ? 0 : 1;
}
