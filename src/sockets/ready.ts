/**
 * Waiting for a server to listen or a UDP socket to bind. Node reports a failure of either as an
 * "error" event, not to the callback, so the one-shot error listener must be taken off again once
 * it worked: a later error would otherwise land in a promise that has already settled.
 */
import type { BindOptions, Socket as UdpSocket } from "node:dgram";
import type { EventEmitter } from "node:events";

function ready(target: EventEmitter, start: (done: () => void) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    target.once("error", reject);
    start(() => {
      target.off("error", reject);
      resolve();
    });
  });
}

/** What listens like `net.Server` (the userspace stack's server does too). */
export interface Listenable extends EventEmitter {
  listen(port: number, host: string | undefined, cb: () => void): unknown;
}

/** Listens on `port` (0 = any). */
export function listenOn(server: Listenable, port: number, host?: string): Promise<void> {
  return ready(server, (done) => server.listen(port, host, done));
}

/** Binds a UDP socket; rejects with the bind error (EADDRINUSE, EACCES, ...). */
export function bindUdp(sock: UdpSocket, opts: BindOptions): Promise<void> {
  return ready(sock, (done) => sock.bind(opts, done));
}
