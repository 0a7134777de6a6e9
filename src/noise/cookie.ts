/**
 * MAC1/MAC2 and cookie replies: WireGuard's defence against handshake floods (whitepaper 5.4.4, 5.4.7).
 *
 * Every handshake message ends with mac1 and mac2 (16 bytes each). mac1 is keyed by the
 * receiver's public key, so only senders that know it get a responder to do any DH work. When the
 * responder is under load it also requires mac2, keyed by a cookie that proves the sender can
 * receive at its claimed source address; senders without one get a cookie reply instead.
 */
import { randomBytes } from "node:crypto";
import type { CryptoBackend } from "../crypto/backend.js";
import { constantTimeEqual, wipe } from "../crypto/index.js";
import { COOKIE_NONCE_SIZE, COOKIE_REFRESH_TIME, LABEL_COOKIE, LABEL_MAC1, MAC_SIZE } from "./constants.js";
import { type CookieReplyMessage, encodeCookieReply } from "./messages.js";

/** Random bytes; injectable so tests can be deterministic. */
export type RandomBytes = (n: number) => Uint8Array;

/**
 * How many CSPRNG bytes are drawn at once. A call into the CSPRNG costs several microseconds
 * whatever its size, which made it most of a cookie reply's cost (its 24-byte nonce) and so
 * capped the replies a flood could be answered with; small requests are served from a pool.
 */
const POOL_SIZE = 4096;
let pool = new Uint8Array(0);
let poolPos = 0;

/** CSPRNG bytes (node:crypto), requests up to 256 bytes served from a pool that is wiped as used. */
export const cryptoRandom: RandomBytes = (n) => {
  if (n > 256) return new Uint8Array(randomBytes(n));
  if (poolPos + n > pool.length) {
    pool = new Uint8Array(randomBytes(POOL_SIZE));
    poolPos = 0;
  }
  const out = pool.slice(poolPos, poolPos + n);
  pool.fill(0, poolPos, poolPos + n);
  poolPos += n;
  return out;
};

/** The bytes a MAC covers: everything before mac1, or (for mac2) everything before mac2. */
function beforeMac1(msg: Uint8Array): Uint8Array {
  return msg.subarray(0, msg.length - 2 * MAC_SIZE);
}
function beforeMac2(msg: Uint8Array): Uint8Array {
  return msg.subarray(0, msg.length - MAC_SIZE);
}
function mac1Of(msg: Uint8Array): Uint8Array {
  return msg.subarray(msg.length - 2 * MAC_SIZE, msg.length - MAC_SIZE);
}
function mac2Of(msg: Uint8Array): Uint8Array {
  return msg.subarray(msg.length - MAC_SIZE);
}

/** The two keys derived from a public key: mac1 key and cookie-encryption key. */
function macKeys(backend: CryptoBackend, publicKey: Uint8Array): { mac1Key: Uint8Array; cookieKey: Uint8Array } {
  return { mac1Key: backend.hash(LABEL_MAC1, publicKey), cookieKey: backend.hash(LABEL_COOKIE, publicKey) };
}

/** The responder side: validates MACs of messages addressed to this device and makes cookie replies. */
export class CookieChecker {
  private mac1Key: Uint8Array | null = null;
  private cookieKey: Uint8Array | null = null;
  private readonly secret = new Uint8Array(32);
  private secretSetAt = -Infinity;

  constructor(
    private readonly backend: CryptoBackend,
    private readonly now: () => number,
    private readonly random: RandomBytes = cryptoRandom,
  ) {}

  /** Sets (or with null clears) this device's public key, which keys mac1 and the cookie encryption. */
  setPublicKey(publicKey: Uint8Array | null): void {
    if (publicKey === null) {
      this.mac1Key = this.cookieKey = null;
      return;
    }
    const { mac1Key, cookieKey } = macKeys(this.backend, publicKey);
    this.mac1Key = mac1Key;
    this.cookieKey = cookieKey;
  }

  /** True when the handshake message's mac1 is valid for this device's public key. */
  checkMac1(msg: Uint8Array): boolean {
    if (this.mac1Key === null || msg.length < 2 * MAC_SIZE) return false;
    return constantTimeEqual(this.backend.mac(this.mac1Key, beforeMac1(msg)), mac1Of(msg));
  }

  /** True when mac2 is valid for a cookie given to `source` (the address bytes) in this secret's lifetime. */
  checkMac2(msg: Uint8Array, source: Uint8Array): boolean {
    if (msg.length < 2 * MAC_SIZE || this.now() - this.secretSetAt > COOKIE_REFRESH_TIME) return false;
    const cookie = this.backend.mac(this.secret, source);
    const ok = constantTimeEqual(this.backend.mac(cookie, beforeMac2(msg)), mac2Of(msg));
    wipe(cookie);
    return ok;
  }

  /**
   * A cookie reply to handshake message `msg` (whose sender index is `receiver`) from `source`.
   * The cookie secret is renewed when older than COOKIE_REFRESH_TIME. Returns null when this
   * device has no key.
   */
  createReply(msg: Uint8Array, receiver: number, source: Uint8Array): Uint8Array | null {
    if (this.cookieKey === null || msg.length < 2 * MAC_SIZE) return null;
    const now = this.now();
    if (now - this.secretSetAt > COOKIE_REFRESH_TIME) {
      this.secret.set(this.random(32));
      this.secretSetAt = now;
    }
    const cookie = this.backend.mac(this.secret, source);
    const nonce = this.random(COOKIE_NONCE_SIZE);
    const encryptedCookie = this.backend.xaeadSeal(this.cookieKey, nonce, cookie, mac1Of(msg));
    wipe(cookie);
    return encodeCookieReply({ receiver, nonce, encryptedCookie });
  }
}

/** The initiator side, one per peer: adds MACs to outgoing handshake messages, keeps received cookies. */
export class CookieGenerator {
  private readonly mac1Key: Uint8Array;
  private readonly cookieKey: Uint8Array;
  private lastMac1: Uint8Array | null = null;
  private cookie: Uint8Array | null = null;
  private cookieSetAt = -Infinity;

  constructor(
    private readonly backend: CryptoBackend,
    peerPublicKey: Uint8Array,
    private readonly now: () => number,
  ) {
    ({ mac1Key: this.mac1Key, cookieKey: this.cookieKey } = macKeys(backend, peerPublicKey));
  }

  /** Fills mac1 (and mac2 when a fresh cookie is held) of an outgoing handshake message in place. */
  addMacs(msg: Uint8Array): void {
    const mac1 = this.backend.mac(this.mac1Key, beforeMac1(msg));
    mac1Of(msg).set(mac1);
    this.lastMac1 = mac1;
    const mac2 = mac2Of(msg);
    if (this.cookie !== null && this.now() - this.cookieSetAt <= COOKIE_REFRESH_TIME) {
      mac2.set(this.backend.mac(this.cookie, beforeMac2(msg)));
    } else {
      mac2.fill(0);
    }
  }

  /**
   * Accepts a cookie reply; it must be sealed for the mac1 of the message this generator sent
   * last, which is what stops spoofed replies. Returns false (changing nothing) otherwise.
   */
  consumeReply(reply: CookieReplyMessage): boolean {
    if (this.lastMac1 === null) return false;
    let cookie: Uint8Array | null;
    try {
      cookie = this.backend.xaeadOpen(this.cookieKey, reply.nonce, reply.encryptedCookie, this.lastMac1);
    } catch {
      return false;
    }
    if (cookie === null || cookie.length !== MAC_SIZE) return false;
    if (this.cookie !== null) wipe(this.cookie);
    this.cookie = cookie;
    this.cookieSetAt = this.now();
    return true;
  }

  /** True while a received cookie is fresh enough to be used for mac2. */
  hasCookie(): boolean {
    return this.cookie !== null && this.now() - this.cookieSetAt <= COOKIE_REFRESH_TIME;
  }
}
