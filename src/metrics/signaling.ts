/** The signaling server's metrics: connections, messages routed, rejects and drops by reason. */
import type { SignalingServerStats } from "../signaling/ws-server.js";
import { FamilySet, type MetricFamily } from "./exposition.js";

export function signalingMetrics(s: SignalingServerStats): MetricFamily[] {
  const f = new FamilySet();
  f.add("tswg_signal_connections", "gauge", "Open WebSocket connections.", {}, s.connections);
  f.add("tswg_signal_subscribed_keys", "gauge", "Public keys with a subscribed connection.", {}, s.subscribedKeys);
  f.add("tswg_signal_held_messages", "gauge", "Messages held for a recipient that is not connected.", {}, s.held);
  f.add("tswg_signal_held_bytes", "gauge", "Bytes of held messages.", {}, s.heldBytes);
  f.add("tswg_signal_messages_routed_total", "counter", "Messages delivered to a recipient.", {}, s.routed);
  const drop = (reason: string, n: number): void => f.add("tswg_signal_messages_dropped_total", "counter", "Messages dropped, by reason.", { reason }, n);
  drop("rate_limited", s.droppedRateLimited);
  drop("no_recipient", s.droppedNoRecipient);
  drop("slow_consumer", s.droppedSlowConsumer);
  f.add("tswg_signal_rejects_total", "counter", "Connections closed for a protocol error (bad frame, failed key proof, no subscription).", {}, s.protocolErrors);
  f.add("tswg_signal_refused_connections_total", "counter", "TCP connections cut at once (connection, pending-upgrade or per-address limit).", {}, s.refusedConnections);
  f.add("tswg_signal_handshake_timeouts_total", "counter", "Connections closed for not completing the upgrade and key proof in time.", {}, s.handshakeTimeouts);
  return f.families();
}
