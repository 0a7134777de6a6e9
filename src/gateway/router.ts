/**
 * Router mode: flows from peers to any destination are re-created with the host's own sockets
 * (the tun2socks pattern), so a peer can use this machine as its exit without root here.
 *
 * 1. TCP: a new SYN waits while the destination is dialed; on success the stack completes the
 *    peer's handshake and the two connections are spliced; on failure the peer gets a RST.
 * 2. UDP: one host socket per flow (peer address/port → destination), replies go back as
 *    datagrams from the destination; idle flows end after 60 s (30 s for DNS, port 53).
 * 3. At most `maxFlows` flows at once; more are refused (TCP RST, UDP dropped) and counted.
 * 4. Destinations on this host's loopback are refused.
 */
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { connect } from "node:net";
import type { Logger } from "../log/logger.js";
import type { FlowHandler, Netstack, TcpFlow, UdpDatagram } from "../netstack/netstack.js";
import { splice } from "./splice.js";

export interface RouterOptions {
  /** Concurrent flows (TCP and UDP together); default 4096. */
  maxFlows?: number;
  /** Upstream TCP dial timeout; default 10 s. */
  dialTimeoutMs?: number;
  /** UDP idle timeouts; defaults 60 s and 30 s for port 53. */
  udpIdleMs?: number;
  dnsIdleMs?: number;
}

/** This host's own loopback is not an exit: a peer must not reach services bound to it. */
function isLoopback(address: string): boolean {
  return address.startsWith("127.") || address === "::1" || address.startsWith("::ffff:127.");
}

export interface RouterStats {
  tcpFlows: number;
  udpFlows: number;
  tcpOpened: number;
  tcpFailed: number;
  udpOpened: number;
  /** Flows refused because `maxFlows` were open. */
  limitDrops: number;
  udpDatagramsIn: number;
  udpDatagramsOut: number;
}

interface UdpFlow {
  socket: UdpSocket;
  last: number;
  idleMs: number;
}

export class Router implements FlowHandler {
  readonly stats: RouterStats = { tcpFlows: 0, udpFlows: 0, tcpOpened: 0, tcpFailed: 0, udpOpened: 0, limitDrops: 0, udpDatagramsIn: 0, udpDatagramsOut: 0 };
  readonly #udp = new Map<string, UdpFlow>();
  readonly #tcp = new Set<{ destroy(): void }>();
  readonly #max: number;
  readonly #dialTimeout: number;
  readonly #udpIdle: number;
  readonly #dnsIdle: number;
  #sweep: NodeJS.Timeout;

  constructor(
    private readonly stack: Netstack,
    private readonly log: Logger,
    opts: RouterOptions = {},
  ) {
    this.#max = opts.maxFlows ?? 4096;
    this.#dialTimeout = opts.dialTimeoutMs ?? 10_000;
    this.#udpIdle = opts.udpIdleMs ?? 60_000;
    this.#dnsIdle = opts.dnsIdleMs ?? 30_000;
    this.#sweep = setInterval(() => this.#expire(), 1000);
    this.#sweep.unref();
    stack.setFlowHandler(this);
  }

  #full(): boolean {
    if (this.stats.tcpFlows + this.stats.udpFlows < this.#max) return false;
    if (this.stats.limitDrops++ % 100 === 0) this.log.warn(`router: ${this.#max} flows open, new flows refused (${this.stats.limitDrops} so far)`);
    return true;
  }

  tcp(flow: TcpFlow): void {
    if (isLoopback(flow.dstAddress)) {
      flow.reject();
      return;
    }
    if (this.#full()) {
      flow.reject();
      return;
    }
    this.stats.tcpFlows++;
    const upstream = connect({ host: flow.dstAddress, port: flow.dstPort, allowHalfOpen: true, timeout: this.#dialTimeout });
    this.#tcp.add(upstream);
    let settled = false;
    const fail = (why: string) => {
      if (settled) return;
      settled = true;
      this.stats.tcpFailed++;
      this.stats.tcpFlows--;
      this.#tcp.delete(upstream);
      this.log.debug(`router: ${flow.dstAddress}:${flow.dstPort}: ${why}`);
      upstream.destroy();
      flow.reject();
    };
    upstream.once("timeout", () => fail("dial timed out"));
    upstream.once("error", (err) => fail(err.message));
    upstream.once("connect", () => {
      settled = true;
      upstream.setTimeout(0);
      this.stats.tcpOpened++;
      const accepted = flow.accept((peer) => {
        this.#tcp.add(peer);
        void splice(peer, upstream).then(() => {
          this.#tcp.delete(peer);
          this.#tcp.delete(upstream);
          this.stats.tcpFlows--;
        });
      });
      if (!accepted) {
        this.#tcp.delete(upstream);
        this.stats.tcpFlows--;
        upstream.destroy();
      }
    });
  }

  udp(d: UdpDatagram): void {
    const key = `${d.srcAddress}|${d.srcPort}|${d.dstAddress}|${d.dstPort}`;
    let f = this.#udp.get(key);
    if (f === undefined) {
      if (isLoopback(d.dstAddress) || this.#full()) return;
      const socket = createSocket(d.dstAddress.includes(":") ? "udp6" : "udp4");
      f = { socket, last: Date.now(), idleMs: d.dstPort === 53 ? this.#dnsIdle : this.#udpIdle };
      const flow = f;
      socket.on("message", (msg, rinfo) => {
        if (rinfo.port !== d.dstPort || rinfo.address !== d.dstAddress) return;
        flow.last = Date.now();
        this.stats.udpDatagramsOut++;
        this.stack.sendFlowDatagram(d, msg);
      });
      socket.on("error", (err) => this.log.debug(`router: udp ${d.dstAddress}:${d.dstPort}: ${err.message}`));
      this.#udp.set(key, f);
      this.stats.udpFlows++;
      this.stats.udpOpened++;
    }
    f.last = Date.now();
    this.stats.udpDatagramsIn++;
    f.socket.send(d.data, d.dstPort, d.dstAddress);
  }

  #expire(): void {
    const now = Date.now();
    for (const [k, f] of this.#udp) {
      if (now - f.last > f.idleMs) {
        f.socket.close();
        this.#udp.delete(k);
        this.stats.udpFlows--;
      }
    }
  }

  close(): void {
    clearInterval(this.#sweep);
    this.stack.setFlowHandler(null);
    for (const f of this.#udp.values()) f.socket.close();
    this.#udp.clear();
    for (const t of this.#tcp) t.destroy();
    this.#tcp.clear();
  }
}
