/**
 * Sealed envelopes: a signaling payload encrypted and authenticated from one WireGuard static key
 * to another, so a signaling service only ever sees opaque blobs addressed by public key.
 *
 * Wire format, version 1 (all integers big-endian):
 *
 *   offset  size  field
 *        0     1  version (1)
 *        1    32  sender public key
 *       33    32  receiver public key
 *       65     6  timestamp, ms since the Unix epoch (48 bits)
 *       71     2  sequence within that millisecond
 *       73    24  nonce (random)
 *       97   n+16 XChaCha20-Poly1305(key, nonce, payload, ad = bytes 0..96)
 *
 * Keys: with S = X25519(own private, peer public) and lo/hi the two public keys in byte order,
 *   (k_lo→hi, k_hi→lo) = KDF2(HASH("tswg signaling v1"), S || lo || hi)
 * using WireGuard's HMAC-BLAKE2s KDF, one key per direction. The nonce is random (XChaCha's 192
 * bits make collisions negligible), so no nonce state has to survive restarts.
 *
 * Static-static keys give no forward secrecy: whoever later learns either private key can read
 * recorded signaling. What it carries (ICE credentials and candidate addresses) is short-lived.
 */
import { randomFillSync } from "node:crypto";
import {
  AEAD_TAG_LENGTH,
  KEY_LENGTH,
  XAEAD_NONCE_LENGTH,
  concatBytes,
  constantTimeEqual,
  defaultBackend,
  kdf2,
  keyToHex,
  wipe,
  type CryptoBackend,
} from "../crypto/index.js";
import { compareCounters, ReplayWindow, type Counter } from "./replay-window.js";

export const ENVELOPE_VERSION = 1;
export const ENVELOPE_HEADER_LENGTH = 1 + KEY_LENGTH + KEY_LENGTH + 6 + 2 + XAEAD_NONCE_LENGTH;
/** Bytes an envelope adds to its payload. */
export const ENVELOPE_OVERHEAD = ENVELOPE_HEADER_LENGTH + AEAD_TAG_LENGTH;

const LABEL = new TextEncoder().encode("tswg signaling v1");
const OFF_SENDER = 1;
const OFF_RECEIVER = OFF_SENDER + KEY_LENGTH;
const OFF_TIMESTAMP = OFF_RECEIVER + KEY_LENGTH;
const OFF_SEQUENCE = OFF_TIMESTAMP + 6;
const OFF_NONCE = OFF_SEQUENCE + 2;
const MAX_TIMESTAMP = 2 ** 48 - 1;
const MAX_SEQUENCE = 0xffff;

export const DEFAULT_MAX_CLOCK_SKEW_MS = 5 * 60_000;
export const DEFAULT_REORDER_WINDOW_MS = 10_000;

export interface EnvelopeHeader extends Counter {
  version: number;
  sender: Uint8Array;
  receiver: Uint8Array;
  nonce: Uint8Array;
}

/** Why {@link EnvelopeCodec.open} refused an envelope. */
export type EnvelopeDropReason =
  /** Too short to be an envelope. */
  | "malformed"
  /** A format version this code does not speak. */
  | "version"
  /** Addressed to another key. */
  | "wrong-recipient"
  /** From a key that is not a configured peer. */
  | "unknown-sender"
  /** Timestamp too far from this host's clock. */
  | "clock-skew"
  /** Authentication failed: tampered, wrong keys, or a low-order sender key. */
  | "bad-seal"
  /** Counter seen before, or older than the reordering window. */
  | "replay";

export type OpenResult =
  | { ok: true; sender: Uint8Array; plaintext: Uint8Array; timestampMs: number; sequence: number }
  | { ok: false; reason: EnvelopeDropReason; sender: Uint8Array | null };

export interface EnvelopeOptions {
  /** Crypto primitives; default {@link defaultBackend}. */
  backend?: CryptoBackend;
  /** The clock, ms since the epoch. Default Date.now. */
  now?: () => number;
  /** Fills a buffer with random bytes (nonces). Default node:crypto. */
  randomFill?: (buf: Uint8Array) => void;
  /** Envelopes whose timestamp differs from {@link now} by more than this are dropped. Default 5 min. */
  maxClockSkewMs?: number;
  /** How far behind the newest accepted envelope a reordered one may arrive. Default 10 s. */
  reorderWindowMs?: number;
  /** Counters remembered per sender within the reordering window. Default 256. */
  maxTrackedPerSender?: number;
}

/** Reads the clear-text header of an envelope, or null if `blob` cannot be one. Authenticates nothing. */
export function parseEnvelopeHeader(blob: Uint8Array): EnvelopeHeader | null {
  if (!(blob instanceof Uint8Array) || blob.length < ENVELOPE_OVERHEAD) return null;
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  return {
    version: blob[0]!,
    sender: blob.slice(OFF_SENDER, OFF_SENDER + KEY_LENGTH),
    receiver: blob.slice(OFF_RECEIVER, OFF_RECEIVER + KEY_LENGTH),
    timestampMs: view.getUint16(OFF_TIMESTAMP) * 2 ** 32 + view.getUint32(OFF_TIMESTAMP + 2),
    sequence: view.getUint16(OFF_SEQUENCE),
    nonce: blob.slice(OFF_NONCE, OFF_NONCE + XAEAD_NONCE_LENGTH),
  };
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

function requireKey(what: string, key: Uint8Array): void {
  if (!(key instanceof Uint8Array) || key.length !== KEY_LENGTH) throw new TypeError(`${what} must be a ${KEY_LENGTH}-byte key`);
}

interface PairKeys {
  send: Uint8Array;
  receive: Uint8Array;
}

const MAX_CACHED_PEERS = 4096;

function wipeKeys(k: PairKeys): void {
  wipe(k.send);
  wipe(k.receive);
}

/**
 * Seals envelopes from one static key and opens envelopes addressed to it. Holds the per-peer
 * derived keys (cached, so the X25519 is paid once per peer) and per-sender replay state.
 */
export class EnvelopeCodec {
  readonly publicKey: Uint8Array;
  private readonly privateKey: Uint8Array;
  private readonly backend: CryptoBackend;
  private readonly now: () => number;
  private readonly randomFill: (buf: Uint8Array) => void;
  private readonly maxClockSkewMs: number;
  private readonly reorderWindowMs: number;
  private readonly maxTrackedPerSender: number;
  /** Derived keys by peer (hex), oldest first; bounded so a churn of peers cannot grow it. */
  private readonly keys = new Map<string, PairKeys>();
  private readonly windows = new Map<string, ReplayWindow>();
  private last: Counter = { timestampMs: 0, sequence: 0 };

  constructor(privateKey: Uint8Array, opts: EnvelopeOptions = {}) {
    requireKey("private key", privateKey);
    this.backend = opts.backend ?? defaultBackend();
    this.privateKey = privateKey.slice();
    this.publicKey = this.backend.publicKey(this.privateKey);
    this.now = opts.now ?? Date.now;
    this.randomFill = opts.randomFill ?? ((b) => void randomFillSync(b));
    this.maxClockSkewMs = opts.maxClockSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS;
    this.reorderWindowMs = opts.reorderWindowMs ?? DEFAULT_REORDER_WINDOW_MS;
    this.maxTrackedPerSender = opts.maxTrackedPerSender ?? 256;
  }

  /**
   * Seals `plaintext` for `receiver`. Throws on a malformed key, or ZeroSharedSecretError for a
   * low-order receiver key (which no real peer has).
   */
  seal(receiver: Uint8Array, plaintext: Uint8Array): Uint8Array {
    requireKey("receiver", receiver);
    const { send } = this.pairKeys(receiver);
    const counter = this.nextCounter();
    const header = new Uint8Array(ENVELOPE_HEADER_LENGTH);
    const view = new DataView(header.buffer);
    header[0] = ENVELOPE_VERSION;
    header.set(this.publicKey, OFF_SENDER);
    header.set(receiver, OFF_RECEIVER);
    view.setUint16(OFF_TIMESTAMP, Math.floor(counter.timestampMs / 2 ** 32));
    view.setUint32(OFF_TIMESTAMP + 2, counter.timestampMs % 2 ** 32);
    view.setUint16(OFF_SEQUENCE, counter.sequence);
    const nonce = header.subarray(OFF_NONCE, OFF_NONCE + XAEAD_NONCE_LENGTH);
    this.randomFill(nonce);
    const sealed = this.backend.xaeadSeal(send, nonce, plaintext, header);
    return concatBytes(header, sealed);
  }

  /**
   * Authenticates and decrypts an envelope addressed to this key. `isKnownSender` decides which
   * senders are worth the work; the others are refused before any cryptography. Never throws on
   * bad input: the result says why it was refused.
   */
  open(blob: Uint8Array, isKnownSender: (key: Uint8Array) => boolean = () => true): OpenResult {
    const h = parseEnvelopeHeader(blob);
    if (h === null) return { ok: false, reason: "malformed", sender: null };
    if (h.version !== ENVELOPE_VERSION) return { ok: false, reason: "version", sender: null };
    if (!constantTimeEqual(h.receiver, this.publicKey)) return { ok: false, reason: "wrong-recipient", sender: h.sender };
    if (!isKnownSender(h.sender)) return { ok: false, reason: "unknown-sender", sender: h.sender };
    if (Math.abs(h.timestampMs - this.now()) > this.maxClockSkewMs) return { ok: false, reason: "clock-skew", sender: h.sender };
    const senderHex = keyToHex(h.sender);
    const window = this.windows.get(senderHex);
    if (window !== undefined && !window.check(h)) return { ok: false, reason: "replay", sender: h.sender };
    let keys: PairKeys;
    try {
      keys = this.pairKeys(h.sender);
    } catch {
      return { ok: false, reason: "bad-seal", sender: h.sender };
    }
    const plaintext = this.backend.xaeadOpen(keys.receive, h.nonce, blob.subarray(ENVELOPE_HEADER_LENGTH), blob.subarray(0, ENVELOPE_HEADER_LENGTH));
    if (plaintext === null) return { ok: false, reason: "bad-seal", sender: h.sender };
    // Replay state changes only for authentic envelopes, so forgeries cannot push the window.
    let w = window;
    if (w === undefined) {
      w = new ReplayWindow(this.reorderWindowMs, this.maxTrackedPerSender);
      this.windows.set(senderHex, w);
    }
    if (!w.accept(h)) return { ok: false, reason: "replay", sender: h.sender };
    return { ok: true, sender: h.sender, plaintext, timestampMs: h.timestampMs, sequence: h.sequence };
  }

  /** Forgets the cached keys and replay state of `peer` (e.g. when it is removed for good). */
  forget(peer: Uint8Array): void {
    requireKey("peer", peer);
    const hex = keyToHex(peer);
    const k = this.keys.get(hex);
    if (k !== undefined) wipeKeys(k);
    this.keys.delete(hex);
    this.windows.delete(hex);
  }

  /** Wipes the private key and derived keys; the codec is unusable afterwards. */
  destroy(): void {
    wipe(this.privateKey);
    for (const k of this.keys.values()) wipeKeys(k);
    this.keys.clear();
    this.windows.clear();
  }

  private pairKeys(peer: Uint8Array): PairKeys {
    const hex = keyToHex(peer);
    const cached = this.keys.get(hex);
    if (cached !== undefined) return cached;
    const shared = this.backend.dh(this.privateKey, peer);
    const selfIsLo = compareBytes(this.publicKey, peer) <= 0;
    const [lo, hi] = selfIsLo ? [this.publicKey, peer] : [peer, this.publicKey];
    const chainingKey = this.backend.hash(LABEL);
    const input = concatBytes(shared, lo, hi);
    const [loToHi, hiToLo] = kdf2(this.backend, chainingKey, input);
    wipe(shared);
    wipe(input);
    const keys = selfIsLo ? { send: loToHi, receive: hiToLo } : { send: hiToLo, receive: loToHi };
    this.keys.set(hex, keys);
    if (this.keys.size > MAX_CACHED_PEERS) {
      const oldest = this.keys.keys().next();
      if (!oldest.done) this.keys.delete(oldest.value);
    }
    return keys;
  }

  /** The next counter: the clock when it moved on, else one more in the sequence. Never repeats or goes back. */
  private nextCounter(): Counter {
    const now = Math.min(Math.max(Math.floor(this.now()), 0), MAX_TIMESTAMP);
    let next: Counter;
    if (now > this.last.timestampMs) next = { timestampMs: now, sequence: 0 };
    else if (this.last.sequence < MAX_SEQUENCE) next = { timestampMs: this.last.timestampMs, sequence: this.last.sequence + 1 };
    else next = { timestampMs: this.last.timestampMs + 1, sequence: 0 };
    if (compareCounters(next, this.last) <= 0) throw new Error("envelope counter exhausted");
    this.last = next;
    return next;
  }
}
