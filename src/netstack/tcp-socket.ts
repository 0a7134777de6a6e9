/**
 * A TCP connection of the stack as a `stream.Duplex` shaped like `net.Socket`, so it can go
 * where one goes (`http.request({ createConnection })`, `tls.connect({ socket })`, pipes).
 *
 * 1. Written bytes go to lwIP's send buffer; what does not fit waits for "sent" (ACKed) events.
 * 2. Received bytes are pushed and reported (tcpRecved) as the reader takes them; the stack
 *    opens the window by itself only while less than its read-ahead (1 MiB) waits, so a slow
 *    reader slows the sender instead of filling memory.
 * 3. end() sends FIN once everything written is queued; destroy() closes (RST on error).
 */
import { Duplex } from "node:stream";
import { LWIP_ERR, type StackEvent } from "./addon.js";
import type { StackHandle } from "./handle.js";

export interface NetstackSocketOptions {
  /** Keep the writable side open after the peer's FIN (default false, as net.Socket). */
  allowHalfOpen?: boolean;
}

function errorFor(code: number, connecting: boolean): NodeJS.ErrnoException {
  const [name, text] =
    code === LWIP_ERR.RST
      ? connecting
        ? ["ECONNREFUSED", "connection refused"]
        : ["ECONNRESET", "connection reset by peer"]
      : code === LWIP_ERR.ABRT
        ? connecting
          ? ["ETIMEDOUT", "connection timed out"]
          : ["ECONNABORTED", "connection aborted"]
        : ["EPIPE", `connection closed (lwIP error ${code})`];
  const err = new Error(`${text}`) as NodeJS.ErrnoException;
  err.code = name;
  return err;
}

export class NetstackSocket extends Duplex {
  remoteAddress: string | undefined;
  remotePort: number | undefined;
  localAddress: string | undefined;
  localPort: number | undefined;
  remoteFamily: string | undefined;
  connecting: boolean;
  bytesRead = 0;
  bytesWritten = 0;
  #id = -1;
  #stack: StackHandle;
  #unacked = 0;
  #pendingWrite: { data: Uint8Array; cb: (err?: Error | null) => void } | null = null;
  #pendingFinal: ((err?: Error | null) => void) | null = null;
  #gone = false;
  #timeoutMs = 0;
  #timer: NodeJS.Timeout | null = null;
  #refed = true;

  /** @internal Made by Netstack.connect() and by servers; attach() gives it its connection. */
  constructor(stack: StackHandle, opts: NetstackSocketOptions = {}) {
    super({ allowHalfOpen: opts.allowHalfOpen ?? false });
    this.#stack = stack;
    this.connecting = true;
    stack.hold();
  }

  /** @internal The stack's connection id; `connecting` until a "connected" event. */
  attach(id: number, connecting: boolean): void {
    if (this.destroyed) {
      this.#stack.native.tcpClose(id, true);
      return;
    }
    this.#id = id;
    this.connecting = connecting;
    this.#stack.register(id, (e) => this.#onEvent(e));
    if (!connecting) this.#flushWrite();
  }

  get pending(): boolean {
    return this.connecting;
  }

  get readyState(): string {
    if (this.connecting) return "opening";
    if (this.readable && this.writable) return "open";
    if (this.readable) return "readOnly";
    if (this.writable) return "writeOnly";
    return "closed";
  }

  /** @internal */
  setEnds(e: StackEvent): void {
    this.remoteAddress = e.remoteAddress;
    this.remotePort = e.remotePort;
    this.localAddress = e.localAddress;
    this.localPort = e.localPort;
    this.remoteFamily = e.remoteAddress?.includes(":") ? "IPv6" : "IPv4";
  }

  address(): { address: string; family: string; port: number } | Record<string, never> {
    if (this.localAddress === undefined || this.localPort === undefined) return {};
    return { address: this.localAddress, family: this.localAddress.includes(":") ? "IPv6" : "IPv4", port: this.localPort };
  }

  #onEvent(e: StackEvent): void {
    this.#touch();
    switch (e.type) {
      case "connected":
        this.setEnds(e);
        this.connecting = false;
        this.emit("connect");
        this.emit("ready");
        this.#flushWrite();
        break;
      case "data": {
        const data = e.data!;
        this.bytesRead += data.length;
        if (this.push(data)) this.#stack.native.tcpRecved(this.#id, data.length);
        else this.#unacked += data.length;
        break;
      }
      case "end":
        this.push(null);
        break;
      case "sent":
        this.#flushWrite();
        break;
      case "error":
        this.#gone = true;
        this.destroy(errorFor(e.num ?? 0, this.connecting));
        break;
    }
  }

  override _read(): void {
    if (this.#unacked > 0 && !this.#gone && this.#id >= 0) {
      this.#stack.native.tcpRecved(this.#id, this.#unacked);
      this.#unacked = 0;
    }
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.#pendingWrite = { data: chunk, cb };
    if (!this.connecting && this.#id >= 0) this.#flushWrite();
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.#pendingFinal = cb;
    if (!this.connecting && this.#id >= 0) this.#flushWrite();
  }

  #flushWrite(): void {
    const w = this.#pendingWrite;
    if (w !== null) {
      if (this.#gone) return;
      const n = this.#stack.native.tcpWrite(this.#id, w.data);
      if (n < 0) {
        this.#pendingWrite = null;
        w.cb(errorFor(LWIP_ERR.CLSD, false));
        return;
      }
      this.bytesWritten += n;
      if (n < w.data.length) {
        w.data = w.data.subarray(n);
        return;
      }
      this.#pendingWrite = null;
      w.cb();
    }
    if (this.#pendingWrite === null && this.#pendingFinal !== null) {
      const cb = this.#pendingFinal;
      this.#pendingFinal = null;
      if (!this.#gone) this.#stack.native.tcpShutdown(this.#id);
      cb();
    }
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#clearTimer();
    if (this.#id >= 0) {
      this.#stack.unregister(this.#id);
      // A graceful close after end(); a reset when destroyed with an error or mid-stream.
      this.#stack.native.tcpClose(this.#id, err !== null || (this.writableEnded === false && !this.#gone));
    }
    this.#gone = true;
    if (this.#refed) this.#stack.release();
    this.#refed = false;
    this.connecting = false;
    cb(err);
  }

  /** Sends a RST instead of a FIN. */
  resetAndDestroy(): this {
    const e = new Error("socket reset") as NodeJS.ErrnoException;
    e.code = "ERR_SOCKET_CLOSED";
    this.destroy(e);
    return this;
  }

  setNoDelay(_noDelay?: boolean): this {
    return this; // Nagle is always off on these connections
  }

  setKeepAlive(enable?: boolean, initialDelay?: number): this {
    if (!this.#gone && this.#id >= 0) this.#stack.native.tcpKeepAlive(this.#id, enable ? Math.max(1000, initialDelay || 60_000) : 0);
    return this;
  }

  setTimeout(ms: number, cb?: () => void): this {
    this.#timeoutMs = ms;
    if (cb !== undefined) this.once("timeout", cb);
    this.#touch();
    return this;
  }

  #touch(): void {
    this.#clearTimer();
    if (this.#timeoutMs > 0 && !this.destroyed) {
      this.#timer = setTimeout(() => this.emit("timeout"), this.#timeoutMs);
      this.#timer.unref();
    }
  }

  #clearTimer(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  ref(): this {
    if (!this.#refed && !this.destroyed) {
      this.#refed = true;
      this.#stack.hold();
    }
    return this;
  }

  unref(): this {
    if (this.#refed) {
      this.#refed = false;
      this.#stack.release();
    }
    return this;
  }
}
