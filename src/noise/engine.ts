/**
 * The WireGuard protocol for one device, with no I/O: a device hands it datagrams and plaintext
 * packets and gets back what to transmit, what to deliver, and which peers were authenticated
 * from which source. Time comes from an injected clock and timers are served by {@link Engine.tick}
 * at {@link Engine.nextDeadline}, so every behaviour can be tested with a fake clock.
 *
 * See docs/protocol.md for the message flow and how a device is meant to drive this class.
 */
import type { CryptoBackend } from "../crypto/backend.js";
import { constantTimeEqual, counterNonce, isZero, wipe } from "../crypto/index.js";
import { RateLimiter } from "../ratelimiter/index.js";
import { after, whitenedFromMillis } from "../tai64n/index.js";
import {
  IDENTIFIER,
  INITIATION_MIN_INTERVAL,
  KEEPALIVE_TIMEOUT,
  KEY_SIZE,
  MAX_STAGED_PACKETS,
  MESSAGE_COOKIE_REPLY,
  MESSAGE_INITIATION,
  MESSAGE_RESPONSE,
  MESSAGE_TRANSPORT,
  PADDING_MULTIPLE,
  REJECT_AFTER_MESSAGES,
  REJECT_AFTER_TIME,
  REKEY_AFTER_MESSAGES,
  REKEY_AFTER_TIME,
  REKEY_TIMEOUT,
  TRANSPORT_HEADER_SIZE,
  UNDER_LOAD_AFTER_TIME,
} from "./constants.js";
import { CookieChecker, cryptoRandom, type RandomBytes } from "./cookie.js";
import { deriveTransportKeys, readInitiation, readResponse, writeInitiation, writeResponse } from "./handshake.js";
import { IndexTable } from "./indextable.js";
import { Keypair } from "./keypair.js";
import {
  encodeInitiation,
  encodeResponse,
  messageType,
  parseCookieReply,
  parseInitiation,
  parseResponse,
  parseTransport,
  writeTransportHeader,
} from "./messages.js";
import { Peer, type PeerHandle } from "./peer.js";

export type { PeerHandle, PeerStats } from "./peer.js";

export interface Clock {
  /** Monotonic milliseconds: drives every timer. */
  now(): number;
  /** Milliseconds since the Unix epoch: only for TAI64N timestamps and `lastHandshakeMs`. */
  wallNow(): number;
}

/**
 * Where a datagram came from. Only needed under load (cookies are bound to the address bytes and
 * the rate limiter counts per IP), so both are methods and are called only then. A Bind
 * endpoint fits as is.
 */
export interface Source {
  dstIP(): string;
  dstToBytes(): Uint8Array;
}

/** A datagram to send: to the peer's current endpoint when `peer` is set, else back to `to`. */
export type Transmit<S extends Source = Source> =
  | { peer: PeerHandle; to?: undefined; data: Uint8Array }
  | { peer?: undefined; to: S; data: Uint8Array };

export type EngineEvent =
  | { type: "handshake-initiated"; peer: PeerHandle; retry: boolean }
  | { type: "handshake-complete"; peer: PeerHandle; role: "initiator" | "responder" }
  | { type: "handshake-gave-up"; peer: PeerHandle; droppedPackets: number }
  | { type: "keys-zeroed"; peer: PeerHandle; droppedPackets: number }
  | { type: "queue-overflow"; peer: PeerHandle; droppedPackets: number };

/** Why a received datagram was dropped; for debug logs and tests. */
export type DropReason =
  | "malformed"
  | "no-private-key"
  | "bad-mac1"
  | "cookie-sent"
  | "rate-limited"
  | "handshake-failed"
  | "replayed-initiation"
  | "initiation-flood"
  | "unknown-index"
  | "bad-cookie-reply"
  | "expired-keypair"
  | "decryption-failed"
  | "replayed-counter"
  | "bad-inner-packet"
  | "internal-error";

export interface Output<S extends Source = Source> {
  /** In order. A device applies {@link Output.authenticated} first: replies go to the new endpoint. */
  transmit: Transmit<S>[];
  /** Decrypted inner IP packets with padding removed. AllowedIPs checks are the device's job. */
  deliver: { peer: PeerHandle; packet: Uint8Array }[];
  /** The peer sent an authenticated message from `src`: the device may roam its endpoint there. */
  authenticated: { peer: PeerHandle; src: S }[];
  events: EngineEvent[];
  dropped: { reason: DropReason; peer?: PeerHandle }[];
}

/** A peer's session keypairs, as an external data path mirrors them. */
export interface SessionKeypairs {
  /** The keypair to send with. */
  readonly current: Keypair | null;
  /** The one it replaced, kept to decrypt packets still in flight. */
  readonly previous: Keypair | null;
  /** The responder's newest keypair, unconfirmed until a packet arrives under it. */
  readonly next: Keypair | null;
}

/** Told whenever a peer's keypairs change: installed, promoted, retired (and wiped) or cleared. */
export type KeypairObserver = (peer: PeerHandle, keypairs: SessionKeypairs) => void;

/**
 * What a data path outside the engine (the native one) did for a peer since its last report:
 * bytes moved and how long ago it last sent and received (any packet, and data packets, i.e.
 * not keepalives). Absent times mean nothing of that kind since the last report.
 */
export interface DataPathActivity {
  txBytes: number;
  rxBytes: number;
  sentAgoMs?: number;
  dataSentAgoMs?: number;
  receivedAgoMs?: number;
  dataReceivedAgoMs?: number;
}

export interface EngineOptions {
  backend: CryptoBackend;
  clock: Clock;
  privateKey?: Uint8Array | null;
  /** CSPRNG for indices, ephemeral-free randomness of cookies; default node:crypto. */
  randomBytes?: RandomBytes;
  /** Uniform in [0, 1), for timer jitter only; default Math.random. */
  random?: () => number;
  /** Tunnel MTU: padding never grows a packet past it. 0 (default) pads to 16 bytes regardless. */
  mtu?: number;
  /** Packets queued per peer while no session exists (oldest dropped first). Default 1024. */
  maxStagedPackets?: number;
  /** Handshake messages per second above which the engine considers itself under load. Default 512. */
  underLoadThreshold?: number;
  /** Per-source limiter for handshakes under load; default a RateLimiter on the engine's clock. */
  rateLimiter?: { allow(ip: string): boolean };
  /** Message-count limits, overridable so tests can reach them. */
  rekeyAfterMessages?: number;
  rejectAfterMessages?: number;
}

export interface AddPeerOptions {
  presharedKey?: Uint8Array | null;
  /** Seconds; 0 (default) is off. */
  persistentKeepalive?: number;
}

/**
 * Handshake traffic since the engine was made, for status and metrics: messages that passed mac1
 * (so were meant for this device), and the cookie replies sent while under load.
 */
export interface HandshakeCounters {
  initiationsReceived: number;
  responsesReceived: number;
  cookieRepliesSent: number;
}

type IndexEntry = { peer: Peer; keypair: Keypair | null };

function newOutput<S extends Source>(): Output<S> {
  return { transmit: [], deliver: [], authenticated: [], events: [], dropped: [] };
}

/** The length of the IP packet at the start of `p`, or -1 when it is not a sane IPv4/IPv6 packet. */
function innerPacketLength(p: Uint8Array): number {
  const version = p[0]! >> 4;
  if (version === 4) {
    if (p.length < 20) return -1;
    const length = (p[2]! << 8) | p[3]!;
    return length < 20 || length > p.length ? -1 : length;
  }
  if (version === 6) {
    if (p.length < 40) return -1;
    const length = ((p[4]! << 8) | p[5]!) + 40;
    return length > p.length ? -1 : length;
  }
  return -1;
}

export class Engine<S extends Source = Source> {
  private readonly backend: CryptoBackend;
  private readonly clock: Clock;
  private readonly randomBytes: RandomBytes;
  private readonly random: () => number;
  private readonly peersById = new Map<string, Peer>();
  private readonly index: IndexTable<IndexEntry>;
  private readonly checker: CookieChecker;
  private readonly limiter: { allow(ip: string): boolean };
  private readonly maxStaged: number;
  private readonly underLoadThreshold: number;
  private readonly rekeyAfterMessages: number;
  private readonly rejectAfterMessages: number;
  private privateKey: Uint8Array | null = null;
  private ownPublicKey: Uint8Array | null = null;
  private forcedUnderLoad: boolean | null = null;
  private loadWindowStart = -Infinity;
  private loadCount = 0;
  private underLoadUntil = -Infinity;
  private readonly counters: HandshakeCounters = { initiationsReceived: 0, responsesReceived: 0, cookieRepliesSent: 0 };
  /** The earliest deadline any peer set since the last scan or take (see takeNewDeadline). */
  private newDeadline: number | undefined;
  private readonly nonce = new Uint8Array(12);
  private keypairObserver: KeypairObserver | null = null;
  /** Peers whose static-static DH is still to be computed (see staticStaticOf). */
  private readonly staticStaticDue = new Set<Peer>();
  /** Tunnel MTU for padding; 0 = pad to 16 regardless. */
  mtu: number;

  constructor(opts: EngineOptions) {
    this.backend = opts.backend;
    this.clock = opts.clock;
    this.randomBytes = opts.randomBytes ?? cryptoRandom;
    this.random = opts.random ?? Math.random;
    this.index = new IndexTable<IndexEntry>(this.randomBytes);
    const now = () => this.clock.now();
    this.checker = new CookieChecker(this.backend, now, this.randomBytes);
    this.limiter = opts.rateLimiter ?? new RateLimiter({ now });
    this.maxStaged = opts.maxStagedPackets ?? MAX_STAGED_PACKETS;
    this.underLoadThreshold = opts.underLoadThreshold ?? 512;
    this.rekeyAfterMessages = opts.rekeyAfterMessages ?? REKEY_AFTER_MESSAGES;
    this.rejectAfterMessages = opts.rejectAfterMessages ?? REJECT_AFTER_MESSAGES;
    this.mtu = opts.mtu ?? 0;
    if (opts.privateKey) this.setPrivateKey(opts.privateKey);
  }

  // ---- configuration -------------------------------------------------------------------------

  get publicKey(): Uint8Array | null {
    return this.ownPublicKey === null ? null : this.ownPublicKey.slice();
  }

  /**
   * Sets (or with null removes) the device's private key. Per-peer precomputations are redone and
   * existing sessions expire for sending (packets in flight are still accepted), so the next
   * packet to each peer starts a fresh handshake. A peer whose key equals the new public key is
   * removed, as a device cannot be its own peer.
   */
  setPrivateKey(key: Uint8Array | null): void {
    if (key !== null && key.length !== KEY_SIZE) throw new RangeError(`private key must be ${KEY_SIZE} bytes`);
    if (key !== null && this.privateKey !== null && constantTimeEqual(key, this.privateKey)) return;
    if (this.privateKey !== null) wipe(this.privateKey);
    this.privateKey = key === null ? null : key.slice();
    this.ownPublicKey = key === null ? null : this.backend.publicKey(key);
    this.checker.setPublicKey(this.ownPublicKey);
    for (const peer of [...this.peersById.values()]) {
      if (this.ownPublicKey !== null && constantTimeEqual(peer.publicKey, this.ownPublicKey)) {
        this.removePeer(peer);
        continue;
      }
      this.precompute(peer);
      this.expireSessions(peer);
    }
  }

  addPeer(publicKey: Uint8Array, opts: AddPeerOptions = {}): PeerHandle {
    if (publicKey.length !== KEY_SIZE) throw new RangeError(`public key must be ${KEY_SIZE} bytes`);
    if (this.ownPublicKey !== null && constantTimeEqual(publicKey, this.ownPublicKey)) {
      throw new Error("a peer cannot have the device's own public key");
    }
    const peer = new Peer(this.backend, publicKey, () => this.clock.now(), this.random);
    if (this.peersById.has(peer.id)) throw new Error(`peer ${peer.id} already exists`);
    peer.timers.onDeadline = (at) => {
      if (this.newDeadline === undefined || at < this.newDeadline) this.newDeadline = at;
    };
    if (opts.presharedKey) peer.presharedKey = opts.presharedKey;
    if (opts.persistentKeepalive) peer.persistentKeepalive = opts.persistentKeepalive;
    this.precompute(peer);
    this.peersById.set(peer.id, peer);
    return peer;
  }

  /** Removes a peer (by handle or public key), wiping its keys. Unknown peers are ignored. */
  removePeer(peer: PeerHandle | Uint8Array): void {
    const p = peer instanceof Uint8Array ? this.lookup(peer) : this.peersById.get(peer.id);
    if (p === undefined || (!(peer instanceof Uint8Array) && p !== peer)) return;
    this.zero(p);
    p.timers.stop();
    if (p.staticStatic !== null) wipe(p.staticStatic);
    this.staticStaticDue.delete(p);
    p.presharedKey = null;
    this.peersById.delete(p.id);
  }

  peer(publicKey: Uint8Array | string): PeerHandle | undefined {
    return typeof publicKey === "string" ? this.peersById.get(publicKey) : this.lookup(publicKey);
  }

  peers(): PeerHandle[] {
    return [...this.peersById.values()];
  }

  /** Forces the under-load state on or off; null returns to the automatic decision. */
  setUnderLoad(value: boolean | null): void {
    this.forcedUnderLoad = value;
  }

  isUnderLoad(): boolean {
    return this.forcedUnderLoad ?? this.clock.now() < this.underLoadUntil;
  }

  /** The mac1/mac2 checks, for a transport that sorts handshake messages before queueing them. */
  handshakeScreen(): { checkMac1(msg: Uint8Array): boolean; checkMac2(msg: Uint8Array, source: Uint8Array): boolean } {
    return { checkMac1: (msg) => this.checker.checkMac1(msg), checkMac2: (msg, source) => this.checker.checkMac2(msg, source) };
  }

  /** A copy of the handshake counters. */
  handshakeCounters(): HandshakeCounters {
    return { ...this.counters };
  }

  /** Wipes every session, handshake and queued packet and stops all timers (device going down). */
  reset(): void {
    for (const peer of this.peersById.values()) {
      this.zero(peer);
      peer.timers.stop();
    }
  }

  // ---- external data path --------------------------------------------------------------------

  /**
   * Registers (or with null removes) the one observer told of every keypair change, so a data
   * path outside the engine can mirror what it needs. It is not told of the keypairs that
   * exist already: read those with {@link keypairsOf}.
   */
  observeKeypairs(observer: KeypairObserver | null): void {
    this.keypairObserver = observer;
  }

  /** A peer's current keypairs. */
  keypairsOf(peer: PeerHandle): SessionKeypairs {
    const p = this.own(peer);
    return { current: p.keypairs.current, previous: p.keypairs.previous, next: p.keypairs.next };
  }

  /** The rejection limit on message counters, which an external data path must apply too. */
  get messageLimit(): number {
    return this.rejectAfterMessages;
  }

  /**
   * An external data path received and authenticated the first packet under the keypair with
   * `localIndex`. When that is still the peer's unconfirmed `next` keypair it becomes current,
   * as if {@link receive} had seen the packet: the handshake completes and queued packets go out.
   */
  confirmKeypair(peer: PeerHandle, localIndex: number): Output<S> {
    const p = this.own(peer);
    const out = newOutput<S>();
    const next = p.keypairs.next;
    if (next === null || next.localIndex !== localIndex) {
      // Stale news (a newer handshake replaced it): let the data path resynchronise.
      this.keypairsChanged(p);
      return out;
    }
    const { dropped } = p.keypairs.received(next);
    if (dropped !== null) this.retire(dropped);
    this.keypairsChanged(p);
    this.handshakeComplete(p, "responder", out);
    this.sendStaged(p, out);
    return out;
  }

  /**
   * Applies what an external data path did for a peer to its timers and byte counters, in the
   * order it happened (to the report's resolution), and asks for a new handshake when the
   * session has grown old, as sending and receiving here would.
   */
  recordActivity(peer: PeerHandle, activity: DataPathActivity): Output<S> {
    const p = this.own(peer);
    const out = newOutput<S>();
    const now = this.clock.now();
    p.stats.txBytes += activity.txBytes;
    p.stats.rxBytes += activity.rxBytes;
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
          p.timers.anyAuthenticatedPacketTraversal(t);
          p.timers.anyAuthenticatedPacketReceived();
        },
      });
    }
    if (dataReceived !== undefined) steps.push({ at: dataReceived, order: 1, apply: (t) => p.timers.dataReceived(t) });
    if (sent !== undefined) {
      steps.push({
        at: sent,
        order: 2,
        apply: (t) => {
          p.timers.anyAuthenticatedPacketTraversal(t);
          p.timers.anyAuthenticatedPacketSent();
        },
      });
    }
    if (dataSent !== undefined) steps.push({ at: dataSent, order: 3, apply: (t) => p.timers.dataSent(t) });
    steps.sort((x, y) => x.at - y.at || x.order - y.order);
    for (const step of steps) step.apply(step.at);
    if (sent !== undefined) this.keepKeyFreshSending(p, now, out);
    if (received !== undefined) this.keepKeyFreshReceiving(p, now, out);
    return out;
  }

  // ---- sending -------------------------------------------------------------------------------

  /**
   * Encrypts `packets` (whole IP packets) for `peer` with its current session, or queues them and
   * starts a handshake when there is none usable.
   */
  send(peer: PeerHandle, packets: Uint8Array[]): Output<S> {
    const p = this.own(peer);
    const out = newOutput<S>();
    for (const packet of packets) p.staged.push(packet);
    this.sendStaged(p, out);
    this.trimStaged(p, out);
    return out;
  }

  /** Sends a keepalive (an empty transport message), starting a handshake when there is no session. */
  sendKeepalive(peer: PeerHandle): Output<S> {
    const out = newOutput<S>();
    this.keepalive(this.own(peer), out);
    return out;
  }

  /** Starts a handshake now, unless one was sent within the last REKEY_TIMEOUT. */
  initiateHandshake(peer: PeerHandle): Output<S> {
    const out = newOutput<S>();
    this.initiate(this.own(peer), false, out);
    return out;
  }

  // ---- timers --------------------------------------------------------------------------------

  /** The earliest time (clock.now() units) at which {@link tick} has work, or undefined. */
  nextDeadline(): number | undefined {
    this.newDeadline = undefined;
    let min: number | undefined;
    for (const peer of this.peersById.values()) {
      const t = peer.timers.nextDeadline();
      if (t !== undefined && (min === undefined || t < min)) min = t;
    }
    return min;
  }

  /**
   * The earliest deadline set since the last call of this or of {@link nextDeadline}, or
   * undefined if none was. Costs nothing per peer: a caller that scanned once with
   * nextDeadline() and keeps a timer at the result only needs to move it earlier when this is
   * earlier (deadlines that go away just make the timer fire early, and rescan).
   */
  takeNewDeadline(): number | undefined {
    const at = this.newDeadline;
    this.newDeadline = undefined;
    return at;
  }

  /** Runs every timer that is due. */
  tick(): Output<S> {
    const out = newOutput<S>();
    const now = this.clock.now();
    for (const peer of [...this.peersById.values()]) {
      for (const action of peer.timers.expire(now)) {
        switch (action) {
          case "retransmit-handshake":
            this.initiate(peer, true, out);
            break;
          case "new-handshake":
            this.initiate(peer, false, out);
            break;
          case "give-up-handshake": {
            const droppedPackets = peer.staged.length;
            peer.staged = [];
            out.events.push({ type: "handshake-gave-up", peer, droppedPackets });
            break;
          }
          case "send-keepalive":
            this.keepalive(peer, out);
            peer.timers.keepaliveSent(now);
            break;
          case "persistent-keepalive":
            this.keepalive(peer, out);
            break;
          case "zero-keys": {
            const droppedPackets = peer.staged.length;
            this.zero(peer);
            out.events.push({ type: "keys-zeroed", peer, droppedPackets });
            break;
          }
        }
      }
    }
    return out;
  }

  // ---- receiving -----------------------------------------------------------------------------

  /** Processes one datagram from `src`. Never throws: bad input is dropped (see `dropped`). */
  receive(datagram: Uint8Array, src: S): Output<S> {
    const out = newOutput<S>();
    try {
      switch (messageType(datagram)) {
        case MESSAGE_TRANSPORT:
          this.receiveTransport(datagram, src, out);
          break;
        case MESSAGE_INITIATION:
          this.receiveInitiation(datagram, src, out);
          break;
        case MESSAGE_RESPONSE:
          this.receiveResponse(datagram, src, out);
          break;
        case MESSAGE_COOKIE_REPLY:
          this.receiveCookieReply(datagram, out);
          break;
        default:
          out.dropped.push({ reason: "malformed" });
      }
    } catch {
      // Every input-dependent failure is handled above; reaching this means a bug, which must
      // still not take the device down.
      out.dropped.push({ reason: "internal-error" });
    }
    return out;
  }

  /**
   * The checks every handshake message passes before any DH work: mac1, and under load a valid
   * mac2 (or a cookie reply instead) and the per-source rate limit. Returns false when dropped.
   */
  private admitHandshake(msg: Uint8Array, sender: number, src: S, out: Output<S>): boolean {
    if (this.privateKey === null) {
      out.dropped.push({ reason: "no-private-key" });
      return false;
    }
    if (!this.checker.checkMac1(msg)) {
      out.dropped.push({ reason: "bad-mac1" });
      return false;
    }
    if (messageType(msg) === MESSAGE_INITIATION) this.counters.initiationsReceived++;
    else this.counters.responsesReceived++;
    if (!this.noteHandshakeLoad()) return true;
    const source = src.dstToBytes();
    if (!this.checker.checkMac2(msg, source)) {
      const reply = this.checker.createReply(msg, sender, source);
      if (reply !== null) {
        out.transmit.push({ to: src, data: reply });
        this.counters.cookieRepliesSent++;
      }
      out.dropped.push({ reason: "cookie-sent" });
      return false;
    }
    if (!this.limiter.allow(src.dstIP())) {
      out.dropped.push({ reason: "rate-limited" });
      return false;
    }
    return true;
  }

  /** Counts a handshake message towards the load estimate; true when under load. */
  private noteHandshakeLoad(): boolean {
    const now = this.clock.now();
    if (now - this.loadWindowStart >= 1000) {
      this.loadWindowStart = now;
      this.loadCount = 0;
    }
    if (++this.loadCount > this.underLoadThreshold) this.underLoadUntil = now + UNDER_LOAD_AFTER_TIME;
    return this.forcedUnderLoad ?? now < this.underLoadUntil;
  }

  private receiveInitiation(datagram: Uint8Array, src: S, out: Output<S>): void {
    const msg = parseInitiation(datagram);
    if (msg === null) return void out.dropped.push({ reason: "malformed" });
    if (!this.admitHandshake(datagram, msg.sender, src, out)) return;
    let peer: Peer | undefined;
    const read = readInitiation(this.backend, {
      prologue: IDENTIFIER,
      localStaticPrivate: this.privateKey!,
      localStaticPublic: this.ownPublicKey!,
      parts: { ephemeral: msg.ephemeral, encryptedStatic: msg.encryptedStatic, encryptedPayload: msg.encryptedTimestamp },
      staticStatic: (remoteStatic) => {
        peer = this.lookup(remoteStatic);
        return peer === undefined ? null : this.staticStaticOf(peer);
      },
    });
    if (read === null || peer === undefined) return void out.dropped.push({ reason: "handshake-failed" });
    const now = this.clock.now();
    const timestamp = read.payload;
    if (peer.lastTimestamp !== null && !after(timestamp, peer.lastTimestamp)) {
      read.state.wipe();
      return void out.dropped.push({ reason: "replayed-initiation", peer });
    }
    if (now - peer.lastInitiationConsumedAt <= INITIATION_MIN_INTERVAL) {
      read.state.wipe();
      return void out.dropped.push({ reason: "initiation-flood", peer });
    }
    peer.lastTimestamp = timestamp.slice();
    peer.lastInitiationConsumedAt = now;
    peer.stats.rxBytes += datagram.length;
    peer.timers.anyAuthenticatedPacketTraversal(now);
    peer.timers.anyAuthenticatedPacketReceived();
    out.authenticated.push({ peer, src });

    // Answer. Our own initiation in flight, if any, is abandoned: the peer's takes its place.
    this.dropHandshake(peer);
    const localIndex = this.index.allocate({ peer, keypair: null });
    const ephemeralPrivate = this.backend.generatePrivateKey();
    let parts;
    try {
      parts = writeResponse(this.backend, {
        state: read.state,
        remoteEphemeral: read.remoteEphemeral,
        remoteStatic: read.remoteStatic,
        ephemeralPrivate,
        presharedKey: peer.handshakePsk,
        payload: new Uint8Array(0),
      });
    } catch {
      // The initiator's ephemeral key is a low-order point: a valid MAC, but unusable.
      this.index.delete(localIndex);
      read.state.wipe();
      return void out.dropped.push({ reason: "handshake-failed", peer });
    } finally {
      wipe(ephemeralPrivate);
    }
    const response = encodeResponse({
      sender: localIndex,
      receiver: msg.sender,
      ephemeral: parts.ephemeral,
      encryptedNothing: parts.encryptedPayload,
    });
    peer.cookies.addMacs(response);
    peer.lastSentHandshakeAt = now;
    const [initiatorToResponder, responderToInitiator] = deriveTransportKeys(read.state);
    read.state.wipe();
    this.installKeypair(
      peer,
      new Keypair(responderToInitiator, initiatorToResponder, localIndex, msg.sender, now, false),
    );
    peer.timers.sessionDerived(now);
    peer.timers.anyAuthenticatedPacketTraversal(now);
    peer.timers.anyAuthenticatedPacketSent();
    this.transmit(peer, response, out);
  }

  private receiveResponse(datagram: Uint8Array, src: S, out: Output<S>): void {
    const msg = parseResponse(datagram);
    if (msg === null) return void out.dropped.push({ reason: "malformed" });
    if (!this.admitHandshake(datagram, msg.sender, src, out)) return;
    const entry = this.index.get(msg.receiver);
    const peer = entry?.peer;
    const pending = peer?.handshake;
    if (peer === undefined || entry!.keypair !== null || !pending || pending.localIndex !== msg.receiver) {
      return void out.dropped.push({ reason: "unknown-index" });
    }
    const read = readResponse(this.backend, {
      state: pending.state,
      localEphemeralPrivate: pending.ephemeralPrivate,
      localStaticPrivate: this.privateKey!,
      presharedKey: peer.handshakePsk,
      parts: { ephemeral: msg.ephemeral, encryptedPayload: msg.encryptedNothing },
    });
    if (read === null) return void out.dropped.push({ reason: "handshake-failed", peer });
    const now = this.clock.now();
    peer.stats.rxBytes += datagram.length;
    out.authenticated.push({ peer, src });
    peer.timers.anyAuthenticatedPacketTraversal(now);
    peer.timers.anyAuthenticatedPacketReceived();
    const [initiatorToResponder, responderToInitiator] = deriveTransportKeys(read.state);
    read.state.wipe();
    // The handshake's index now names the keypair.
    const localIndex = pending.localIndex;
    peer.handshake = null;
    pending.state.wipe();
    wipe(pending.ephemeralPrivate);
    this.installKeypair(
      peer,
      new Keypair(initiatorToResponder, responderToInitiator, localIndex, msg.sender, now, true),
    );
    peer.timers.sessionDerived(now);
    this.handshakeComplete(peer, "initiator", out);
    // Confirms the session to the responder: queued data if there is any, else a keepalive.
    this.keepalive(peer, out);
  }

  private receiveCookieReply(datagram: Uint8Array, out: Output<S>): void {
    const msg = parseCookieReply(datagram);
    if (msg === null) return void out.dropped.push({ reason: "malformed" });
    const entry = this.index.get(msg.receiver);
    if (entry === undefined) return void out.dropped.push({ reason: "unknown-index" });
    if (!entry.peer.cookies.consumeReply(msg)) out.dropped.push({ reason: "bad-cookie-reply", peer: entry.peer });
  }

  private receiveTransport(datagram: Uint8Array, src: S, out: Output<S>): void {
    const msg = parseTransport(datagram);
    if (msg === null) return void out.dropped.push({ reason: "malformed" });
    const entry = this.index.get(msg.receiver);
    const keypair = entry?.keypair;
    if (!keypair) return void out.dropped.push({ reason: "unknown-index" });
    const peer = entry!.peer;
    const now = this.clock.now();
    if (now - keypair.created > REJECT_AFTER_TIME || msg.counter >= this.rejectAfterMessages) {
      return void out.dropped.push({ reason: "expired-keypair", peer });
    }
    this.nonce.fill(0, 0, 4);
    this.nonce.set(msg.counterBytes, 4);
    const plaintext = this.backend.aeadOpen(keypair.receiveKey, this.nonce, msg.sealed);
    if (plaintext === null) return void out.dropped.push({ reason: "decryption-failed", peer });
    if (!keypair.replay.check(msg.counter, this.rejectAfterMessages)) {
      return void out.dropped.push({ reason: "replayed-counter", peer });
    }
    out.authenticated.push({ peer, src });
    const { promoted, dropped } = peer.keypairs.received(keypair);
    if (dropped !== null) this.retire(dropped);
    if (promoted) this.keypairsChanged(peer);
    if (promoted) {
      this.handshakeComplete(peer, "responder", out);
      this.sendStaged(peer, out);
    }
    this.keepKeyFreshReceiving(peer, now, out);
    peer.timers.anyAuthenticatedPacketTraversal(now);
    peer.timers.anyAuthenticatedPacketReceived();
    peer.stats.rxBytes += datagram.length;
    if (plaintext.length === 0) return; // keepalive
    peer.timers.dataReceived(now);
    const length = innerPacketLength(plaintext);
    if (length < 0) return void out.dropped.push({ reason: "bad-inner-packet", peer });
    out.deliver.push({ peer, packet: plaintext.subarray(0, length) });
  }

  // ---- internals -----------------------------------------------------------------------------

  private lookup(publicKey: Uint8Array): Peer | undefined {
    if (publicKey.length !== KEY_SIZE) return undefined;
    return this.peersById.get(Buffer.from(publicKey.buffer, publicKey.byteOffset, KEY_SIZE).toString("base64"));
  }

  /** The engine's own Peer behind a handle; anything else is a programming error. */
  private own(handle: PeerHandle): Peer {
    const peer = this.peersById.get(handle.id);
    if (peer === undefined || peer !== handle) throw new Error("peer does not belong to this engine");
    return peer;
  }

  // ---- static-static DH: computed at a peer's first handshake, so that configuring many peers
  // costs no X25519 each; the lookup is a set membership, whatever the number of peers.
  private precompute(peer: Peer): void {
    if (peer.staticStatic !== null) wipe(peer.staticStatic);
    peer.staticStatic = null;
    this.staticStaticDue.add(peer);
  }

  private staticStaticOf(peer: Peer): Uint8Array | null {
    if (this.privateKey !== null && this.staticStaticDue.delete(peer)) {
      try {
        const ss = this.backend.dh(this.privateKey, peer.publicKey);
        peer.staticStatic = isZero(ss) ? null : ss;
      } catch {
        // A low-order peer key: keep the peer, but it can never complete a handshake.
      }
    }
    return peer.staticStatic;
  }
  // ---- end of static-static DH

  /** After a key change: nothing more is sent with old sessions and a new handshake may start at once. */
  private expireSessions(peer: Peer): void {
    this.dropHandshake(peer);
    peer.lastSentHandshakeAt = -Infinity;
    for (const k of [peer.keypairs.current, peer.keypairs.next]) {
      if (k !== null) k.sendCounter = this.rejectAfterMessages;
    }
  }

  private dropHandshake(peer: Peer): void {
    const hs = peer.handshake;
    if (hs === null) return;
    this.index.delete(hs.localIndex);
    hs.state.wipe();
    wipe(hs.ephemeralPrivate);
    peer.handshake = null;
  }

  private installKeypair(peer: Peer, keypair: Keypair): void {
    this.index.replace(keypair.localIndex, { peer, keypair });
    for (const old of peer.keypairs.install(keypair)) this.retire(old);
    this.keypairsChanged(peer);
  }

  private keypairsChanged(peer: Peer): void {
    const k = peer.keypairs;
    this.keypairObserver?.(peer, { current: k.current, previous: k.previous, next: k.next });
  }

  private retire(keypair: Keypair): void {
    this.index.delete(keypair.localIndex);
    keypair.wipe();
  }

  /** Wipes a peer's keypairs, handshake and queue; the replay timestamp survives. */
  private zero(peer: Peer): void {
    const had = peer.keypairs.clear();
    for (const k of had) this.retire(k);
    if (had.length > 0) this.keypairsChanged(peer);
    this.dropHandshake(peer);
    peer.staged = [];
  }

  private handshakeComplete(peer: Peer, role: "initiator" | "responder", out: Output<S>): void {
    peer.timers.handshakeComplete();
    peer.stats.lastHandshakeMs = this.clock.wallNow();
    out.events.push({ type: "handshake-complete", peer, role });
  }

  private transmit(peer: Peer, data: Uint8Array, out: Output<S>): void {
    peer.stats.txBytes += data.length;
    out.transmit.push({ peer, data });
  }

  /** Sends an initiation unless one went out within REKEY_TIMEOUT or no handshake is possible. */
  private initiate(peer: Peer, retry: boolean, out: Output<S>): void {
    if (!retry) peer.timers.handshakeRetries = 0;
    const now = this.clock.now();
    if (now - peer.lastSentHandshakeAt < REKEY_TIMEOUT) return;
    const staticStatic = this.staticStaticOf(peer);
    if (this.privateKey === null || this.ownPublicKey === null || staticStatic === null) return;
    peer.lastSentHandshakeAt = now;
    this.dropHandshake(peer);
    const ephemeralPrivate = this.backend.generatePrivateKey();
    const { parts, state } = writeInitiation(this.backend, {
      prologue: IDENTIFIER,
      localStaticPublic: this.ownPublicKey,
      remoteStatic: peer.publicKey,
      staticStatic,
      ephemeralPrivate,
      payload: whitenedFromMillis(this.clock.wallNow()),
    });
    const localIndex = this.index.allocate({ peer, keypair: null });
    peer.handshake = { localIndex, state, ephemeralPrivate };
    const msg = encodeInitiation({
      sender: localIndex,
      ephemeral: parts.ephemeral,
      encryptedStatic: parts.encryptedStatic,
      encryptedTimestamp: parts.encryptedPayload,
    });
    peer.cookies.addMacs(msg);
    peer.timers.anyAuthenticatedPacketTraversal(now);
    peer.timers.anyAuthenticatedPacketSent();
    this.transmit(peer, msg, out);
    peer.timers.handshakeInitiated(now);
    out.events.push({ type: "handshake-initiated", peer, retry });
  }

  /** Bounds what waits for a session, dropping the oldest packets first. */
  private trimStaged(peer: Peer, out: Output<S>): void {
    const excess = peer.staged.length - this.maxStaged;
    if (excess > 0) {
      peer.staged.splice(0, excess);
      out.events.push({ type: "queue-overflow", peer, droppedPackets: excess });
    }
  }

  private keepalive(peer: Peer, out: Output<S>): void {
    if (peer.staged.length === 0) peer.staged.push(new Uint8Array(0));
    this.sendStaged(peer, out);
  }

  /** Encrypts and sends the queue with the current keypair, or starts a handshake when it is unusable. */
  private sendStaged(peer: Peer, out: Output<S>): void {
    if (peer.staged.length === 0) return;
    const now = this.clock.now();
    const keypair = peer.keypairs.current;
    if (
      keypair === null ||
      keypair.sendCounter >= this.rejectAfterMessages ||
      now - keypair.created >= REJECT_AFTER_TIME
    ) {
      this.initiate(peer, false, out);
      return;
    }
    let sent = 0;
    let sentData = false;
    while (peer.staged.length > 0) {
      const counter = keypair.counter.take();
      if (counter >= this.rejectAfterMessages) {
        // Exhausted mid-queue: the rest waits for the new session.
        this.initiate(peer, false, out);
        break;
      }
      const packet = peer.staged.shift()!;
      this.transmit(peer, this.seal(keypair, counter, packet), out);
      sent++;
      if (packet.length > 0) sentData = true;
    }
    if (sent === 0) return;
    peer.timers.anyAuthenticatedPacketTraversal(now);
    peer.timers.anyAuthenticatedPacketSent();
    if (sentData) peer.timers.dataSent(now);
    this.keepKeyFreshSending(peer, now, out);
  }

  private seal(keypair: Keypair, counter: number, packet: Uint8Array): Uint8Array {
    let padded = packet.length === 0 ? 0 : Math.ceil(packet.length / PADDING_MULTIPLE) * PADDING_MULTIPLE;
    if (this.mtu > 0 && padded > this.mtu) padded = Math.max(packet.length, this.mtu);
    let plaintext = packet;
    if (padded !== packet.length) {
      plaintext = new Uint8Array(padded);
      plaintext.set(packet);
    }
    const sealed = this.backend.aeadSeal(keypair.sendKey, counterNonce(counter, this.nonce), plaintext);
    const out = new Uint8Array(TRANSPORT_HEADER_SIZE + sealed.length);
    writeTransportHeader(out, keypair.remoteIndex, counter);
    out.set(sealed, TRANSPORT_HEADER_SIZE);
    return out;
  }

  /** The initiator rekeys an old or heavily used session when it sends. */
  private keepKeyFreshSending(peer: Peer, now: number, out: Output<S>): void {
    const k = peer.keypairs.current;
    if (k === null) return;
    if (k.sendCounter > this.rekeyAfterMessages || (k.isInitiator && now - k.created > REKEY_AFTER_TIME)) {
      this.initiate(peer, false, out);
    }
  }

  /**
   * An initiator that only receives would otherwise let its session run out: shortly before
   * REJECT_AFTER_TIME it starts a handshake once.
   */
  private keepKeyFreshReceiving(peer: Peer, now: number, out: Output<S>): void {
    if (peer.timers.sentLastMinuteHandshake) return;
    const k = peer.keypairs.current;
    if (k === null || !k.isInitiator) return;
    if (now - k.created > REJECT_AFTER_TIME - KEEPALIVE_TIMEOUT - REKEY_TIMEOUT) {
      peer.timers.sentLastMinuteHandshake = true;
      this.initiate(peer, false, out);
    }
  }
}
