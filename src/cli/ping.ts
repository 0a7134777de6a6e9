/**
 * `tswg ping <peer>`: pings a peer through the tunnel and says, for each reply, which path
 * carried it (direct, relay or tcp, with the ICE pair) and the round-trip time — what
 * `tailscale ping` tells. The echo requests are ordinary ICMP from the system's `ping`, bound to
 * the interface, so they take exactly the way the operator's own traffic takes; the path is read
 * from the interface's status right after each reply.
 */
import { spawn } from "node:child_process";
import { isIP } from "node:net";
import { AllowedIps } from "../allowedips/index.js";
import { keyToBase64, parseKey } from "../crypto/keys.js";
import { listLiveInterfaces, uapiGet } from "../uapi/client.js";
import { peerExtraView, type PeerExtraView } from "../uapi/tswg-status.js";
import type { UapiPeerState } from "../uapi/types.js";
import { intFlag, parseArgs, UsageError, wantsHelp } from "./args.js";

export const PING_USAGE = `Usage: tswg ping <peer> [-c COUNT] [-i INTERFACE] [--timeout SECONDS]

Pings a peer through the tunnel and says which path carried each reply and the round-trip time.
<peer> is the peer's public key (base64) or an address inside its AllowedIPs. With a key, the
first single-address AllowedIPs entry (a /32 or /128) is pinged.

  -c, --count N        echo requests to send (default 4)
  -i, --interface IF   look for the peer on this interface only
  --timeout SECONDS    how long to wait for each reply (default 2)
`;

interface Target {
  iface: string;
  peer: UapiPeerState;
  address: string;
}

/** Finds the interface and peer for a key or tunnel address. */
async function findTarget(peer: string, only: string | undefined): Promise<Target> {
  const names = only !== undefined ? [only] : await listLiveInterfaces();
  if (names.length === 0) throw new Error("no interface is up");
  let key: string | undefined;
  if (isIP(peer) === 0) {
    try {
      key = keyToBase64(parseKey(peer));
    } catch {
      throw new UsageError(`ping: ${JSON.stringify(peer)} is neither a public key nor an IP address`, PING_USAGE);
    }
  }
  for (const iface of names) {
    const state = await uapiGet(iface);
    if (key !== undefined) {
      const p = state.peers.find((x) => keyToBase64(x.publicKey) === key);
      if (p === undefined) continue;
      const host = p.allowedIps.find((a) => a.endsWith("/32") || a.endsWith("/128"));
      if (host === undefined) throw new Error(`peer ${key} has no single-address AllowedIPs entry to ping; give its tunnel address`);
      return { iface, peer: p, address: host.replace(/\/\d+$/u, "") };
    }
    const routes = new AllowedIps<UapiPeerState>();
    for (const p of state.peers) for (const a of p.allowedIps) routes.insert(a, p);
    const p = routes.lookup(peer);
    if (p !== undefined) return { iface, peer: p, address: peer };
  }
  throw new Error(`no peer ${key ?? `with ${peer} in its AllowedIPs`} on ${names.join(", ")}`);
}

/** One echo request with the system's ping; resolves with the RTT in ms, or null on no reply. */
function echo(iface: string, address: string, timeoutS: number): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const child = spawn("ping", ["-n", "-c", "1", "-W", String(timeoutS), "-I", iface, address], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.once("error", (err: NodeJS.ErrnoException) => reject(new Error(err.code === "ENOENT" ? "the `ping` command is not installed (Debian: iputils-ping)" : err.message)));
    child.once("close", (code) => {
      const m = /time[=<]([0-9.]+) ?ms/u.exec(out);
      if (code === 0 && m !== null) resolve(Number(m[1]));
      else if (code === 1) resolve(null);
      else reject(new Error(`ping failed: ${out.trim().split("\n").pop() ?? `exit ${code}`}`));
    });
  });
}

/** "direct (host 10.0.0.1:4000 -> srflx 198.51.100.2:5000)", "relay (...)", "tcp", "direct". */
export function describePath(v: PeerExtraView, endpoint: string | undefined): string {
  const pair = v.ice?.pair;
  const side = (c: { type: string; address: string; port: number }): string => `${c.type} ${c.address.includes(":") ? `[${c.address}]` : c.address}:${c.port}`;
  if (v.path === undefined) return `no path yet (ICE ${v.ice?.state ?? "not started"})`;
  if (pair !== undefined) return `${v.path} (${side(pair.local)} -> ${side(pair.remote)})`;
  const where = endpoint ?? v.endpoint;
  return where === undefined ? v.path : `${v.path} (${where})`;
}

export async function runPing(args: string[]): Promise<number> {
  if (wantsHelp(args)) {
    process.stdout.write(PING_USAGE);
    return 0;
  }
  const p = parseArgs(args, {
    command: "ping",
    flags: { count: "value", interface: "value", timeout: "value" },
    aliases: { c: "count", i: "interface" },
    positionals: ["a peer (public key or tunnel address)"],
    usage: PING_USAGE,
  });
  const count = intFlag(p, "count", 4, 1, 1_000_000, PING_USAGE);
  const timeout = intFlag(p, "timeout", 2, 1, 60, PING_USAGE);
  const target = await findTarget(p.positionals[0]!, p.flags.get("interface"));
  const key = keyToBase64(target.peer.publicKey);
  let replies = 0;
  for (let i = 0; i < count; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, 1000));
    const rtt = await echo(target.iface, target.address, timeout);
    if (rtt === null) {
      process.stdout.write(`no reply from ${target.address} within ${timeout} s\n`);
      continue;
    }
    replies++;
    const now = (await uapiGet(target.iface)).peers.find((x) => keyToBase64(x.publicKey) === key);
    const path = now === undefined ? "unknown (peer removed)" : describePath(peerExtraView(now.extra), now.endpoint);
    process.stdout.write(`pong from ${target.address} (${key.slice(0, 8)}…) via ${path} in ${rtt} ms\n`);
  }
  return replies > 0 ? 0 : 1;
}
