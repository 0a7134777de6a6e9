/**
 * WireGuard's per-peer timer state machine (whitepaper section 6), as pure logic.
 *
 * The engine reports protocol events (packet sent, handshake complete, ...) with the current
 * time; this class turns them into deadlines and, when asked with {@link PeerTimers.expire},
 * into actions for the engine to carry out. No real timers are involved, so a device schedules a
 * single timeout at the earliest {@link PeerTimers.nextDeadline} over all peers.
 */
import {
  KEEPALIVE_TIMEOUT,
  MAX_HANDSHAKE_RETRIES,
  REKEY_TIMEOUT,
  REKEY_TIMEOUT_JITTER_MAX,
  ZERO_KEYS_AFTER,
} from "./constants.js";

export type TimerAction =
  /** No response to our initiation within REKEY_TIMEOUT: send another one. */
  | "retransmit-handshake"
  /** Still no response after MAX_HANDSHAKE_RETRIES retries: drop queued packets, stop trying. */
  | "give-up-handshake"
  /** We received data and sent nothing back for KEEPALIVE_TIMEOUT. */
  | "send-keepalive"
  /** We sent data and heard nothing for KEEPALIVE_TIMEOUT + REKEY_TIMEOUT: the session may be dead. */
  | "new-handshake"
  /** No new session for 3 × REJECT_AFTER_TIME: wipe all keys and handshake state. */
  | "zero-keys"
  /** The persistent-keepalive interval passed without any authenticated packet in either direction. */
  | "persistent-keepalive";

export class PeerTimers {
  private retransmitAt: number | undefined;
  private keepaliveAt: number | undefined;
  private newHandshakeAt: number | undefined;
  private zeroKeysAt: number | undefined;
  private persistentAt: number | undefined;
  private needAnotherKeepalive = false;

  /** Retries of the current handshake so far. */
  handshakeRetries = 0;
  /** Set once the receive side has asked for a rekey shortly before REJECT_AFTER_TIME. */
  sentLastMinuteHandshake = false;
  /** Persistent keepalive interval in ms; 0 turns it off. */
  persistentKeepaliveInterval = 0;

  /**
   * Told every deadline as it is set, so the owner can keep one timer for all peers without
   * scanning them all after each packet.
   */
  onDeadline: ((at: number) => void) | null = null;

  /** @param random uniform in [0, 1), for the retransmission jitter. */
  constructor(private readonly random: () => number = Math.random) {}

  private due(at: number): number {
    this.onDeadline?.(at);
    return at;
  }

  private jitter(): number {
    return Math.floor(this.random() * REKEY_TIMEOUT_JITTER_MAX);
  }

  /** An authenticated data packet (not a keepalive) was sent. */
  dataSent(now: number): void {
    if (this.newHandshakeAt === undefined) {
      this.newHandshakeAt = this.due(now + KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + this.jitter());
    }
  }

  /** An authenticated data packet (not a keepalive) was received. */
  dataReceived(now: number): void {
    if (this.keepaliveAt === undefined) this.keepaliveAt = this.due(now + KEEPALIVE_TIMEOUT);
    else this.needAnotherKeepalive = true;
  }

  /** Any authenticated packet (data, keepalive or handshake) was sent: it answers the peer. */
  anyAuthenticatedPacketSent(): void {
    this.keepaliveAt = undefined;
  }

  /** Any authenticated packet was received: the peer is alive. */
  anyAuthenticatedPacketReceived(): void {
    this.newHandshakeAt = undefined;
  }

  /** Any authenticated packet went either way: restarts the persistent-keepalive interval. */
  anyAuthenticatedPacketTraversal(now: number): void {
    this.persistentAt = this.persistentKeepaliveInterval > 0 ? this.due(now + this.persistentKeepaliveInterval) : undefined;
  }

  /** A handshake initiation was sent. */
  handshakeInitiated(now: number): void {
    this.retransmitAt = this.due(now + REKEY_TIMEOUT + this.jitter());
  }

  /** A handshake completed (response received, or first data on the responder's new keypair). */
  handshakeComplete(): void {
    this.retransmitAt = undefined;
    this.handshakeRetries = 0;
    this.sentLastMinuteHandshake = false;
  }

  /** New session keys were derived. */
  sessionDerived(now: number): void {
    this.zeroKeysAt = this.due(now + ZERO_KEYS_AFTER);
  }

  /**
   * Called after the keepalive of a "send-keepalive" action went out: when more data arrived while
   * that timer was pending, another keepalive is scheduled.
   */
  keepaliveSent(now: number): void {
    if (this.needAnotherKeepalive) {
      this.needAnotherKeepalive = false;
      this.keepaliveAt = this.due(now + KEEPALIVE_TIMEOUT);
    }
  }

  /** Changes the persistent keepalive; a running interval is rescheduled (or cancelled) from `now`. */
  setPersistentKeepalive(intervalMs: number, now: number): void {
    this.persistentKeepaliveInterval = intervalMs;
    if (intervalMs <= 0) this.persistentAt = undefined;
    else if (this.persistentAt !== undefined) this.persistentAt = this.due(now + intervalMs);
  }

  /** Cancels everything (peer removed or keys changed). */
  stop(): void {
    this.retransmitAt = this.keepaliveAt = this.newHandshakeAt = this.zeroKeysAt = this.persistentAt = undefined;
    this.needAnotherKeepalive = false;
    this.handshakeRetries = 0;
    this.sentLastMinuteHandshake = false;
  }

  /** The earliest pending deadline, or undefined when nothing is pending. */
  nextDeadline(): number | undefined {
    let min: number | undefined;
    for (const t of [this.retransmitAt, this.keepaliveAt, this.newHandshakeAt, this.zeroKeysAt, this.persistentAt]) {
      if (t !== undefined && (min === undefined || t < min)) min = t;
    }
    return min;
  }

  /** Fires every deadline at or before `now` and returns the resulting actions in a fixed order. */
  expire(now: number): TimerAction[] {
    const actions: TimerAction[] = [];
    if (this.retransmitAt !== undefined && this.retransmitAt <= now) {
      this.retransmitAt = undefined;
      if (this.handshakeRetries >= MAX_HANDSHAKE_RETRIES) {
        this.keepaliveAt = undefined;
        // Wipe whatever is left of the failed exchange eventually, unless a wipe is already due.
        if (this.zeroKeysAt === undefined) this.zeroKeysAt = this.due(now + ZERO_KEYS_AFTER);
        actions.push("give-up-handshake");
      } else {
        this.handshakeRetries++;
        actions.push("retransmit-handshake");
      }
    }
    if (this.newHandshakeAt !== undefined && this.newHandshakeAt <= now) {
      this.newHandshakeAt = undefined;
      actions.push("new-handshake");
    }
    if (this.keepaliveAt !== undefined && this.keepaliveAt <= now) {
      this.keepaliveAt = undefined;
      actions.push("send-keepalive");
    }
    if (this.persistentAt !== undefined && this.persistentAt <= now) {
      this.persistentAt = undefined;
      if (this.persistentKeepaliveInterval > 0) actions.push("persistent-keepalive");
    }
    if (this.zeroKeysAt !== undefined && this.zeroKeysAt <= now) {
      this.zeroKeysAt = undefined;
      actions.push("zero-keys");
    }
    return actions;
  }
}
