/**
 * The standalone server (`tswg proxyguard server`): accepts UoTLV/1 connections and relays each
 * one to a WireGuard UDP endpoint through a UDP socket of its own, so every TCP client appears
 * to WireGuard as a separate endpoint and roaming works as usual.
 */
import dgram from "node:dgram";
import { isIPv6 } from "node:net";
import { silentLogger, type Logger } from "../log/logger.js";
import type { UotlvConnection } from "./connection.js";
import { UotlvServer, type UpgradeInfo } from "./server.js";

export interface ProxyguardServerOptions {
  /** TCP address to accept connections on; undefined = every address. */
  listenHost: string | undefined;
  listenPort: number;
  /** WireGuard's UDP endpoint (an IP address). */
  toHost: string;
  toPort: number;
  headTimeoutMs?: number;
  idleTimeoutMs?: number;
  maxConnections?: number;
  /** UDP socket buffers to ask for; the kernel caps them. Default 4 MiB. */
  socketBufferBytes?: number;
  logger?: Logger;
}

export interface ProxyguardServerStats {
  /** Datagrams relayed TCP -> UDP and UDP -> TCP. */
  toWireguard: number;
  fromWireguard: number;
  /** UDP sends that failed (WireGuard not listening, ...). */
  udpErrors: number;
}

export class ProxyguardServer {
  readonly stats: ProxyguardServerStats = { toWireguard: 0, fromWireguard: 0, udpErrors: 0 };
  private readonly o: ProxyguardServerOptions;
  private readonly log: Logger;
  private readonly server: UotlvServer;
  private readonly sockets = new Set<dgram.Socket>();

  constructor(opts: ProxyguardServerOptions) {
    this.o = opts;
    this.log = opts.logger ?? silentLogger;
    this.server = new UotlvServer({
      onConnection: (conn, info) => this.relay(conn, info),
      headTimeoutMs: opts.headTimeoutMs,
      idleTimeoutMs: opts.idleTimeoutMs,
      maxConnections: opts.maxConnections,
      logger: this.log,
    });
  }

  /** The protocol server underneath (statistics, open connections). */
  get uotlv(): UotlvServer {
    return this.server;
  }

  /** Clients currently relayed. */
  get clientCount(): number {
    return this.server.connections.size;
  }

  /** Starts accepting; resolves with the TCP port bound. */
  async start(): Promise<number> {
    const a = await this.server.listen(this.o.listenPort, this.o.listenHost);
    this.log.info(`listening on ${formatHostPort(a.address, a.port)} (TCP), relaying to ${formatHostPort(this.o.toHost, this.o.toPort)} (UDP)`);
    return a.port;
  }

  async close(): Promise<void> {
    await this.server.close();
    for (const s of this.sockets) s.close();
    this.sockets.clear();
  }

  private relay(conn: UotlvConnection, info: UpgradeInfo): void {
    const udp = dgram.createSocket(isIPv6(this.o.toHost) ? "udp6" : "udp4");
    this.sockets.add(udp);
    let connected = false;
    const done = (): void => {
      if (!this.sockets.delete(udp)) return;
      try {
        udp.close();
      } catch {
        // already closed
      }
    };
    udp.on("error", (err: NodeJS.ErrnoException) => {
      // ICMP errors (WireGuard not listening yet) must not end the client's connection.
      this.stats.udpErrors++;
      this.log.debug(`${info.remote}: UDP: ${err.code ?? err.message}`);
      if (!connected) {
        conn.close(`cannot reach WireGuard: ${err.message}`);
        done();
      }
    });
    udp.on("message", (msg) => {
      this.stats.fromWireguard++;
      conn.send([msg]);
    });
    udp.connect(this.o.toPort, this.o.toHost, () => {
      connected = true;
      const buf = this.o.socketBufferBytes ?? 4 << 20;
      try {
        udp.setRecvBufferSize(buf);
        udp.setSendBufferSize(buf);
      } catch {
        // the kernel's limits apply
      }
      const local = udp.address();
      this.log.debug(`${info.remote}: connected, relaying through UDP port ${local.port}`);
      conn.start({
        onDatagram: (d) => {
          this.stats.toWireguard++;
          // No callback: failures arrive as 'error' events, counted above; a callback per
          // datagram is measurable overhead at hundreds of thousands of datagrams a second.
          udp.send(d);
        },
        onClose: (reason) => {
          this.log.debug(`${info.remote}: ${reason}`);
          done();
        },
      });
    });
    void conn.closed.then(done);
  }
}

export function formatHostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}
