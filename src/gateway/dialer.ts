/**
 * What the proxies and forwards need from the tunnel side: TCP connections and UDP sockets
 * (a Netstack provides both). Kept as an interface so each service is testable on its own.
 */
import type { Duplex } from "node:stream";
import type { EventEmitter } from "node:events";

export interface TunnelUdpSocket extends EventEmitter {
  bind(port?: number, address?: string): unknown;
  send(msg: Uint8Array, port: number, address: string, cb?: (err: Error | null) => void): void;
  close(): unknown;
}

export interface TunnelServer extends EventEmitter {
  listen(port: number, host: string, cb?: () => void): unknown;
  close(): unknown;
}

export interface TunnelDialer {
  /** A TCP listener on the tunnel side. */
  createServer(opts: { allowHalfOpen?: boolean }, onConnection: (socket: Duplex) => void): TunnelServer;
  /** Emits "connect" when established, "error" if not. */
  connect(opts: { host: string; port: number; timeout?: number; allowHalfOpen?: boolean }): Duplex;
  createUdpSocket(): TunnelUdpSocket;
  /** Resolves a name with the tunnel's DNS servers (or the system's). */
  lookup(host: string): Promise<string>;
}

/** Counters every service keeps: what it carried and what it refused. */
export interface ServiceStats {
  accepted: number;
  active: number;
  failed: number;
  /** Malformed requests, bad credentials, over-limit: answered with an error and closed. */
  rejected: number;
}

export function newStats(): ServiceStats {
  return { accepted: 0, active: 0, failed: 0, rejected: 0 };
}
