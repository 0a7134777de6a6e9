/**
 * Netlink messages and attributes (the one encoder/decoder for the format), and a request/reply
 * socket over the tswg_kernel addon. Requests are synchronous: each waits for its acknowledgement
 * or the end of its dump, so a caller sees the kernel's errno for exactly the message it sent.
 */
import { constants } from "node:os";
import { requireKernelAddon, type KernelAddon } from "./addon.js";

export const NETLINK_ROUTE = 0;
export const NETLINK_GENERIC = 16;

export const NLM_F_REQUEST = 0x1;
export const NLM_F_MULTI = 0x2;
export const NLM_F_ACK = 0x4;
export const NLM_F_DUMP = 0x300;
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
const NLM_F_CAPPED = 0x100;
const NLM_F_ACK_TLVS = 0x200;

const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const NLA_F_NESTED = 0x8000;
const NLA_TYPE_MASK = 0x3fff;
const NLMSGERR_ATTR_MSG = 1;
const HEADER = 16;
const TIMEOUT_MS = 5000;

/** A decoded message: the 16-byte header's fields and what follows it. */
export interface NlMessage {
  type: number;
  flags: number;
  seq: number;
  /** Everything after the 16-byte header. */
  payload: Buffer;
}

const align4 = (n: number): number => (n + 3) & ~3;

/**
 * Writes netlink messages straight into one buffer with a cursor: no attribute objects, and a
 * nested attribute's length is patched when it is closed. Several messages may follow each other
 * in the buffer (a large configuration); each is a view of it. The buffer starts zeroed and is
 * never written twice, so padding is zero without being written. It grows (doubling, one copy)
 * when the caller's capacity estimate was short.
 */
export class NlWriter {
  private buf: Buffer;
  private pos = 0;
  /** Offset of the open message, -1 when none is open. */
  private start = -1;
  private readonly done: { start: number; end: number }[] = [];

  constructor(capacity = 256) {
    this.buf = Buffer.alloc(Math.max(64, capacity));
  }

  /** Makes room for `n` more bytes (the common case, enough room, is checked inline by the callers). */
  private grow(n: number): void {
    const bigger = Buffer.alloc(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(bigger, 0, 0, this.pos);
    this.buf = bigger;
  }

  /** Starts a message (ending the open one): header, then the family's fixed header. Length and sequence number are filled in later. */
  begin(type: number, flags: number, fixed: Uint8Array): this {
    if (this.start >= 0) this.end();
    if (this.pos + HEADER + align4(fixed.length) > this.buf.length) this.grow(HEADER + align4(fixed.length));
    this.start = this.pos;
    this.buf.writeUInt16LE(type, this.pos + 4);
    this.buf.writeUInt16LE(flags, this.pos + 6);
    this.buf.set(fixed, this.pos + HEADER);
    this.pos += HEADER + align4(fixed.length);
    return this;
  }

  /** Bytes written to the open message so far, its header included. */
  get messageLength(): number {
    return this.start < 0 ? 0 : this.pos - this.start;
  }

  /**
   * Room and header for an attribute of `n` bytes; the caller writes the value at the returned
   * offset (reading `buf` after this call: it may have grown). Byte stores throughout: on a cold
   * start every call and Buffer method costs more than the few stores it would save writing.
   */
  private attr(type: number, n: number): number {
    const o = this.pos;
    const padded = (n + 7) & ~3;
    if (o + padded > this.buf.length) this.grow(padded);
    const b = this.buf;
    b[o] = (n + 4) & 0xff;
    b[o + 1] = (n + 4) >>> 8;
    b[o + 2] = type & 0xff;
    b[o + 3] = type >>> 8;
    this.pos = o + padded;
    return o + 4;
  }

  u8(type: number, v: number): void {
    const o = this.attr(type, 1);
    this.buf[o] = v;
  }

  u16(type: number, v: number): void {
    const o = this.attr(type, 2);
    this.buf[o] = v & 0xff;
    this.buf[o + 1] = (v >>> 8) & 0xff;
  }

  u32(type: number, v: number): void {
    const o = this.attr(type, 4);
    const b = this.buf;
    b[o] = v & 0xff;
    b[o + 1] = (v >>> 8) & 0xff;
    b[o + 2] = (v >>> 16) & 0xff;
    b[o + 3] = (v >>> 24) & 0xff;
  }

  bytes(type: number, v: Uint8Array): void {
    const n = v.length;
    const o = this.attr(type, n);
    const b = this.buf;
    // Addresses (4 or 16 bytes) by hand; a builtin call costs more than that many stores.
    if (n <= 16) for (let i = 0; i < n; i++) b[o + i] = v[i]!;
    else b.set(v, o);
  }

  /** A NUL-terminated UTF-8 string. */
  str(type: number, v: string): void {
    const n = Buffer.byteLength(v, "utf8");
    const o = this.attr(type, n + 1);
    this.buf.write(v, o, "utf8");
  }

  /** Opens a nested attribute; returns the token for {@link close}. */
  nest(type: number): number {
    const o = this.pos;
    if (o + 4 > this.buf.length) this.grow(4);
    const b = this.buf;
    b[o] = 4;
    b[o + 2] = type & 0xff;
    b[o + 3] = (type | NLA_F_NESTED) >>> 8;
    this.pos = o + 4;
    return o;
  }

  /** Closes the nested attribute opened at `token`, patching its length. */
  close(token: number): void {
    const len = this.pos - token;
    if (len > 0xffff) throw new RangeError(`netlink attribute ${this.buf.readUInt16LE(token + 2) & NLA_TYPE_MASK} too long (${len} bytes)`);
    this.buf[token] = len & 0xff;
    this.buf[token + 1] = len >>> 8;
  }

  /** Ends the open message (patching its length) and returns it. */
  end(): Buffer {
    if (this.start < 0) throw new Error("netlink: no message is open");
    this.buf.writeUInt32LE(this.pos - this.start, this.start);
    this.done.push({ start: this.start, end: this.pos });
    this.start = -1;
    return this.buf.subarray(this.done[this.done.length - 1]!.start, this.pos);
  }

  /** Every message written (the open one ended first), as views of the final buffer. */
  messages(): Buffer[] {
    if (this.start >= 0) this.end();
    return this.done.map((m) => this.buf.subarray(m.start, m.end));
  }
}

/** Splits a datagram into messages; a truncated tail is an error, not a silent stop. */
export function decodeMessages(buf: Buffer): NlMessage[] {
  const out: NlMessage[] = [];
  let off = 0;
  while (off + HEADER <= buf.length) {
    const len = buf.readUInt32LE(off);
    if (len < HEADER || off + len > buf.length) throw new Error(`netlink: malformed message length ${len} at ${off}`);
    out.push({ type: buf.readUInt16LE(off + 4), flags: buf.readUInt16LE(off + 6), seq: buf.readUInt32LE(off + 8), payload: buf.subarray(off + HEADER, off + len) });
    off += align4(len);
  }
  return out;
}

/**
 * Walks the attributes of `buf[from, to)` without copying: after each successful {@link next},
 * `type` (without the nested/byte-order flags) and the value's range `start`..`end` describe the
 * current one. Stops at a malformed attribute.
 */
export class NlAttrs {
  type = -1;
  start = 0;
  end = 0;
  private pos: number;

  constructor(
    readonly buf: Buffer,
    from = 0,
    private readonly to = buf.length,
  ) {
    this.pos = from;
  }

  next(): boolean {
    const b = this.buf;
    const o = this.pos;
    if (o + 4 > this.to) return false;
    const len = b[o]! | (b[o + 1]! << 8);
    if (len < 4 || o + len > this.to) return false;
    this.type = (b[o + 2]! | (b[o + 3]! << 8)) & NLA_TYPE_MASK;
    this.start = o + 4;
    this.end = o + len;
    this.pos = o + align4(len);
    return true;
  }

  /** The attributes nested in the current one. */
  nested(): NlAttrs {
    return new NlAttrs(this.buf, this.start, this.end);
  }

  /** Advances to the next attribute of `type`; false when there is none. */
  find(type: number): boolean {
    while (this.next()) if (this.type === type) return true;
    return false;
  }

  get length(): number {
    return this.end - this.start;
  }

  u8(): number {
    return this.buf[this.start]!;
  }

  u16(): number {
    return this.length < 2 ? 0 : this.buf.readUInt16LE(this.start);
  }

  u32(): number {
    return this.length < 4 ? 0 : this.buf.readUInt32LE(this.start);
  }

  u64(): bigint {
    return this.length < 8 ? 0n : this.buf.readBigUInt64LE(this.start);
  }

  /** `n` bytes of the value from `offset`, as a view (a plain Uint8Array: cheaper to make than a Buffer). */
  view(offset: number, n: number): Uint8Array {
    return new Uint8Array(this.buf.buffer, this.buf.byteOffset + this.start + offset, n);
  }

  /** A copy of the value. */
  copy(): Uint8Array {
    const out = new Uint8Array(this.end - this.start);
    for (let i = 0; i < out.length; i++) out[i] = this.buf[this.start + i]!;
    return out;
  }

  /** Whether every byte of the value is zero (an unset key). */
  zero(): boolean {
    for (let i = this.start; i < this.end; i++) if (this.buf[i] !== 0) return false;
    return true;
  }

  /** The value as a string, up to its terminating NUL. */
  str(): string {
    const nul = this.buf.indexOf(0, this.start);
    return this.buf.toString("utf8", this.start, nul < 0 || nul > this.end ? this.end : nul);
  }
}

const errnoNames = new Map<number, string>(Object.entries(constants.errno).map(([k, v]) => [v, k]));

/** The kernel refused a request: `errno` is positive, `code` its name ("EINVAL"). */
export class NetlinkError extends Error {
  readonly code: string;
  constructor(
    readonly errno: number,
    what: string,
    kernelMessage: string | null,
  ) {
    const code = errnoNames.get(errno) ?? `E${errno}`;
    super(`${what}: ${code}${kernelMessage !== null && kernelMessage !== "" ? ` (${kernelMessage})` : ""}`);
    this.name = "NetlinkError";
    this.code = code;
  }
}

function errorOf(msg: NlMessage): { errno: number; text: string | null } {
  const errno = -msg.payload.readInt32LE(0);
  let text: string | null = null;
  if (msg.flags & NLM_F_ACK_TLVS && msg.payload.length >= 4 + HEADER) {
    const origLen = msg.payload.readUInt32LE(4);
    const skip = 4 + (msg.flags & NLM_F_CAPPED ? HEADER : align4(origLen));
    const a = new NlAttrs(msg.payload, skip);
    if (a.find(NLMSGERR_ATTR_MSG)) text = a.str();
  }
  return { errno, text };
}

/** A netlink socket of one protocol. Close it when done (the fd is not garbage collected). */
export class NetlinkSocket {
  private readonly addon: KernelAddon;
  private fd: number;
  private seq = Math.floor(Math.random() * 0x7fffffff);

  constructor(protocol: number) {
    this.addon = requireKernelAddon();
    this.fd = this.addon.netlinkOpen(protocol);
  }

  /**
   * Sends one message (from {@link NlWriter}; its request/ack flags and sequence number are set
   * here) and collects the replies: for a dump, every message until DONE; otherwise the messages
   * before the acknowledgement. Throws NetlinkError.
   */
  request(message: Buffer, what: string): NlMessage[] {
    if (this.fd < 0) throw new Error("netlink socket is closed");
    const seq = (this.seq = (this.seq + 1) >>> 0);
    const flags = message.readUInt16LE(6) | NLM_F_REQUEST | NLM_F_ACK;
    const dump = (flags & NLM_F_DUMP) === NLM_F_DUMP;
    message.writeUInt16LE(flags, 6);
    message.writeUInt32LE(seq, 8);
    this.addon.netlinkSend(this.fd, message);
    const replies: NlMessage[] = [];
    const deadline = Date.now() + TIMEOUT_MS;
    for (;;) {
      const left = deadline - Date.now();
      const dgram = left > 0 ? this.addon.netlinkRecv(this.fd, left) : null;
      if (dgram === null) throw new Error(`${what}: no answer from the kernel within ${TIMEOUT_MS} ms`);
      for (const m of decodeMessages(dgram)) {
        if (m.seq !== seq) continue; // a late answer to an earlier, timed-out request
        if (m.type === NLMSG_ERROR) {
          const { errno, text } = errorOf(m);
          if (errno !== 0) throw new NetlinkError(errno, what, text);
          if (!dump) return replies;
        } else if (m.type === NLMSG_DONE) {
          return replies;
        } else {
          replies.push(m);
        }
      }
    }
  }

  close(): void {
    if (this.fd >= 0) this.addon.close(this.fd);
    this.fd = -1;
  }
}
