/**
 * `tswg show --json`: the status of interfaces as one JSON document, for scripts and
 * dashboards. Its shape is fixed by schema/tswg-show.schema.json (documented in
 * docs/operations.md): fields are only ever added, and optional ones are left out when unknown.
 */
import { defaultBackend } from "../crypto/index.js";
import { keyToBase64 } from "../crypto/keys.js";
import { deviceExtraView, peerExtraView, type CandidateView } from "../uapi/tswg-status.js";
import type { UapiDeviceState } from "../uapi/types.js";

export const SHOW_JSON_SCHEMA_ID = "https://tswg.invalid/schema/tswg-show/1";

export interface ShowJsonPeer {
  public_key: string;
  preshared_key: boolean;
  endpoint: string | null;
  allowed_ips: string[];
  /** UNIX seconds of the last handshake, null = never. */
  latest_handshake: number | null;
  handshake_age_seconds: number | null;
  rx_bytes: number;
  tx_bytes: number;
  persistent_keepalive: number;
  transport: string;
  path: "direct" | "relay" | "tcp" | null;
  ice?: {
    state: string;
    restarts: number;
    selected_pair: { local: CandidateView; remote: CandidateView } | null;
    rtt_ms: number | null;
    path_switches?: number;
  };
  data_plane?: string;
  rx_packets?: number;
  tx_packets?: number;
  path_mtu?: number;
  /** How the path MTU was learnt: interface, icmp, kernel, probe, tcp (no datagram limit). */
  path_mtu_source?: string;
  drops: Record<string, number>;
  other: Record<string, string>;
}

export interface ShowJsonInterface {
  name: string;
  public_key: string | null;
  listen_port: number | null;
  fwmark: number | null;
  data_path?: string;
  crypto?: string;
  cookie_mode?: boolean;
  handshakes_received?: number;
  handshake_responses_received?: number;
  cookie_replies_sent?: number;
  drops: Record<string, number>;
  other: Record<string, string>;
  peers: ShowJsonPeer[];
}

export interface ShowJsonDocument {
  $schema: string;
  generated_at: string;
  interfaces: ShowJsonInterface[];
  errors: { name: string; error: string }[];
}

function peerJson(p: UapiDeviceState["peers"][number], nowMs: number): ShowJsonPeer {
  const v = peerExtraView(p.extra);
  const out: ShowJsonPeer = {
    public_key: keyToBase64(p.publicKey),
    preshared_key: p.presharedKey !== undefined,
    endpoint: p.endpoint ?? v.endpoint ?? null,
    allowed_ips: p.allowedIps,
    latest_handshake: p.lastHandshakeMs > 0 ? Math.floor(p.lastHandshakeMs / 1000) : null,
    handshake_age_seconds: p.lastHandshakeMs > 0 ? Math.max(0, Math.floor((nowMs - p.lastHandshakeMs) / 1000)) : null,
    rx_bytes: Number(p.rxBytes),
    tx_bytes: Number(p.txBytes),
    persistent_keepalive: p.persistentKeepalive,
    transport: v.transport,
    path: v.path ?? null,
    drops: v.drops,
    other: v.other,
  };
  if (v.ice !== undefined) {
    out.ice = { state: v.ice.state, restarts: v.ice.restarts, selected_pair: v.ice.pair ?? null, rtt_ms: v.ice.rttMs ?? null };
    if (v.ice.pathSwitches !== undefined) out.ice.path_switches = v.ice.pathSwitches;
  }
  if (v.dataPlane !== undefined) out.data_plane = v.dataPlane;
  if (v.rxPackets !== undefined) out.rx_packets = v.rxPackets;
  if (v.txPackets !== undefined) out.tx_packets = v.txPackets;
  if (v.pathMtu !== undefined) out.path_mtu = v.pathMtu;
  if (v.pathMtuSource !== undefined) out.path_mtu_source = v.pathMtuSource;
  return out;
}

export function interfaceJson(name: string, s: UapiDeviceState, nowMs: number = Date.now()): ShowJsonInterface {
  const d = deviceExtraView(s.extra);
  const out: ShowJsonInterface = {
    name,
    public_key: s.privateKey ? keyToBase64(defaultBackend().publicKey(s.privateKey)) : null,
    listen_port: s.listenPort || null,
    fwmark: s.fwmark || null,
    drops: d.drops,
    other: d.other,
    peers: [...s.peers].sort((a, b) => b.lastHandshakeMs - a.lastHandshakeMs).map((p) => peerJson(p, nowMs)),
  };
  if (d.dataPath !== undefined) out.data_path = d.dataPath;
  if (d.crypto !== undefined) out.crypto = d.crypto;
  if (d.cookieMode !== undefined) out.cookie_mode = d.cookieMode;
  if (d.handshakesReceived !== undefined) out.handshakes_received = d.handshakesReceived;
  if (d.handshakeResponsesReceived !== undefined) out.handshake_responses_received = d.handshakeResponsesReceived;
  if (d.cookieRepliesSent !== undefined) out.cookie_replies_sent = d.cookieRepliesSent;
  return out;
}

export function showDocument(interfaces: ShowJsonInterface[], errors: { name: string; error: string }[], nowMs: number = Date.now()): ShowJsonDocument {
  return { $schema: SHOW_JSON_SCHEMA_ID, generated_at: new Date(nowMs).toISOString(), interfaces, errors };
}
