/**
 * Values of tswg's NAT-traversal keys ([Interface] Signaling, ICEServers, ICECandidateTypes,
 * ICEPortRange). Checked here so a mistake is reported with file, line and key before anything
 * changes.
 */
import { parseIceServers } from "../ice/servers.js";
import { quoted } from "./excerpt.js";
import { ValueError } from "./values.js";

const SIGNALING_SCHEMES = ["ws", "wss", "nats", "tls"];

/** One ws:// or wss:// URL, or one or more comma-separated nats:// (or tls://) URLs. */
export function parseSignaling(value: string): string {
  const urls = value.split(",").map((u) => u.trim()).filter((u) => u !== "");
  if (urls.length === 0) throw new ValueError("expected a signaling URL such as ws://host:8080 or nats://host:4222");
  const schemes = new Set<string>();
  for (const u of urls) {
    let url: URL;
    try {
      url = new URL(u);
    } catch {
      throw new ValueError(`${quoted(u)} is not a URL (expected e.g. ws://host:8080)`);
    }
    const scheme = url.protocol.slice(0, -1);
    if (!SIGNALING_SCHEMES.includes(scheme)) {
      throw new ValueError(`unsupported scheme "${scheme}:" (expected ws://, wss:// or nats://)`);
    }
    if (url.hostname === "") throw new ValueError(`${quoted(u)} has no host`);
    schemes.add(scheme === "wss" ? "ws" : scheme === "tls" ? "nats" : scheme);
  }
  if (schemes.has("ws") && urls.length > 1) throw new ValueError("ws:// and wss:// signaling take a single URL");
  return urls.join(",");
}

/** stun:/turn:/turns: URLs; validated with the ICE layer's own parser. */
export function parseIceServerList(value: string): string {
  try {
    parseIceServers(value);
  } catch (err) {
    throw new ValueError(err instanceof Error ? err.message : String(err));
  }
  return value.split(",").map((s) => s.trim()).filter((s) => s !== "").join(", ");
}

export type IceCandidateType = "host" | "srflx" | "relay";

export function parseCandidateTypeList(value: string): IceCandidateType[] {
  const out: IceCandidateType[] = [];
  for (const t of value.split(/[\s,]+/u).filter((s) => s !== "")) {
    const v = t.toLowerCase();
    if (v !== "host" && v !== "srflx" && v !== "relay") throw new ValueError(`unknown candidate type ${quoted(t)} (expected host, srflx or relay)`);
    if (!out.includes(v)) out.push(v);
  }
  if (out.length === 0) throw new ValueError("expected at least one of host, srflx, relay");
  return out;
}

/** "50000-50100": the UDP ports ICE may bind for host candidates. */
export function parsePortRangeValue(value: string): [number, number] {
  const m = /^\s*(\d{1,5})\s*-\s*(\d{1,5})\s*$/u.exec(value);
  if (m === null) throw new ValueError(`expected a port range such as 50000-50100`);
  const lo = Number(m[1]);
  const hi = Number(m[2]);
  if (lo < 1 || hi > 65535 || lo > hi) throw new ValueError(`port range ${lo}-${hi} must be within 1-65535, low to high`);
  return [lo, hi];
}
