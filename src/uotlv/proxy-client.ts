/**
 * The standalone client (`tswg proxyguard client`): WireGuard sends its datagrams to a UDP
 * socket on 127.0.0.1 (the peer's Endpoint), they travel to the server over UoTLV/1, and the
 * replies are sent back to WireGuard's own port on 127.0.0.1.
 */
import dgram from "node:dgram";
import type { Logger } from "../log/logger.js";
import { silentLogger } from "../log/logger.js";
import { UotlvClient, type UotlvClientOptions } from "./client.js";
import { bindUdp } from "../sockets/ready.js";

export interface ProxyguardClientOptions extends Omit<UotlvClientOptions, "onDatagram" | "url" | "logger"> {
  /** The server's URL. */
  to: string;
  /** UDP port on 127.0.0.1 that WireGuard sends to. Default 51821. */
  listenPort?: number;
  /** WireGuard's listen port on 127.0.0.1, where replies go. Default 51820. */
  forwardPort?: number;
  /** Default 127.0.0.1. */
  host?: string;
  socketBufferBytes?: number;
  logger?: Logger;
}

export class ProxyguardClient {
  readonly tunnel: UotlvClient;
  private readonly o: ProxyguardClientOptions;
  private readonly log: Logger;
  private readonly udp: dgram.Socket;
  private readonly host: string;
  private readonly forwardPort: number;
  /** UDP sends towards WireGuard that failed. */
  udpErrors = 0;

  constructor(opts: ProxyguardClientOptions) {
    this.o = opts;
    this.log = opts.logger ?? silentLogger;
    this.host = opts.host ?? "127.0.0.1";
    this.forwardPort = opts.forwardPort ?? 51820;
    this.udp = dgram.createSocket(this.host.includes(":") ? "udp6" : "udp4");
    this.tunnel = new UotlvClient({
      ...opts,
      url: opts.to,
      logger: this.log,
      onDatagram: (d) => {
        // Failures arrive as 'error' events (counted in start()).
        this.udp.send(d, this.forwardPort, this.host);
      },
    });
  }

  /** Binds the UDP socket; resolves with its port. The TCP connection opens on the first datagram. */
  async start(): Promise<number> {
    const port = this.o.listenPort ?? 51821;
    await bindUdp(this.udp, { port, address: this.host, exclusive: true });
    const buf = this.o.socketBufferBytes ?? 4 << 20;
    try {
      this.udp.setRecvBufferSize(buf);
      this.udp.setSendBufferSize(buf);
    } catch {
      // the kernel's limits apply
    }
    this.udp.on("error", (err: NodeJS.ErrnoException) => {
      // ICMP errors when WireGuard is not listening: keep going.
      this.udpErrors++;
      this.log.debug(`UDP: ${err.code ?? err.message}`);
    });
    this.udp.on("message", (msg) => this.tunnel.send([msg]));
    const bound = this.udp.address().port;
    this.log.info(
      `listening on ${this.host}:${bound} (UDP), replies to ${this.host}:${this.forwardPort}; tunnel to ${this.tunnel.url.href} opens on the first datagram`,
    );
    return bound;
  }

  async close(): Promise<void> {
    await this.tunnel.close();
    await new Promise<void>((resolve) => {
      try {
        this.udp.close(() => resolve());
      } catch {
        resolve();
      }
    });
  }
}
