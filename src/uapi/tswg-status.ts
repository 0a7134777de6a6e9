/**
 * The one reader of tswg's own `tswg_*` status keys in a `get=1` reply (see docs/uapi.md), turning
 * them into typed fields for `tswg show --json`, the metrics and `tswg ping`. Keys it does not
 * know are kept as text in `other`, so newer devices never lose information on older tools.
 */
import { UAPI_EXTRA_PREFIX } from "./types.js";

/** How a peer's packets travel: straight between the hosts, through a TURN relay, or over TCP (UoTLV/1). */
export type PathKind = "direct" | "relay" | "tcp";

export interface CandidateView {
  /** ICE candidate type: host, srflx, prflx or relay. */
  type: string;
  address: string;
  port: number;
}

export interface IceView {
  state: string;
  restarts: number;
  pair?: { local: CandidateView; remote: CandidateView };
  rttMs?: number;
  /** Times the selected pair changed, when the device reports it. */
  pathSwitches?: number;
}

export interface PeerExtraView {
  /** "udp" (default), "ice" or "tcp". */
  transport: string;
  /** A non-"ip:port" endpoint (an ICE peer's name, a UoTLV/1 URL). */
  endpoint?: string;
  ice?: IceView;
  /** Derived from the transport and the selected pair; absent while an ICE peer has no pair. */
  path?: PathKind;
  /** Which data plane moves this peer's packets ("native", "portable", ...), when reported. */
  dataPlane?: string;
  txPackets?: number;
  rxPackets?: number;
  /** Largest outer datagram towards the peer; absent when unknown or unlimited (a TCP path). */
  pathMtu?: number;
  /** How it was learnt: interface, icmp, kernel, probe, or tcp (no datagram limit). */
  pathMtuSource?: string;
  drops: Record<string, number>;
  other: Record<string, string>;
}

export interface DeviceExtraView {
  dataPath?: string;
  crypto?: string;
  /** Under load, handshakes must first return a cookie (WireGuard's DoS defence). */
  cookieMode?: boolean;
  /** Handshake initiations received since start, when reported. */
  handshakesReceived?: number;
  /** Handshake responses received since start, when reported. */
  handshakeResponsesReceived?: number;
  /** Cookie replies sent (handshakes refused until the sender proves its address), when reported. */
  cookieRepliesSent?: number;
  drops: Record<string, number>;
  other: Record<string, string>;
}

const CANDIDATE = /^(\w+) (\[[^\]]+\]|[^\s:]+):(\d+)$/u;

function candidate(text: string): CandidateView | undefined {
  const m = CANDIDATE.exec(text.trim());
  if (m === null) return undefined;
  return { type: m[1]!, address: m[2]!.replace(/^\[|\]$/gu, ""), port: Number(m[3]) };
}

/** "host 10.0.0.1:4000 -> relay [2001:db8::1]:3478" (as written by the ICE stack). */
export function parsePair(text: string): IceView["pair"] {
  const [l, r, extra] = text.split(" -> ");
  if (l === undefined || r === undefined || extra !== undefined) return undefined;
  const local = candidate(l);
  const remote = candidate(r);
  return local !== undefined && remote !== undefined ? { local, remote } : undefined;
}

function count(value: string): number | undefined {
  return /^[0-9]+$/u.test(value) ? Number(value) : undefined;
}

/** "12.3 ms" or "12.3" (milliseconds). */
function millis(value: string): number | undefined {
  const m = /^([0-9]+(?:\.[0-9]+)?)(?: ?ms)?$/u.exec(value.trim());
  return m === null ? undefined : Number(m[1]);
}

/** `tswg_drops_<reason>` / `tswg_drop_<reason>` = count. */
const DROP_KEY = new RegExp(`^${UAPI_EXTRA_PREFIX}drops?_([a-z0-9_]+)$`, "u");

function takeDrop(key: string, value: string, drops: Record<string, number>): boolean {
  const m = DROP_KEY.exec(key);
  const n = count(value);
  if (m === null || n === undefined) return false;
  drops[m[1]!] = (drops[m[1]!] ?? 0) + n;
  return true;
}

export function peerExtraView(extra: Record<string, string> | undefined): PeerExtraView {
  const v: PeerExtraView = { transport: "udp", drops: {}, other: {} };
  let ice: IceView | undefined;
  const iceView = (): IceView => (ice ??= { state: "new", restarts: 0 });
  for (const [key, value] of Object.entries(extra ?? {})) {
    let used = true;
    switch (key) {
      case "tswg_transport":
        v.transport = value;
        break;
      case "tswg_endpoint":
        v.endpoint = value;
        break;
      case "tswg_ice_state":
        iceView().state = value;
        break;
      case "tswg_ice_restarts":
        used = count(value) !== undefined && ((iceView().restarts = count(value)!), true);
        break;
      case "tswg_ice_pair": {
        const pair = parsePair(value);
        used = pair !== undefined && ((iceView().pair = pair), true);
        break;
      }
      case "tswg_ice_rtt":
        used = millis(value) !== undefined && ((iceView().rttMs = millis(value)), true);
        break;
      case "tswg_path_switches":
      case "tswg_ice_path_switches":
        used = count(value) !== undefined && ((iceView().pathSwitches = count(value)), true);
        break;
      case "tswg_data_plane":
      case "tswg_data_path":
        v.dataPlane = value;
        break;
      case "tswg_tx_packets":
        used = count(value) !== undefined && ((v.txPackets = count(value)), true);
        break;
      case "tswg_rx_packets":
        used = count(value) !== undefined && ((v.rxPackets = count(value)), true);
        break;
      case "tswg_path_mtu":
      case "tswg_pmtu": {
        // "1280 (icmp)", "any (tcp)", or a bare number.
        const m = /^([0-9]+|any)(?: \(([a-z]+)\))?$/u.exec(value);
        if (m !== null) {
          if (m[1] !== "any") v.pathMtu = Number(m[1]);
          if (m[2] !== undefined) v.pathMtuSource = m[2];
        }
        used = m !== null;
        break;
      }
      default:
        used = takeDrop(key, value, v.drops);
    }
    if (!used) v.other[key] = value;
  }
  if (ice !== undefined) {
    v.ice = ice;
    if (v.transport === "udp") v.transport = "ice";
  }
  if (v.transport === "tcp") v.path = "tcp";
  else if (v.ice === undefined) v.path = "direct";
  else if (v.ice.pair !== undefined) v.path = v.ice.pair.local.type === "relay" || v.ice.pair.remote.type === "relay" ? "relay" : "direct";
  return v;
}

export function deviceExtraView(extra: Record<string, string> | undefined): DeviceExtraView {
  const v: DeviceExtraView = { drops: {}, other: {} };
  for (const [key, value] of Object.entries(extra ?? {})) {
    let used = true;
    switch (key) {
      case "tswg_data_path":
        v.dataPath = value;
        break;
      case "tswg_crypto":
        v.crypto = value;
        break;
      case "tswg_cookie_mode":
      case "tswg_under_load":
        used = value === "true" || value === "false" || value === "1" || value === "0";
        if (used) v.cookieMode = value === "true" || value === "1";
        break;
      case "tswg_handshakes_received":
      case "tswg_handshake_initiations":
        used = count(value) !== undefined && ((v.handshakesReceived = count(value)), true);
        break;
      case "tswg_handshake_responses_received":
        used = count(value) !== undefined && ((v.handshakeResponsesReceived = count(value)), true);
        break;
      case "tswg_cookie_replies_sent":
        used = count(value) !== undefined && ((v.cookieRepliesSent = count(value)), true);
        break;
      default:
        used = takeDrop(key, value, v.drops);
    }
    if (!used) v.other[key] = value;
  }
  return v;
}
