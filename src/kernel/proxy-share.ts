/**
 * Port sharing by proxy: per peer a UDP socket on loopback, connected to the WireGuard device's
 * port. The device's endpoint for the peer is that socket; what the device sends to it goes to
 * the peer's ICE path, and what ICE receives from the peer is sent from it to the device.
 *
 * Flow, device to peer: 1. the device sends to 127.0.0.1:<proxy port>; 2. the socket's message
 * handler hands the datagram to the ICE manager for the peer. Peer to device: 1. the manager's
 * data callback names the peer; 2. the peer's socket sends the datagram to the device's port.
 * The socket stays while the peer exists, so a pair change needs no endpoint change.
 */
import dgram from "node:dgram";
import type { SelectedPair } from "../ice/agent.js";
import type { PortShare } from "./port-share.js";
import { bindUdp } from "../sockets/ready.js";

export interface ProxyShareOptions {
  /** The WireGuard device's listen port. */
  listenPort: number;
  /** Sends a datagram to a peer over ICE; false when it was dropped. */
  send(peer: string, data: Uint8Array): boolean;
  /** Socket buffer size in bytes (bursts of WireGuard packets overflow the default). */
  bufferBytes?: number;
}

export interface ProxyStats {
  toPeer: number;
  toDevice: number;
  dropped: number;
}

export class ProxyShare implements PortShare {
  readonly mode = "proxy";
  private readonly sockets = new Map<string, dgram.Socket>();
  private readonly pending = new Map<string, Promise<dgram.Socket>>();
  readonly stats: ProxyStats = { toPeer: 0, toDevice: 0, dropped: 0 };

  constructor(private readonly opts: ProxyShareOptions) {}

  async attach(peer: string, _pair: SelectedPair): Promise<string> {
    const sock = await this.socketFor(peer);
    return `127.0.0.1:${sock.address().port}`;
  }

  /** A datagram ICE received from `peer`: to the device, if the peer is proxied. */
  deliver(peer: string, data: Uint8Array): boolean {
    const sock = this.sockets.get(peer);
    if (sock === undefined) return false;
    sock.send(data, (err) => {
      if (err) this.stats.dropped++;
    });
    this.stats.toDevice++;
    return true;
  }

  has(peer: string): boolean {
    return this.sockets.has(peer);
  }

  async detach(peer: string): Promise<void> {
    const sock = this.sockets.get(peer);
    this.sockets.delete(peer);
    if (sock !== undefined) await new Promise<void>((r) => sock.close(() => r()));
  }

  async close(): Promise<void> {
    await Promise.all([...this.sockets.keys()].map((p) => this.detach(p)));
  }

  private socketFor(peer: string): Promise<dgram.Socket> {
    const have = this.sockets.get(peer);
    if (have !== undefined) return Promise.resolve(have);
    let p = this.pending.get(peer);
    if (p === undefined) {
      p = this.open(peer).finally(() => this.pending.delete(peer));
      this.pending.set(peer, p);
    }
    return p;
  }

  private async open(peer: string): Promise<dgram.Socket> {
    const sock = dgram.createSocket({ type: "udp4" });
    sock.on("error", () => {
      this.stats.dropped++;
    });
    sock.on("message", (msg) => {
      if (this.opts.send(peer, msg)) this.stats.toPeer++;
      else this.stats.dropped++;
    });
    await bindUdp(sock, { port: 0, address: "127.0.0.1" });
    await new Promise<void>((resolve, reject) => {
      sock.connect(this.opts.listenPort, "127.0.0.1", (err?: Error) => (err ? reject(err) : resolve()));
    });
    const bytes = this.opts.bufferBytes ?? 4 << 20;
    try {
      sock.setRecvBufferSize(bytes);
      sock.setSendBufferSize(bytes);
    } catch {
      // Capped by the system: keep what it gave.
    }
    this.sockets.set(peer, sock);
    return sock;
  }
}
