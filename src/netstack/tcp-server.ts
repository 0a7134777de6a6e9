/**
 * A TCP listener on the stack, shaped like `net.Server`: listen(port, host?, cb), "connection"
 * events with NetstackSockets, close(cb), address().
 */
import { EventEmitter } from "node:events";
import type { StackEvent } from "./addon.js";
import type { StackHandle } from "./handle.js";
import { NetstackSocket, type NetstackSocketOptions } from "./tcp-socket.js";

export class NetstackServer extends EventEmitter {
  #stack: StackHandle;
  #id: number | null = null;
  #port = 0;
  #host: string | null = null;
  #opts: NetstackSocketOptions;
  readonly #sockets = new Set<NetstackSocket>();

  /** @internal Made by Netstack.createServer(). */
  constructor(stack: StackHandle, opts: NetstackSocketOptions = {}, onConnection?: (socket: NetstackSocket) => void) {
    super();
    this.#stack = stack;
    this.#opts = opts;
    if (onConnection !== undefined) this.on("connection", onConnection);
  }

  get listening(): boolean {
    return this.#id !== null;
  }

  /** listen(port, [host], [callback]); host defaults to every address of the stack. */
  listen(port: number, host?: string | (() => void), cb?: () => void): this {
    if (typeof host === "function") {
      cb = host;
      host = undefined;
    }
    if (cb !== undefined) this.once("listening", cb);
    try {
      if (this.#id !== null) throw new Error("server is already listening");
      const r = this.#stack.native.tcpListen(host ?? null, port, 128);
      this.#id = r.id;
      this.#port = r.port;
      this.#host = host ?? null;
      this.#stack.register(r.id, (e) => this.#onEvent(e));
      this.#stack.hold();
      queueMicrotask(() => this.emit("listening"));
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (/in use/iu.test(e.message)) e.code = "EADDRINUSE";
      queueMicrotask(() => this.emit("error", e));
    }
    return this;
  }

  #onEvent(e: StackEvent): void {
    if (e.type !== "accept") return;
    const socket = new NetstackSocket(this.#stack, this.#opts);
    socket.setEnds(e);
    socket.attach(e.conn!, false);
    this.#sockets.add(socket);
    socket.once("close", () => this.#sockets.delete(socket));
    this.emit("connection", socket);
  }

  address(): { address: string; family: string; port: number } | null {
    if (this.#id === null) return null;
    const address = this.#host ?? "0.0.0.0";
    return { address, family: address.includes(":") ? "IPv6" : "IPv4", port: this.#port };
  }

  /** Stops listening; open connections stay (as net.Server), "close" when they are gone. */
  close(cb?: (err?: Error) => void): this {
    if (this.#id === null) {
      if (cb !== undefined) queueMicrotask(() => cb(new Error("server is not running")));
      return this;
    }
    this.#stack.unregister(this.#id);
    this.#stack.native.tcpClose(this.#id, false);
    this.#stack.release();
    this.#id = null;
    const done = () => {
      cb?.();
      this.emit("close");
    };
    if (this.#sockets.size === 0) queueMicrotask(done);
    else {
      let left = this.#sockets.size;
      for (const s of this.#sockets) s.once("close", () => --left === 0 && done());
    }
    return this;
  }

  /** Closes the listener and resets every open connection. */
  closeAllConnections(): void {
    for (const s of this.#sockets) s.destroy();
  }
}
