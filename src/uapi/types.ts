/**
 * The data exchanged between the UAPI socket and a device: the state a `get` reports and the
 * change a `set` requests. Plain data only, so a device implements {@link UapiHandler} without
 * knowing anything about the wire format.
 */

/** What `get=1` reports about one peer. */
export interface UapiPeerState {
  publicKey: Uint8Array;
  /** Absent means no pre-shared key (reported as 32 zero bytes, as WireGuard does). */
  presharedKey?: Uint8Array;
  /** The current endpoint as "a.b.c.d:port" or "[v6]:port"; absent when none is known. */
  endpoint?: string;
  /** Seconds between keepalives; 0 = off. */
  persistentKeepalive: number;
  /** Canonical CIDR prefixes ("10.0.0.0/24"), in the order they are to be reported. */
  allowedIps: string[];
  /** Wall-clock time of the last completed handshake in milliseconds since the epoch; 0 = never. */
  lastHandshakeMs: number;
  txBytes: bigint | number;
  rxBytes: bigint | number;
  protocolVersion: 1;
  /**
   * tswg-specific status lines appended to the peer (transport, ICE state, ...). Keys must start
   * with {@link UAPI_EXTRA_PREFIX}; the `wg` tool ignores keys it does not know.
   */
  extra?: Record<string, string>;
}

/** Prefix of tswg's own get-only keys, so they never collide with future standard ones. */
export const UAPI_EXTRA_PREFIX = "tswg_";

/** What `get=1` reports about the device. */
export interface UapiDeviceState {
  /** Absent when the device has no private key. */
  privateKey?: Uint8Array;
  /** The port actually bound; 0 = not listening (not reported). */
  listenPort: number;
  /** 0 = no mark (not reported). */
  fwmark: number;
  peers: UapiPeerState[];
  /** tswg-specific device status (e.g. the data path); see {@link UapiPeerState.extra}. */
  extra?: Record<string, string>;
}

/**
 * Changes to one peer, in the order of the request. Peers are keyed by public key and a request
 * may name the same peer more than once: apply the changes in order.
 *
 * How a device applies one (mirroring the kernel and the reference userspace implementation):
 * - A change naming the device's own public key is ignored.
 * - `remove`: delete the peer if it exists; every other field is to be ignored.
 * - `updateOnly`: if the peer does not exist yet, ignore the whole change (do not create it).
 * - Otherwise create the peer if needed, then apply each field that is present;
 *   `replaceAllowedIps` first clears the peer's prefixes, then `removeAllowedIps` are removed and
 *   `allowedIps` added (the two lists never share a prefix).
 */
export interface UapiPeerChange {
  publicKey: Uint8Array;
  remove: boolean;
  updateOnly: boolean;
  /** null = clear (the request carried the all-zero key); absent = unchanged. */
  presharedKey?: Uint8Array | null;
  /** Normalised "a.b.c.d:port" or "[v6]:port" (with "%zone" inside the brackets if given). */
  endpoint?: string;
  /** Seconds, 0 = off; absent = unchanged. */
  persistentKeepalive?: number;
  replaceAllowedIps: boolean;
  /** Canonical CIDR prefixes (host bits cleared) to add. */
  allowedIps: string[];
  /** Canonical CIDR prefixes to remove (`allowed_ip=-prefix`). */
  removeAllowedIps: string[];
}

/** A parsed `set=1` request. Absent fields are left unchanged. */
export interface UapiSetRequest {
  /** null = remove the private key (the request carried the all-zero key). */
  privateKey?: Uint8Array | null;
  listenPort?: number;
  fwmark?: number;
  /** Remove every existing peer before applying `peers`. */
  replacePeers: boolean;
  peers: UapiPeerChange[];
}

/**
 * The device side of the protocol. `set` throws a {@link UapiError} (from ./error.js) to report a
 * specific errno, e.g. `UapiErrno.PORT_IN_USE` when the listen port cannot be bound; any other
 * exception is reported as `UapiErrno.UNKNOWN`. The server never calls two methods at once.
 */
export interface UapiHandler {
  get(): UapiDeviceState | Promise<UapiDeviceState>;
  set(request: UapiSetRequest): void | Promise<void>;
}
