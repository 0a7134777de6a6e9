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

/** An attribute to encode: raw bytes, or nested attributes. */
export interface NlAttr {
  type: number;
  value: Uint8Array | NlAttr[];
  /** Encoded length without trailing padding, when known (nested() computes it once). */
  size?: number;
}

/** A decoded attribute (type without the nested/byte-order flags). */
export interface NlAttrView {
  type: number;
  data: Buffer;
}

export interface NlMessage {
  type: number;
  flags: number;
  seq: number;
  /** Everything after the 16-byte header. */
  payload: Buffer;
}

const align4 = (n: number): number => (n + 3) & ~3;

export const u8 = (type: number, v: number): NlAttr => ({ type, value: Uint8Array.of(v) });
export function u16(type: number, v: number): NlAttr {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(v);
  return { type, value: b };
}
export function u32(type: number, v: number): NlAttr {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return { type, value: b };
}
export const str = (type: number, v: string): NlAttr => ({ type, value: Buffer.from(`${v}\0`, "utf8") });
export const bytes = (type: number, v: Uint8Array): NlAttr => ({ type, value: v });
/** Nested attributes; their encoded size is computed here once (large peer lists are measured often). */
export const nested = (type: number, v: NlAttr[]): NlAttr => ({ type, value: v, size: 4 + attrsLength(v) });

/** Encoded length of one attribute, without its trailing padding. */
export function attrLength(a: NlAttr): number {
  if (a.size !== undefined) return a.size;
  if (a.value instanceof Uint8Array) return 4 + a.value.length;
  let n = 4;
  for (const c of a.value) n += align4(attrLength(c));
  return n;
}

/** Encoded size of attributes, padding included. */
export function attrsLength(attrs: readonly NlAttr[]): number {
  let n = 0;
  for (const a of attrs) n += align4(attrLength(a));
  return n;
}

function writeAttr(buf: Buffer, off: number, a: NlAttr): number {
  const len = attrLength(a);
  if (len > 0xffff) throw new RangeError(`netlink attribute ${a.type} too long (${len} bytes)`);
  buf.writeUInt16LE(len, off);
  if (a.value instanceof Uint8Array) {
    buf.writeUInt16LE(a.type, off + 2);
    buf.set(a.value, off + 4);
  } else {
    buf.writeUInt16LE(a.type | NLA_F_NESTED, off + 2);
    let o = off + 4;
    for (const c of a.value) o = writeAttr(buf, o, c);
  }
  return off + align4(len);
}

/** One message: header, fixed family header, attributes. */
export function encodeMessage(type: number, flags: number, seq: number, fixed: Uint8Array, attrs: readonly NlAttr[]): Buffer {
  const len = HEADER + align4(fixed.length) + attrsLength(attrs);
  const buf = Buffer.alloc(len);
  buf.writeUInt32LE(len, 0);
  buf.writeUInt16LE(type, 4);
  buf.writeUInt16LE(flags, 6);
  buf.writeUInt32LE(seq >>> 0, 8);
  buf.set(fixed, HEADER);
  let off = HEADER + align4(fixed.length);
  for (const a of attrs) off = writeAttr(buf, off, a);
  return buf;
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

/** Attributes in `buf` (after any fixed header); stops at a malformed one. */
export function decodeAttrs(buf: Buffer): NlAttrView[] {
  const out: NlAttrView[] = [];
  let off = 0;
  while (off + 4 <= buf.length) {
    const len = buf.readUInt16LE(off);
    if (len < 4 || off + len > buf.length) break;
    out.push({ type: buf.readUInt16LE(off + 2) & NLA_TYPE_MASK, data: buf.subarray(off + 4, off + len) });
    off += align4(len);
  }
  return out;
}

/** The first attribute of `type`, if any. */
export function attr(attrs: readonly NlAttrView[], type: number): Buffer | undefined {
  return attrs.find((a) => a.type === type)?.data;
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
    const m = attr(decodeAttrs(msg.payload.subarray(skip)), NLMSGERR_ATTR_MSG);
    if (m !== undefined) text = m.toString("utf8").replace(/\0.*$/s, "");
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
   * Sends one request and collects the replies: for a dump, every message until DONE; otherwise
   * the messages before the acknowledgement (NLM_F_ACK is always set). Throws NetlinkError.
   */
  request(type: number, flags: number, fixed: Uint8Array, attrs: readonly NlAttr[], what: string): NlMessage[] {
    if (this.fd < 0) throw new Error("netlink socket is closed");
    const seq = (this.seq = (this.seq + 1) >>> 0);
    const dump = (flags & NLM_F_DUMP) === NLM_F_DUMP;
    this.addon.netlinkSend(this.fd, encodeMessage(type, flags | NLM_F_REQUEST | NLM_F_ACK, seq, fixed, attrs));
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
