/**
 * An interface's metrics, read from what its UAPI `get` reports. Names shared with
 * prometheus_wireguard_exporter keep its names and labels (interface, public_key, allowed_ips)
 * so existing dashboards work; everything tswg adds is named tswg_*.
 */
import { keyToBase64 } from "../crypto/keys.js";
import { deviceExtraView, peerExtraView } from "../uapi/tswg-status.js";
import type { UapiDeviceState } from "../uapi/types.js";
import { FamilySet, type MetricFamily } from "./exposition.js";

/** ICE states reported as a 0/1 gauge each, so a graph shows which one a peer is in. */
const ICE_STATES = ["new", "checking", "connected", "failed", "closed"];

export function interfaceMetrics(iface: string, s: UapiDeviceState): MetricFamily[] {
  const f = new FamilySet();
  const dev = deviceExtraView(s.extra);
  f.add("tswg_interface_info", "gauge", "Always 1; labels name the interface's data path and crypto backend.", { interface: iface, data_path: dev.dataPath ?? "", crypto: dev.crypto ?? "" }, 1);
  f.add("tswg_peers", "gauge", "Configured peers.", { interface: iface }, s.peers.length);
  if (dev.cookieMode !== undefined) f.add("tswg_cookie_mode", "gauge", "1 while handshakes are answered with cookies (under load).", { interface: iface }, dev.cookieMode ? 1 : 0);
  if (dev.handshakesReceived !== undefined) {
    f.add("tswg_handshake_initiations_received_total", "counter", "Handshake initiations received; rate() gives the handshake rate.", { interface: iface }, dev.handshakesReceived);
  }
  if (dev.handshakeResponsesReceived !== undefined) {
    f.add("tswg_handshake_responses_received_total", "counter", "Handshake responses received.", { interface: iface }, dev.handshakeResponsesReceived);
  }
  if (dev.cookieRepliesSent !== undefined) {
    f.add("tswg_cookie_replies_sent_total", "counter", "Cookie replies sent instead of answering a handshake (under load).", { interface: iface }, dev.cookieRepliesSent);
  }
  for (const [reason, n] of Object.entries(dev.drops)) f.add("tswg_interface_drops_total", "counter", "Packets the interface dropped, by reason.", { interface: iface, reason }, n);

  for (const p of s.peers) {
    const base = { interface: iface, public_key: keyToBase64(p.publicKey), allowed_ips: p.allowedIps.join(",") };
    const v = peerExtraView(p.extra);
    f.add("wireguard_sent_bytes_total", "counter", "Bytes sent to the peer", base, Number(p.txBytes));
    f.add("wireguard_received_bytes_total", "counter", "Bytes received from the peer", base, Number(p.rxBytes));
    f.add("wireguard_latest_handshake_seconds", "gauge", "UNIX time of the last handshake (0 = never)", base, Math.floor(p.lastHandshakeMs / 1000));
    const peer = { interface: iface, public_key: base.public_key };
    if (v.txPackets !== undefined) f.add("tswg_peer_sent_packets_total", "counter", "Packets sent to the peer.", peer, v.txPackets);
    if (v.rxPackets !== undefined) f.add("tswg_peer_received_packets_total", "counter", "Packets received from the peer.", peer, v.rxPackets);
    f.add(
      "tswg_peer_path_info",
      "gauge",
      "Always 1; labels say how packets reach the peer: transport, path (direct, relay, tcp, none) and the ICE candidate types.",
      { ...peer, transport: v.transport, path: v.path ?? "none", local_candidate: v.ice?.pair?.local.type ?? "", remote_candidate: v.ice?.pair?.remote.type ?? "" },
      1,
    );
    if (v.ice !== undefined) {
      const states = ICE_STATES.includes(v.ice.state) ? ICE_STATES : [...ICE_STATES, v.ice.state];
      for (const state of states) f.add("tswg_peer_ice_state", "gauge", "1 for the peer's current ICE state.", { ...peer, state }, state === v.ice.state ? 1 : 0);
      f.add("tswg_peer_ice_restarts_total", "counter", "ICE restarts (new credentials, new checks) for the peer.", peer, v.ice.restarts);
      if (v.ice.pathSwitches !== undefined) f.add("tswg_peer_path_switches_total", "counter", "Times the peer's selected path changed.", peer, v.ice.pathSwitches);
      if (v.ice.rttMs !== undefined) f.add("tswg_peer_rtt_seconds", "gauge", "Round-trip time of the selected ICE pair (STUN consent checks).", peer, v.ice.rttMs / 1000);
    }
    if (v.pathMtu !== undefined) f.add("tswg_peer_path_mtu_bytes", "gauge", "Path MTU towards the peer, where known.", peer, v.pathMtu);
    for (const [reason, n] of Object.entries(v.drops)) f.add("tswg_peer_drops_total", "counter", "Packets of this peer dropped, by reason.", { ...peer, reason }, n);
  }
  return f.families();
}
