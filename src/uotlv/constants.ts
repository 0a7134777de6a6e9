/**
 * UoTLV/1 ("UDP over TCP, length + value, version 1"), the protocol of eduVPN's ProxyGuard:
 * an HTTP/1.1 Upgrade, then datagrams as 2-byte big-endian length + payload on the stream.
 * The numbers below are the ones ProxyGuard uses, so both behave alike on the wire and in time.
 */

/** The token in the `Upgrade` header, compared case-insensitively. */
export const UPGRADE_PROTOCOL = "UoTLV/1";

/** Bytes of the length prefix in front of every datagram. */
export const FRAME_HEADER_BYTES = 2;

/**
 * Largest datagram a frame may carry. ProxyGuard reads into a 65536-byte buffer that also
 * holds the prefix, so 65534 is the most it can pass on; a length of 65535 is refused.
 */
export const MAX_DATAGRAM_BYTES = 65534;

/** Largest HTTP head (request or response line plus headers) read before giving up. */
export const MAX_HEAD_BYTES = 16 * 1024;

/** TCP connect, TLS handshake and HTTP upgrade each must finish within this time. */
export const CONNECT_TIMEOUT_MS = 10_000;

/** A connection that has received no bytes for this long is torn down (either side). */
export const IDLE_TIMEOUT_MS = 60_000;

/** Waits between reconnection attempts; the last one repeats without limit. */
export const RECONNECT_DELAYS_MS: readonly number[] = [1_000, 2_000, 4_000, 8_000, 10_000];

/** A connection that lived longer than this resets the waits to the first one. */
export const RECONNECT_RESET_AFTER_MS = 10_000;
