/**
 * The channel ICE agents talk through: every message is sealed end to end for one configured peer
 * (see envelope.ts) and sent over any {@link SignalingTransport}; what arrives is delivered only
 * when it is an authentic, fresh, well-formed message from a configured peer. Everything else is
 * dropped and counted; nothing a remote party sends can make this throw.
 */
import { EventEmitter } from "node:events";
import { KEY_LENGTH, keyToBase64, keyToHex } from "../crypto/index.js";
import { silentLogger, type Logger } from "../log/logger.js";
import { EnvelopeCodec, ENVELOPE_OVERHEAD, type EnvelopeDropReason, type EnvelopeOptions } from "./envelope.js";
import { SignalingClosedError } from "./errors.js";
import { decodeMessage, encodeMessage, MAX_MESSAGE_BYTES } from "./message.js";
import type { SignalingChannel, SignalingMessage, SignalingTransport } from "./types.js";

/** Why the channel dropped an incoming blob. */
export type ChannelDropReason = EnvelopeDropReason | "oversized" | "bad-message";

export const CHANNEL_DROP_REASONS: readonly ChannelDropReason[] = [
  "oversized",
  "malformed",
  "version",
  "wrong-recipient",
  "unknown-sender",
  "clock-skew",
  "bad-seal",
  "replay",
  "bad-message",
];

/** Largest blob the channel sends or accepts: a maximal message in its envelope. */
export const MAX_BLOB_BYTES = MAX_MESSAGE_BYTES + ENVELOPE_OVERHEAD;

export interface SealedChannelOptions extends EnvelopeOptions {
  /** This host's WireGuard private key. */
  privateKey: Uint8Array;
  /** Carries the sealed blobs; the channel owns it and closes it on close(). */
  transport: SignalingTransport;
  /** Public keys of the peers whose messages are accepted (see {@link SealedChannel.setPeers}). */
  peers?: Iterable<Uint8Array>;
  logger?: Logger;
}

export interface ChannelStats {
  sent: number;
  received: number;
  delivered: number;
  dropped: Record<ChannelDropReason, number>;
}

export type MessageListener = (from: Uint8Array, msg: SignalingMessage) => void;
/** `sender` is the claimed sender from the clear-text header (not authenticated), or null if unreadable. */
export type DropListener = (reason: ChannelDropReason, sender: Uint8Array | null) => void;

export class SealedChannel implements SignalingChannel {
  readonly publicKey: Uint8Array;
  readonly transport: SignalingTransport;
  private readonly codec: EnvelopeCodec;
  private readonly log: Logger;
  private readonly events = new EventEmitter();
  private peers = new Set<string>();
  private started = false;
  private isClosed = false;
  private readonly counters: ChannelStats;

  constructor(opts: SealedChannelOptions) {
    this.codec = new EnvelopeCodec(opts.privateKey, opts);
    this.publicKey = this.codec.publicKey;
    this.transport = opts.transport;
    this.log = opts.logger ?? silentLogger;
    const dropped = Object.fromEntries(CHANNEL_DROP_REASONS.map((r) => [r, 0])) as Record<ChannelDropReason, number>;
    this.counters = { sent: 0, received: 0, delivered: 0, dropped };
    if (opts.peers !== undefined) this.setPeers([...opts.peers]);
  }

  /** Opens the transport (subscribes to this key). Rejects as the transport's open() does. */
  async start(): Promise<void> {
    if (this.isClosed) throw new SignalingClosedError("signaling channel is closed");
    if (this.started) throw new Error("signaling channel already started");
    this.started = true;
    await this.transport.open(this.publicKey, (blob) => this.receive(blob));
  }

  /** True while the transport is connected. */
  get connected(): boolean {
    return this.transport.connected;
  }

  /** Seals and sends. Throws if `to` is not a configured peer, the message is invalid, or the transport fails. */
  async send(to: Uint8Array, msg: SignalingMessage): Promise<void> {
    if (this.isClosed) throw new SignalingClosedError("signaling channel is closed");
    if (!this.hasPeer(to)) throw new Error(`signaling: ${describeKey(to)} is not a configured peer`);
    const blob = this.codec.seal(to, encodeMessage(msg));
    await this.transport.send(to, blob);
    this.counters.sent++;
  }

  on(event: "message", listener: MessageListener): this;
  on(event: "drop", listener: DropListener): this;
  on(event: "connected" | "disconnected", listener: () => void): this;
  on(event: string, listener: MessageListener | DropListener | (() => void)): this {
    if (event === "connected" || event === "disconnected") this.transport.on(event, listener as () => void);
    else this.events.on(event, listener);
    return this;
  }

  off(event: "message", listener: MessageListener): this;
  off(event: "drop", listener: DropListener): this;
  off(event: string, listener: MessageListener | DropListener): this {
    this.events.off(event, listener);
    return this;
  }

  /** Replaces the set of peers whose messages are accepted and who may be sent to. Own key is ignored. */
  setPeers(publicKeys: Uint8Array[]): void {
    const next = new Set<string>();
    for (const k of publicKeys) {
      if (!(k instanceof Uint8Array) || k.length !== KEY_LENGTH) throw new TypeError(`peer public keys must be ${KEY_LENGTH} bytes`);
      next.add(keyToHex(k));
    }
    next.delete(keyToHex(this.publicKey));
    this.peers = next;
  }

  hasPeer(publicKey: Uint8Array): boolean {
    return publicKey instanceof Uint8Array && publicKey.length === KEY_LENGTH && this.peers.has(keyToHex(publicKey));
  }

  /** Counters since creation (a copy). */
  get stats(): ChannelStats {
    return { ...this.counters, dropped: { ...this.counters.dropped } };
  }

  /** Closes the transport and forgets key material. */
  async close(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    this.events.removeAllListeners();
    try {
      await this.transport.close();
    } finally {
      this.codec.destroy();
    }
  }

  private receive(blob: Uint8Array): void {
    if (this.isClosed) return;
    this.counters.received++;
    if (!(blob instanceof Uint8Array) || blob.length > MAX_BLOB_BYTES) {
      this.drop("oversized", null);
      return;
    }
    const opened = this.codec.open(blob, (k) => this.peers.has(keyToHex(k)));
    if (!opened.ok) {
      this.drop(opened.reason, opened.sender);
      return;
    }
    const msg = decodeMessage(opened.plaintext);
    if (msg === null) {
      this.drop("bad-message", opened.sender);
      return;
    }
    this.counters.delivered++;
    for (const l of this.events.listeners("message")) {
      try {
        (l as MessageListener)(opened.sender, msg);
      } catch (err) {
        this.log.warn(`signaling message listener failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }

  private drop(reason: ChannelDropReason, sender: Uint8Array | null): void {
    this.counters.dropped[reason]++;
    if (this.log.enabled("debug")) this.log.debug(`signaling: dropped a blob (${reason})${sender ? ` claiming to be from ${describeKey(sender)}` : ""}`);
    for (const l of this.events.listeners("drop")) {
      try {
        (l as DropListener)(reason, sender);
      } catch {
        // diagnostics only
      }
    }
  }
}

function describeKey(k: Uint8Array): string {
  try {
    return keyToBase64(k);
  } catch {
    return "an invalid key";
  }
}
