/**
 * Port sharing with raw sockets: ICE's host and server-reflexive candidates are the WireGuard
 * device's own port (its STUN travels through a {@link RawPacketSocket}), so a direct pair
 * already joins the two devices' ports. Nothing needs rewriting: the device's endpoint for the
 * peer is the remote candidate itself, and WireGuard packets never leave the kernel.
 *
 * Only pairs whose local candidate is on the device's port qualify; a relay pair or a pair on
 * a socket of ICE's own goes through the proxy instead (see port-share.ts).
 */
import type { SelectedPair } from "../ice/agent.js";
import type { PortShare } from "./port-share.js";
import type { RawPacketSocket } from "./raw-socket.js";

/** The endpoint text for an address and port ("a.b.c.d:p" or "[v6]:p"). */
export function endpointText(address: string, port: number): string {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}

export class RawShare implements PortShare {
  readonly mode = "raw";
  private readonly peers = new Set<string>();

  constructor(readonly socket: RawPacketSocket) {}

  /** Why this pair cannot be carried by the device's port directly, or null when it can. */
  unsuitable(pair: SelectedPair): string | null {
    if (pair.local.type === "relay" || pair.remote.type === "relay") return "the pair goes through a TURN relay";
    if (pair.local.port !== this.socket.port) return `the local candidate is on port ${pair.local.port}, not the device's port ${this.socket.port}`;
    return null;
  }

  async attach(peer: string, pair: SelectedPair): Promise<string> {
    const why = this.unsuitable(pair);
    if (why !== null) throw new Error(`raw port sharing cannot carry this pair: ${why}`);
    this.peers.add(peer);
    return endpointText(pair.remote.address, pair.remote.port);
  }

  async detach(peer: string): Promise<void> {
    this.peers.delete(peer);
  }

  /** The socket belongs to the owner that handed it to ICE; only the attachments end here. */
  async close(): Promise<void> {
    this.peers.clear();
  }
}
