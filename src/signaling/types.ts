/**
 * Signaling: how two peers that know only each other's WireGuard public key exchange ICE
 * credentials and candidates.
 *
 * Two layers:
 * - a {@link SignalingTransport} moves opaque blobs addressed by public key (a WebSocket
 *   server, NATS, or an in-process hub); it never sees what is inside;
 * - a {@link SignalingChannel} seals every {@link SignalingMessage} end to end with the sender's
 *   and receiver's static X25519 keys, and drops anything from a key that is not a configured peer,
 *   anything that fails authentication, and replays.
 *
 * Nothing here depends on the WireGuard device: the same channel serves the userspace device and
 * the kernel module.
 */

/** What peers tell each other. `generation` counts ICE restarts of the sender's agent for that peer. */
export type SignalingMessage =
  | {
      type: "credentials";
      generation: number;
      ufrag: string;
      pwd: string;
    }
  | {
      type: "candidate";
      generation: number;
      /**
       * An ICE candidate line as werift's `Candidate.toSdp()` writes it (an optional "candidate:"
       * prefix is allowed), or null for end-of-candidates. Printable ASCII, at most 1024 characters.
       */
      candidate: string | null;
    }
  | {
      /** Asks the receiver to restart ICE for this pair (e.g. its consent checks failed). */
      type: "restart";
      generation: number;
    };

/** Moves sealed blobs between public keys. Keys are 32-byte X25519 public keys. */
export interface SignalingTransport {
  /**
   * Starts receiving blobs addressed to `self`; resolves once subscribed. Rejects if the service
   * is not reachable within the transport's connect timeout — the transport then keeps trying in
   * the background and emits "connected" when it gets through, until close().
   */
  open(self: Uint8Array, onBlob: (blob: Uint8Array) => void): Promise<void>;
  /**
   * Sends a blob to `to`. Resolves when handed to the service; delivery is not guaranteed. While
   * disconnected it waits a few seconds for the connection to return, then rejects
   * (SignalingUnavailableError); callers retry.
   */
  send(to: Uint8Array, blob: Uint8Array): Promise<void>;
  /** True while connected to the service; transports reconnect by themselves. */
  readonly connected: boolean;
  /** "connected" / "disconnected" events for logs and status. */
  on(event: "connected" | "disconnected", listener: () => void): this;
  /**
   * Optional: drop the connection and dial again now, because the network changed (a connection
   * from an address that is gone would otherwise be noticed dead only after its ping timeout).
   */
  reconnectNow?(): void;
  close(): Promise<void>;
}

/** The sealed, authenticated, peer-filtered channel that ICE agents use. */
export interface SignalingChannel {
  /** Seals and sends. Throws if `to` is not a configured peer. */
  send(to: Uint8Array, msg: SignalingMessage): Promise<void>;
  /** Authenticated messages from configured peers only. */
  on(event: "message", listener: (from: Uint8Array, msg: SignalingMessage) => void): this;
  /** The connection to the signaling service is (back) up: messages sent while it broke may be lost. */
  on(event: "connected", listener: () => void): this;
  /** Replaces the set of peers whose messages are accepted. */
  setPeers(publicKeys: Uint8Array[]): void;
  close(): Promise<void>;
}
