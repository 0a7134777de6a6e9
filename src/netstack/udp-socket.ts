/**
 * A UDP socket on the stack, shaped like `dgram.Socket`: bind(port?, address?, cb),
 * send(msg, port, address, cb), "message" events with (msg, rinfo), close().
 */
import { EventEmitter } from "node:events";
import type { StackEvent } from "./addon.js";
import type { StackHandle } from "./handle.js";

export interface NetstackRemoteInfo {
  address: string;
  family: "IPv4" | "IPv6";
  port: number;
  size: number;
}

export class NetstackUdpSocket extends EventEmitter {
  #stack: StackHandle;
  #id: number | null = null;
  #port = 0;
  #address: string | null = null;
  #closed = false;

  /** @internal Made by Netstack.createUdpSocket(). */
  constructor(stack: StackHandle) {
    super();
    this.#stack = stack;
  }

  /** Binds to a port (0 = any) and address (default all of the stack's). */
  bind(port = 0, address?: string | (() => void), cb?: () => void): this {
    if (typeof address === "function") {
      cb = address;
      address = undefined;
    }
    if (this.#closed) throw new Error("socket is closed");
    if (this.#id !== null) throw new Error("socket is already bound");
    const r = this.#stack.native.udpBind(address ?? null, port);
    this.#id = r.id;
    this.#port = r.port;
    this.#address = address ?? null;
    this.#stack.register(r.id, (e) => this.#onEvent(e));
    this.#stack.hold();
    if (cb !== undefined) this.once("listening", cb);
    queueMicrotask(() => this.emit("listening"));
    return this;
  }

  #onEvent(e: StackEvent): void {
    if (e.type !== "udp") return;
    const address = e.address!;
    const rinfo: NetstackRemoteInfo = { address, family: address.includes(":") ? "IPv6" : "IPv4", port: e.port!, size: e.data!.length };
    this.emit("message", e.data!, rinfo);
  }

  /** Sends one datagram; binds to a free port first if needed. Errors go to `cb` (or "error"). */
  send(msg: Uint8Array | string, port: number, address: string, cb?: (err: Error | null) => void): void {
    if (this.#id === null) this.bind(0);
    const data = typeof msg === "string" ? Buffer.from(msg) : msg;
    const rc = this.#closed ? -15 : this.#stack.native.udpSend(this.#id!, data, address, port);
    const err = rc === 0 ? null : new Error(`send to ${address}:${port} failed (lwIP error ${rc})`);
    if (cb !== undefined) queueMicrotask(() => cb(err));
    else if (err !== null) queueMicrotask(() => this.emit("error", err));
  }

  address(): { address: string; family: string; port: number } {
    if (this.#id === null) throw new Error("socket is not bound");
    const address = this.#address ?? "0.0.0.0";
    return { address, family: address.includes(":") ? "IPv6" : "IPv4", port: this.#port };
  }

  close(cb?: () => void): this {
    if (this.#closed) return this;
    this.#closed = true;
    if (this.#id !== null) {
      this.#stack.unregister(this.#id);
      this.#stack.native.udpClose(this.#id);
      this.#stack.release();
    }
    queueMicrotask(() => {
      cb?.();
      this.emit("close");
    });
    return this;
  }
}
