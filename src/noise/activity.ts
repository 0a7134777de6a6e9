/**
 * A data plane's report of what it did for a peer, applied to the peer's timers in the order it
 * happened (to the report's resolution) — the "packet sent/received" events of the timers.
 */
import type { PeerTimers } from "./timers.js";

/**
 * What a data plane did for a peer since its last report: bytes moved and how long ago it last
 * sent and received (any packet, and data packets, i.e. not keepalives). Absent times mean
 * nothing of that kind since the last report.
 */
export interface DataPathActivity {
  txBytes: number;
  rxBytes: number;
  sentAgoMs?: number;
  dataSentAgoMs?: number;
  receivedAgoMs?: number;
  dataReceivedAgoMs?: number;
}

/** Feeds a report to the timers; says whether it contained sending and receiving. */
export function applyActivity(timers: PeerTimers, activity: DataPathActivity, now: number): { sent: boolean; received: boolean } {
  type Step = { at: number; order: number; apply: (t: number) => void };
  const steps: Step[] = [];
  const at = (ago: number | undefined): number | undefined => (ago === undefined ? undefined : now - Math.max(0, ago));
  const received = at(activity.receivedAgoMs);
  const dataReceived = at(activity.dataReceivedAgoMs);
  const sent = at(activity.sentAgoMs);
  const dataSent = at(activity.dataSentAgoMs);
  // At equal times receiving goes first: an answer cannot precede what it answers.
  if (received !== undefined) {
    steps.push({
      at: received,
      order: 0,
      apply: (t) => {
        timers.anyAuthenticatedPacketTraversal(t);
        timers.anyAuthenticatedPacketReceived();
      },
    });
  }
  if (dataReceived !== undefined) steps.push({ at: dataReceived, order: 1, apply: (t) => timers.dataReceived(t) });
  if (sent !== undefined) {
    steps.push({
      at: sent,
      order: 2,
      apply: (t) => {
        timers.anyAuthenticatedPacketTraversal(t);
        timers.anyAuthenticatedPacketSent();
      },
    });
  }
  if (dataSent !== undefined) steps.push({ at: dataSent, order: 3, apply: (t) => timers.dataSent(t) });
  steps.sort((x, y) => x.at - y.at || x.order - y.order);
  for (const step of steps) step.apply(step.at);
  return { sent: sent !== undefined, received: received !== undefined };
}
