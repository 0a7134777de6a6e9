/**
 * The WireGuard control plane for one device, with no I/O: handshakes, cookies and timers. A
 * device hands it handshake messages and gets back what to transmit, which peers were
 * authenticated from which source, and which packets to seal; transport data itself is sealed
 * and opened by a data plane (src/dataplane), which installs the keypairs derived here and
 * reports its activity back ({@link Engine.recordActivity}, {@link Engine.confirmKeypair}). Time comes from an injected clock and timers are served by {@link Engine.tick}
 * at {@link Engine.nextDeadline}, so every behaviour can be tested with a fake clock.
 *
 * See docs/protocol.md for the message flow and how a device is meant to drive this class.
 */
import type { CryptoBackend } from "../crypto/backend.js";
import { constantTimeEqual, isZero, wipe } from "../crypto/index.js";
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
  REJECT_AFTER_MESSAGES,
  REJECT_AFTER_TIME,
  REKEY_AFTER_MESSAGES,
  REKEY_AFTER_TIME,
  REKEY_TIMEOUT,
  UNDER_LOAD_AFTER_TIME,
} from "./constants.js";
import { CookieChecker, cryptoRandom, type RandomBytes } from "./cookie.js";
import { deriveTransportKeys, readInitiation, readResponse, writeInitiation, writeResponse } from "./handshake.js";
import { applyActivity, type DataPathActivity } from "./activity.js";
import { newOutput, type Output, type Source } from "./output.js";
import { Sessions, type KeypairObserver, type SessionKeypairs } from "./sessions.js";
import { Keypair } from "./keypair.js";
import {
  encodeInitiation,
  encodeResponse,
  messageType,
  parseCookieReply,
  parseInitiation,
  parseResponse,
} from "./messages.js";
import { Peer, type PeerHandle } from "./peer.js";

export type { PeerHandle, PeerStats } from "./peer.js";
export type { DropReason, EngineEvent, Output, Source, Transmit } from "./output.js";
export type { KeypairObserver, SessionKeypairs } from "./sessions.js";
export type { DataPathActivity } from "./activity.js";

export interface Clock {
  /** Monotonic milliseconds: drives every timer. */
  now(): number;
  /** Milliseconds since the Unix epoch: only for TAI64N timestamps and `lastHandshakeMs`. */
  wallNow(): number;
}

export interface EngineOptions {
  backend: CryptoBackend;
  clock: Clock;
  privateKey?: Uint8Array | null;
  /** CSPRNG for indices, ephemeral-free randomness of cookies; default node:crypto. */
  randomBytes?: RandomBytes;
  /** Uniform in [0, 1), for timer jitter only; default Math.random. */
  random?: () => number;
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

export class Engine<S extends Source = Source> {
  private readonly backend: CryptoBackend;
  private readonly clock: Clock;
  private readonly randomBytes: RandomBytes;
  private readonly random: () => number;
  private readonly peersById = new Map<string, Peer>();
  private readonly sessions: Sessions;
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
  /** Peers whose static-static DH is still to be computed (see staticStaticOf). */
  private readonly staticStaticDue = new Set<Peer>();

  constructor(opts: EngineOptions) {
    this.backend = opts.backend;
    this.clock = opts.clock;
    this.randomBytes = opts.randomBytes ?? cryptoRandom;
    this.random = opts.random ?? Math.random;
    this.sessions = new Sessions(this.randomBytes);
    const now = () => this.clock.now();
    this.checker = new CookieChecker(this.backend, now, this.randomBytes);
    this.limiter = opts.rateLimiter ?? new RateLimiter({ now });
    this.maxStaged = opts.maxStagedPackets ?? MAX_STAGED_PACKETS;
    this.underLoadThreshold = opts.underLoadThreshold ?? 512;
    this.rekeyAfterMessages = opts.rekeyAfterMessages ?? REKEY_AFTER_MESSAGES;
    this.rejectAfterMessages = opts.rejectAfterMessages ?? REJECT_AFTER_MESSAGES;
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
    this.sessions.observer = observer;
  }

  /** A peer's current keypairs. */
  keypairsOf(peer: PeerHandle): SessionKeypairs {
    return this.sessions.slots(this.own(peer));
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
    // Stale news (a newer handshake replaced it) only resynchronises the data plane.
    if (!this.sessions.confirm(p, localIndex)) return out;
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
    const { sent, received } = applyActivity(p.timers, activity, now);
    if (sent) this.keepKeyFreshSending(p, now, out);
    if (received) this.keepKeyFreshReceiving(p, now, out);
    return out;
  }

  // ---- sending -------------------------------------------------------------------------------

  /**
   * Hands `packets` (whole IP packets) to the data plane to seal with the current session
   * ({@link Output.seal}), or queues them and starts a handshake when there is none usable.
   */
  send(peer: PeerHandle, packets: Uint8Array[]): Output<S> {
    const p = this.own(peer);
    const out = newOutput<S>();
    for (const packet of packets) p.staged.push(packet);
    this.sendStaged(p, out);
    this.trimStaged(p, out);
    return out;
  }

  /**
   * The data plane could not seal `packets` (no usable keypair): they wait for the next session
   * and a handshake starts (at most one per REKEY_TIMEOUT).
   */
  queue(peer: PeerHandle, packets: Uint8Array[]): Output<S> {
    const p = this.own(peer);
    const out = newOutput<S>();
    for (const packet of packets) p.staged.push(packet);
    this.trimStaged(p, out);
    this.initiate(p, false, out);
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
          // Transport data is the data plane's.
          out.dropped.push({ reason: "transport-message" });
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
    const localIndex = this.sessions.allocate(peer);
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
      this.sessions.release(localIndex);
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
    this.sessions.install(
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
    const entry = this.sessions.index.get(msg.receiver);
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
    this.sessions.install(
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
    const entry = this.sessions.index.get(msg.receiver);
    if (entry === undefined) return void out.dropped.push({ reason: "unknown-index" });
    if (!entry.peer.cookies.consumeReply(msg)) out.dropped.push({ reason: "bad-cookie-reply", peer: entry.peer });
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
    this.sessions.expireForSending(peer, this.rejectAfterMessages);
  }

  private dropHandshake(peer: Peer): void {
    const hs = peer.handshake;
    if (hs === null) return;
    this.sessions.release(hs.localIndex);
    hs.state.wipe();
    wipe(hs.ephemeralPrivate);
    peer.handshake = null;
  }

  /** Wipes a peer's keypairs, handshake and queue; the replay timestamp survives. */
  private zero(peer: Peer): void {
    this.sessions.clear(peer);
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
    const localIndex = this.sessions.allocate(peer);
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

  /** Hands the queue to the data plane while the current keypair can seal, or starts a handshake. */
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
    out.seal.push({ peer, packets: peer.staged.splice(0) });
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
