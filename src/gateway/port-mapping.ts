/**
 * Port forwards between the local host and the tunnel, both ways, TCP and UDP.
 *
 * - Forward (`tcp://127.0.0.1:2222 -> 10.0.0.2:22`): a local listener; each connection (or each
 *   UDP client address) gets its own connection (socket) through the tunnel to the target.
 * - Expose (`tcp://10.0.0.1:80 -> 127.0.0.1:8080`): a listener on the stack; each connection
 *   (or UDP peer address) gets its own local connection (socket) to the target.
 * UDP associations end after 60 s without traffic.
 */
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { connect, createServer, isIP, type Server } from "node:net";
import type { Duplex } from "node:stream";
import type { PortMapping } from "../conf/netstack-values.js";
import { formatPortMapping } from "../conf/netstack-values.js";
import type { Logger } from "../log/logger.js";
import { newStats, type ServiceStats, type TunnelDialer, type TunnelServer, type TunnelUdpSocket } from "./dialer.js";
import { splice } from "./splice.js";
import { listenOn } from "../sockets/ready.js";

const UDP_IDLE_MS = 60_000;

interface UdpAssociation {
  /** Sends toward the target. */
  send(data: Buffer): void;
  close(): void;
  last: number;
}

export class PortMapper {
  readonly stats: ServiceStats = newStats();
  readonly #open = new Set<Duplex>();
  readonly #udp = new Map<string, UdpAssociation>();
  #tcpServer: Server | TunnelServer | null = null;
  #udpSocket: UdpSocket | TunnelUdpSocket | null = null;
  #sweep: NodeJS.Timeout | null = null;

  constructor(
    private readonly mapping: PortMapping,
    /** "forward": local listener → tunnel; "expose": tunnel listener → local. */
    private readonly direction: "forward" | "expose",
    private readonly tunnel: TunnelDialer,
    private readonly log: Logger,
  ) {}

  get description(): string {
    return `${this.direction === "forward" ? "Forward" : "Expose"} ${formatPortMapping(this.mapping)}`;
  }

  async start(): Promise<void> {
    const { listen } = this.mapping;
    if (this.mapping.protocol === "tcp") {
      const onConn = (s: Duplex) => void this.#tcp(s);
      const server = this.direction === "forward" ? createServer({ allowHalfOpen: true }, onConn) : this.tunnel.createServer({ allowHalfOpen: true }, onConn);
      this.#tcpServer = server;
      await listenOn(server, listen.port, listen.host);
    } else {
      const sock = this.direction === "forward" ? createSocket(isIP(listen.host) === 6 ? "udp6" : "udp4") : this.tunnel.createUdpSocket();
      this.#udpSocket = sock;
      sock.on("message", (msg: Buffer, rinfo: { address: string; port: number }) => this.#udpIn(msg, rinfo));
      await new Promise<void>((resolve, reject) => {
        sock.once("error", reject);
        (sock as UdpSocket).bind(listen.port, listen.host, () => {
          sock.off("error", reject);
          resolve();
        });
      });
      this.#sweep = setInterval(() => this.#expire(), 5000);
      this.#sweep.unref();
    }
  }

  async #tcp(incoming: Duplex): Promise<void> {
    this.stats.accepted++;
    incoming.on("error", () => {});
    const { host, port } = this.mapping.target;
    const outgoing: Duplex =
      this.direction === "forward" ? this.tunnel.connect({ host, port, timeout: 15_000, allowHalfOpen: true }) : connect({ host, port, allowHalfOpen: true });
    outgoing.on("error", () => {});
    const ok = await new Promise<boolean>((resolve) => {
      outgoing.once("connect", () => resolve(true));
      outgoing.once("error", (err: Error) => {
        this.log.debug(`${this.description}: ${err.message}`);
        resolve(false);
      });
    });
    if (!ok) {
      this.stats.failed++;
      incoming.destroy();
      return;
    }
    this.#open.add(incoming);
    this.#open.add(outgoing);
    this.stats.active++;
    await splice(incoming, outgoing);
    this.stats.active--;
    this.#open.delete(incoming);
    this.#open.delete(outgoing);
  }

  #udpIn(msg: Buffer, rinfo: { address: string; port: number }): void {
    const key = `${rinfo.address}|${rinfo.port}`;
    let a = this.#udp.get(key);
    if (a === undefined) {
      a = this.#associate(rinfo);
      this.#udp.set(key, a);
      this.stats.accepted++;
      this.stats.active++;
    }
    a.last = Date.now();
    a.send(msg);
  }

  /** One socket toward the target per source address, whose replies go back to that source. */
  #associate(from: { address: string; port: number }): UdpAssociation {
    const { host, port } = this.mapping.target;
    const back = (data: Buffer) => this.#udpSocket?.send(data, from.port, from.address);
    if (this.direction === "forward") {
      const s = this.tunnel.createUdpSocket();
      s.on("message", (d: Buffer) => back(d));
      s.bind(0);
      const target = this.tunnel.lookup(host);
      target.catch(() => this.stats.failed++);
      return {
        last: Date.now(),
        send: (d) => void target.then((addr) => s.send(d, port, addr), () => {}),
        close: () => s.close(),
      };
    }
    const s = createSocket(isIP(host) === 6 ? "udp6" : "udp4");
    s.on("message", (d) => back(d));
    s.on("error", () => this.stats.failed++);
    return { last: Date.now(), send: (d) => s.send(d, port, host), close: () => s.close() };
  }

  #expire(): void {
    const now = Date.now();
    for (const [k, a] of this.#udp) {
      if (now - a.last > UDP_IDLE_MS) {
        a.close();
        this.#udp.delete(k);
        this.stats.active--;
      }
    }
  }

  async close(): Promise<void> {
    if (this.#sweep !== null) clearInterval(this.#sweep);
    for (const a of this.#udp.values()) a.close();
    this.#udp.clear();
    this.#udpSocket?.close();
    for (const s of this.#open) s.destroy();
    const server = this.#tcpServer;
    if (server !== null) await new Promise<void>((resolve) => (server as Server).close(() => resolve()));
  }
}
