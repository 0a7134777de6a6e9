/**
 * Protocol constants of WireGuard (whitepaper section 6 and the wire format of section 5.4).
 *
 * Times are in milliseconds because every clock in this code base counts milliseconds.
 */

/** Message types: the first byte of a datagram; the next three bytes must be zero. */
export const MESSAGE_INITIATION = 1;
export const MESSAGE_RESPONSE = 2;
export const MESSAGE_COOKIE_REPLY = 3;
export const MESSAGE_TRANSPORT = 4;

/** Exact datagram sizes of the handshake messages. */
export const INITIATION_SIZE = 148;
export const RESPONSE_SIZE = 92;
export const COOKIE_REPLY_SIZE = 64;
/** Type, receiver index and counter in front of the sealed payload. */
export const TRANSPORT_HEADER_SIZE = 16;
/** Header plus the Poly1305 tag: the size of a keepalive (empty payload). */
export const TRANSPORT_MIN_SIZE = 32;
export const KEEPALIVE_SIZE = TRANSPORT_MIN_SIZE;
/** Inner packets are padded to a multiple of this before sealing. */
export const PADDING_MULTIPLE = 16;

export const KEY_SIZE = 32;
export const TAG_SIZE = 16;
export const MAC_SIZE = 16;
export const TIMESTAMP_SIZE = 12;
export const COOKIE_SIZE = 16;
export const COOKIE_NONCE_SIZE = 24;

const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);

export const CONSTRUCTION = ascii("Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s");
/** WireGuard's Noise prologue. */
export const IDENTIFIER = ascii("WireGuard v1 zx2c4 Jason@zx2c4.com");
export const LABEL_MAC1 = ascii("mac1----");
export const LABEL_COOKIE = ascii("cookie--");

/**
 * The message-count limits exactly as the protocol defines them. Both exceed 2^53, so they are
 * kept as bigint for reference only: counters in this code are JS numbers (exact up to 2^53 - 1),
 * and the limits actually applied are the clamped values below.
 */
export const REKEY_AFTER_MESSAGES_EXACT = 1n << 60n;
export const REJECT_AFTER_MESSAGES_EXACT = (1n << 64n) - (1n << 13n) - 1n;

/**
 * The limits applied to number-valued counters. Reaching 2^53 - 1 messages on one keypair would
 * take 28 years at ten million packets a second, while keypairs live at most three minutes, so
 * clamping changes nothing a peer can observe — and a received counter at or above it (which a
 * float cannot even represent exactly) is simply rejected. Rekeying starts a little earlier so
 * that the order "rekey before reject" of the protocol is preserved.
 */
export const REJECT_AFTER_MESSAGES = Number.MAX_SAFE_INTEGER;
export const REKEY_AFTER_MESSAGES = Number.MAX_SAFE_INTEGER - 2 ** 16;

export const REKEY_AFTER_TIME = 120_000;
export const REJECT_AFTER_TIME = 180_000;
export const REKEY_ATTEMPT_TIME = 90_000;
export const REKEY_TIMEOUT = 5_000;
export const KEEPALIVE_TIMEOUT = 10_000;
export const COOKIE_REFRESH_TIME = 120_000;
/** Retransmissions are delayed by up to this much extra so that peers do not synchronise. */
export const REKEY_TIMEOUT_JITTER_MAX = 333;
/** Handshake retries before giving up: REKEY_ATTEMPT_TIME / REKEY_TIMEOUT. */
export const MAX_HANDSHAKE_RETRIES = REKEY_ATTEMPT_TIME / REKEY_TIMEOUT;
/** Keys and handshake state are wiped after this long without a new handshake. */
export const ZERO_KEYS_AFTER = 3 * REJECT_AFTER_TIME;
/** Initiations from one peer closer together than this are dropped as a flood (50 per second). */
export const INITIATION_MIN_INTERVAL = 20;
/** Once load is detected, handshakes need a cookie for at least this long. */
export const UNDER_LOAD_AFTER_TIME = 1_000;
/** Packets waiting for a session, per peer; the oldest are dropped beyond this. */
export const MAX_STAGED_PACKETS = 1024;
