/**
 * One upgraded UoTLV/1 stream: datagrams in, datagrams out, over a TCP (or TLS) socket.
 *
 * Frames sent in one turn of the event loop are packed into one buffer and written together
 * (at setImmediate), so a burst of datagrams costs one write and one system call rather than one
 * each; the per-write cost of Node streams, not copying, is what limits a proxy. When the peer reads more slowly
 * than datagrams arrive, the socket's buffer is capped and further datagrams are dropped, as a
 * full UDP socket would drop them; the tunnelled protocols recover from loss, not from delay.
 * A connection that receives no bytes for the idle time is torn down.
 */
import type { Socket } from "node:net";
import { FRAME_HEADER_BYTES, IDLE_TIMEOUT_MS, MAX_DATAGRAM_BYTES } from "./constants.js";
import { FrameDecoder, FrameError } from "./frame.js";

export interface UotlvConnectionOptions {
  /** Tear down after this long without inbound bytes. Default 60 s. */
  idleTimeoutMs?: number;
  /** Bytes the socket may hold unsent before new datagrams are dropped. Default 4 MiB. */
  maxBufferedBytes?: number;
}

export interface UotlvConnectionHandlers {
  /** Each received datagram. It may be a view into a larger buffer: copy it to keep it. */
  onDatagram(datagram: Uint8Array): void;
  /** Once, when the connection has ended, with a reason for logs. */
  onClose?(reason: string): void;
}

export interface UotlvConnectionStats {
  rxDatagrams: number;
  txDatagrams: number;
  /** Datagrams not sent because the connection was closed or its buffer full. */
  txDropped: number;
  rxBytes: number;
  txBytes: number;
}

/** Size of the buffers frames are packed into between flushes. */
const OUT_CHUNK_BYTES = 64 * 1024;

export class UotlvConnection {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly stats: UotlvConnectionStats = { rxDatagrams: 0, txDatagrams: 0, txDropped: 0, rxBytes: 0, txBytes: 0 };
  /** Resolves with the reason once the connection has ended. */
  readonly closed: Promise<string>;
  private resolveClosed!: (reason: string) => void;
  private readonly decoder = new FrameDecoder(MAX_DATAGRAM_BYTES);
  private readonly idleMs: number;
  private readonly maxBuffered: number;
  private handlers: UotlvConnectionHandlers | null = null;
  private state: "new" | "open" | "closed" = "new";
  private lastInbound = performance.now();
  private idleTimer: NodeJS.Timeout | null = null;
  /** Frames waiting for the next flush, packed into `out[0..outLength)`. */
  private out: Buffer | null = null;
  private outLength = 0;
  private flushScheduled = false;
  private closeReason = "";

  /**
   * @param socket a connected socket whose upgrade has completed
   * @param initial bytes that arrived together with the upgrade head (the first frames)
   */
  constructor(
    readonly socket: Socket,
    private initial: Buffer | null = null,
    opts: UotlvConnectionOptions = {},
  ) {
    this.idleMs = opts.idleTimeoutMs ?? IDLE_TIMEOUT_MS;
    this.maxBuffered = opts.maxBufferedBytes ?? 4 << 20;
    this.remoteAddress = socket.remoteAddress ?? "";
    this.remotePort = socket.remotePort ?? 0;
    this.closed = new Promise((r) => (this.resolveClosed = r));
    // Listen for errors at once: one between the upgrade and start() must not go unhandled.
    socket.on("error", (err: NodeJS.ErrnoException) => this.close(`socket error: ${err.code ?? err.message}`));
    socket.on("close", () => this.close("connection closed"));
  }

  get isOpen(): boolean {
    return this.state === "open";
  }

  /** Starts delivering datagrams (the bytes that came with the head first). */
  start(handlers: UotlvConnectionHandlers): void {
    if (this.handlers !== null) throw new Error("UoTLV/1 connection already started");
    this.handlers = handlers;
    if (this.state === "closed") {
      // Ended before it was started: report it all the same, once.
      const reason = this.closeReason;
      queueMicrotask(() => handlers.onClose?.(reason));
      return;
    }
    this.state = "open";
    const s = this.socket;
    s.setNoDelay(true);
    s.on("data", (chunk: Buffer) => this.onData(chunk));
    s.on("end", () => this.close(this.decoder.pendingBytes > 0 ? "peer closed the connection inside a frame" : "peer closed the connection"));
    this.armIdle(this.idleMs);
    const first = this.initial;
    this.initial = null;
    if (first !== null && first.length > 0) this.onData(first);
    if (s.destroyed) this.close("connection closed");
    else s.resume();
  }

  /**
   * Queues datagrams as frames. Returns how many were accepted; the rest are dropped (closed
   * connection, full buffer) and counted. The caller may reuse the buffers at once.
   */
  send(datagrams: readonly Uint8Array[]): number {
    if (datagrams.length === 0) return 0;
    if (this.state !== "open" || this.socket.writableLength + this.outLength > this.maxBuffered) {
      this.stats.txDropped += datagrams.length;
      return 0;
    }
    let sent = 0;
    for (const d of datagrams) {
      if (d.length > MAX_DATAGRAM_BYTES) {
        this.stats.txDropped++;
        continue;
      }
      const need = FRAME_HEADER_BYTES + d.length;
      if (this.out !== null && this.outLength + need > this.out.length) this.flush();
      if (this.out === null || this.outLength + need > this.out.length) this.out = Buffer.allocUnsafe(Math.max(OUT_CHUNK_BYTES, need));
      const at = this.outLength;
      this.out[at] = d.length >>> 8;
      this.out[at + 1] = d.length & 0xff;
      this.out.set(d, at + FRAME_HEADER_BYTES);
      this.outLength += need;
      this.stats.txBytes += need;
      sent++;
    }
    this.stats.txDatagrams += sent;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flushLater);
    }
    return sent;
  }

  /** Ends the connection (idempotent). */
  close(reason = "closed locally"): void {
    if (this.state === "closed") return;
    const wasStarted = this.state === "open";
    this.state = "closed";
    this.closeReason = reason;
    this.out = null;
    this.outLength = 0;
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    this.socket.destroy();
    this.resolveClosed(reason);
    if (wasStarted) this.handlers?.onClose?.(reason);
  }

  private readonly flushLater = (): void => {
    this.flushScheduled = false;
    this.flush();
  };

  /** Hands the packed frames to the socket. */
  private flush(): void {
    const out = this.out;
    if (out === null || this.outLength === 0) return;
    let chunk: Buffer;
    if (this.outLength * 2 < out.length) {
      // Mostly empty: write a copy and keep the buffer, so a socket queue of small writes
      // does not pin 64 KiB each.
      chunk = Buffer.from(out.subarray(0, this.outLength));
    } else {
      chunk = out.subarray(0, this.outLength);
      this.out = null;
    }
    this.outLength = 0;
    if (this.state === "open" && !this.socket.destroyed) this.socket.write(chunk);
  }

  private onData(chunk: Buffer): void {
    if (this.state !== "open") return;
    this.lastInbound = performance.now();
    this.stats.rxBytes += chunk.length;
    const h = this.handlers!;
    try {
      this.decoder.push(chunk, (d) => {
        if (this.state !== "open") return; // closed by a handler meanwhile
        this.stats.rxDatagrams++;
        h.onDatagram(d);
      });
    } catch (err) {
      if (err instanceof FrameError) this.close(`malformed stream: ${err.message}`);
      else throw err;
    }
  }

  private armIdle(ms: number): void {
    this.idleTimer = setTimeout(() => {
      this.idleTimer = null;
      if (this.state !== "open") return;
      const quiet = performance.now() - this.lastInbound;
      if (quiet >= this.idleMs) this.close(`nothing received for ${Math.round(this.idleMs / 1000)} s`);
      else this.armIdle(this.idleMs - quiet);
    }, Math.max(1, Math.ceil(ms)));
    this.idleTimer.unref();
  }
}
