/**
 * Everything the protocol keeps per peer: keys, handshake in progress, keypairs, timers, cookie
 * state, packets waiting for a session, and counters. The engine drives it; devices see only the
 * {@link PeerHandle} view.
 */
import type { CryptoBackend } from "../crypto/backend.js";
import { keyToBase64, wipe } from "../crypto/index.js";
import { KEY_SIZE } from "./constants.js";
import { CookieGenerator } from "./cookie.js";
import { KeypairSlots } from "./keypair.js";
import type { SymmetricState } from "./symmetric.js";
import { PeerTimers } from "./timers.js";

export interface PeerStats {
  /** Bytes of authenticated datagrams received from the peer (handshake and transport). */
  rxBytes: number;
  /** Bytes of datagrams produced for the peer. */
  txBytes: number;
  /** Wall-clock ms (since the epoch) of the last completed handshake; 0 when none. */
  lastHandshakeMs: number;
}

/** What a device sees of a peer. */
export interface PeerHandle {
  readonly publicKey: Uint8Array;
  /** The public key in base64, as `wg` prints it; also the map key. */
  readonly id: string;
  readonly stats: Readonly<PeerStats>;
  /** 32 bytes, or null for none (the protocol then mixes in 32 zero bytes). */
  presharedKey: Uint8Array | null;
  /** Persistent keepalive interval in seconds; 0 turns it off. */
  persistentKeepalive: number;
}

/** The initiator's half-finished handshake, kept until the response arrives. */
export interface PendingHandshake {
  localIndex: number;
  state: SymmetricState;
  ephemeralPrivate: Uint8Array;
}

export class Peer implements PeerHandle {
  readonly publicKey: Uint8Array;
  readonly id: string;
  readonly stats: PeerStats = { rxBytes: 0, txBytes: 0, lastHandshakeMs: 0 };
  /** DH(our static, their static); null without a private key or for a low-order peer key. */
  staticStatic: Uint8Array | null = null;
  handshake: PendingHandshake | null = null;
  /** The newest initiation timestamp accepted from this peer (replay protection; survives zeroing). */
  lastTimestamp: Uint8Array | null = null;
  lastInitiationConsumedAt = -Infinity;
  lastSentHandshakeAt = -Infinity;
  readonly keypairs = new KeypairSlots();
  readonly timers: PeerTimers;
  readonly cookies: CookieGenerator;
  /** Plaintext packets waiting for a usable keypair; an empty one stands for a keepalive. */
  staged: Uint8Array[] = [];
  private psk = new Uint8Array(KEY_SIZE);
  private hasPsk = false;
  private keepaliveSeconds = 0;

  constructor(
    backend: CryptoBackend,
    publicKey: Uint8Array,
    private readonly now: () => number,
    random: () => number,
  ) {
    this.publicKey = publicKey.slice();
    this.id = keyToBase64(this.publicKey);
    this.timers = new PeerTimers(random);
    this.cookies = new CookieGenerator(backend, this.publicKey, now);
  }

  get presharedKey(): Uint8Array | null {
    return this.hasPsk ? this.psk.slice() : null;
  }

  set presharedKey(key: Uint8Array | null) {
    if (key !== null && key.length !== KEY_SIZE) throw new RangeError(`preshared key must be ${KEY_SIZE} bytes`);
    wipe(this.psk);
    if (key !== null) this.psk.set(key);
    this.hasPsk = key !== null;
  }

  /** The key the handshake mixes in: the PSK, or 32 zero bytes. */
  get handshakePsk(): Uint8Array {
    return this.psk;
  }

  get persistentKeepalive(): number {
    return this.keepaliveSeconds;
  }

  set persistentKeepalive(seconds: number) {
    if (!Number.isInteger(seconds) || seconds < 0 || seconds > 65535) {
      throw new RangeError("persistent keepalive must be an integer number of seconds in 0..65535");
    }
    this.keepaliveSeconds = seconds;
    this.timers.setPersistentKeepalive(seconds * 1000, this.now());
  }
}
