/**
 * The transport side of a WireGuard device, shaped after wireguard-go's conn.Bind.
 *
 * A device may hold several Binds at once (UDP, ICE, TCP); every Endpoint knows which Bind
 * created it, so sending to a peer goes to `endpoint.bind`.
 */

export interface Endpoint {
  /** The Bind that parsed or received this endpoint and can send to it. */
  readonly bind: Bind;
  /** Destination as text, as `wg show` prints it: "1.2.3.4:51820" or "[::1]:51820". */
  dstToString(): string;
  /** Destination as bytes (address || port, big-endian), the input of MAC2 cookies. */
  dstToBytes(): Uint8Array;
  /** Destination IP as text without port, or "" when the transport has no IP address. */
  dstIP(): string;
  /**
   * Stable key for maps: equal endpoints give equal keys. Starts with the Bind's kind
   * ("udp:1.2.3.4:51820") so that endpoints of different transports never collide.
   */
  readonly key: string;
}

export interface Received {
  data: Uint8Array;
  endpoint: Endpoint;
}

/** Resolves with a batch of received datagrams, or null once the Bind is closed. */
export type ReceiveFunc = () => Promise<Received[] | null>;

export interface OpenResult {
  receivers: ReceiveFunc[];
  /** The port actually bound (useful when 0 was asked for). */
  port: number;
}

export interface Bind {
  /** Short name: "udp", "ice", "tcp". */
  readonly kind: string;
  /** Opens on `port` (0 = any). Opening an open Bind is an error. */
  open(port: number): Promise<OpenResult>;
  /** Closes; receivers then resolve with null. Idempotent. */
  close(): Promise<void>;
  /** Sets SO_MARK on the sockets where the platform supports it. */
  setMark(mark: number): Promise<void>;
  /** Sends each buffer as one datagram to `endpoint`; `bufs.length <= batchSize()`. */
  send(bufs: Uint8Array[], endpoint: Endpoint): Promise<void>;
  /** Parses an endpoint string ("host:port", "[v6]:port"); throws a clear error if invalid. */
  parseEndpoint(s: string): Endpoint;
  /** Most datagrams a receiver returns and `send` accepts at once. */
  batchSize(): number;
}
