/**
 * UoTLV/1 framing: each datagram travels as a 2-byte big-endian length followed by that many
 * bytes. There are no other frame types, so a length above the limit is the only way a stream
 * can be malformed; it ends that connection.
 */
import { FRAME_HEADER_BYTES, MAX_DATAGRAM_BYTES } from "./constants.js";

/** The stream broke the framing rules; the connection it came from must be closed. */
export class FrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FrameError";
  }
}

/** Bytes the frames of `datagrams` take on the stream. */
export function framedLength(datagrams: readonly Uint8Array[]): number {
  let total = 0;
  for (const d of datagrams) total += FRAME_HEADER_BYTES + d.length;
  return total;
}

/**
 * Encodes datagrams as consecutive frames in one new buffer (a copy: the caller may reuse its
 * buffers at once). Throws RangeError for a datagram over {@link MAX_DATAGRAM_BYTES}.
 */
export function encodeFrames(datagrams: readonly Uint8Array[]): Buffer {
  for (const d of datagrams) {
    if (d.length > MAX_DATAGRAM_BYTES) throw new RangeError(`datagram of ${d.length} bytes exceeds the UoTLV/1 limit of ${MAX_DATAGRAM_BYTES}`);
  }
  const out = Buffer.allocUnsafe(framedLength(datagrams));
  let at = 0;
  for (const d of datagrams) {
    out[at] = d.length >>> 8;
    out[at + 1] = d.length & 0xff;
    out.set(d, at + FRAME_HEADER_BYTES);
    at += FRAME_HEADER_BYTES + d.length;
  }
  return out;
}

/**
 * Splits a byte stream back into datagrams, whatever the chunk boundaries. A datagram that lies
 * wholly inside one chunk is handed out as a view of that chunk (no copy); one that spans chunks
 * is assembled in a buffer of exactly its size, so a peer trickling bytes costs no more than
 * one frame of memory. Zero-length frames carry nothing and are skipped.
 */
export class FrameDecoder {
  /** Length-prefix bytes seen of the frame in progress (0 or 1 between pushes). */
  private headerBytes = 0;
  private headerValue = 0;
  /** The body of a frame that spans chunks, and how much of it has arrived. */
  private body: Buffer | null = null;
  private filled = 0;
  private failed: FrameError | null = null;

  constructor(private readonly maxDatagram: number = MAX_DATAGRAM_BYTES) {}

  /** Bytes held for a frame that has not completed yet. */
  get pendingBytes(): number {
    return this.body !== null ? FRAME_HEADER_BYTES + this.filled : this.headerBytes;
  }

  /**
   * Feeds the next bytes of the stream; `onDatagram` runs for every completed datagram, in
   * order. Throws {@link FrameError} on a length over the limit, and on every push after that.
   */
  push(chunk: Uint8Array, onDatagram: (datagram: Uint8Array) => void): void {
    if (this.failed !== null) throw this.failed;
    const n = chunk.length;
    let off = 0;
    while (off < n) {
      if (this.body !== null) {
        const take = Math.min(this.body.length - this.filled, n - off);
        this.body.set(chunk.subarray(off, off + take), this.filled);
        this.filled += take;
        off += take;
        if (this.filled === this.body.length) {
          const done = this.body;
          this.body = null;
          onDatagram(done);
        }
        continue;
      }
      let length: number;
      if (this.headerBytes === 0 && n - off >= FRAME_HEADER_BYTES) {
        length = (chunk[off]! << 8) | chunk[off + 1]!;
        off += FRAME_HEADER_BYTES;
      } else {
        this.headerValue = (this.headerValue << 8) | chunk[off]!;
        off++;
        if (++this.headerBytes < FRAME_HEADER_BYTES) continue;
        length = this.headerValue;
        this.headerBytes = 0;
        this.headerValue = 0;
      }
      if (length > this.maxDatagram) {
        this.failed = new FrameError(`frame length ${length} exceeds the limit of ${this.maxDatagram} bytes`);
        throw this.failed;
      }
      if (length === 0) continue;
      if (n - off >= length) {
        onDatagram(chunk.subarray(off, off + length));
        off += length;
      } else {
        this.body = Buffer.allocUnsafe(length);
        this.filled = 0;
      }
    }
  }
}
