/**
 * The seam between a UDP socket that carries WireGuard and the ICE agents that share it: the
 * socket hands up what is STUN or TURN ChannelData (see classify.ts) and sends what the agents
 * give it from the same port, so the peer, the NAT and the firewall learn one port.
 */

/** Called for each STUN or ChannelData datagram received on the socket. */
export type PacketListener = (data: Uint8Array, address: string, port: number) => void;

export interface PacketSocket {
  /** The bound port, or null while the socket is closed. */
  readonly localPort: number | null;
  /** Which address families the socket can send to now. */
  reachableFamilies(): { ipv4: boolean; ipv6: boolean };
  /** Sends one datagram; failures are counted by the socket, never thrown (UDP may lose it anyway). */
  sendPacket(data: Uint8Array, address: string, port: number): void;
  /** STUN and ChannelData datagrams from now on; returns a function that unsubscribes. */
  onPacket(listener: PacketListener): () => void;
}
