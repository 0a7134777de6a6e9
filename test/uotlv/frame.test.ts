import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encodeFrames, FrameDecoder, FrameError, framedLength } from "../../src/uotlv/frame.js";

/** Feeds `stream` to a fresh decoder in the given chunk sizes; returns the datagrams as hex. */
function decodeInChunks(stream: Uint8Array, sizes: number[]): string[] {
  const d = new FrameDecoder();
  const out: string[] = [];
  let off = 0;
  for (let i = 0; off < stream.length; i++) {
    const n = Math.max(1, sizes.length === 0 ? stream.length : sizes[i % sizes.length]!);
    d.push(stream.subarray(off, off + n), (dg) => out.push(Buffer.from(dg).toString("hex")));
    off += n;
  }
  expect(d.pendingBytes).toBe(0);
  return out;
}

describe("UoTLV/1 frames", () => {
  it("encodes a 2-byte big-endian length before each datagram", () => {
    const buf = encodeFrames([Buffer.from("abc"), new Uint8Array(0), new Uint8Array(300).fill(7)]);
    expect(buf.subarray(0, 5)).toEqual(Buffer.from([0, 3, 0x61, 0x62, 0x63]));
    expect(buf.subarray(5, 7)).toEqual(Buffer.from([0, 0]));
    expect(buf.subarray(7, 9)).toEqual(Buffer.from([0x01, 0x2c])); // 300, big-endian
    expect(buf.length).toBe(framedLength([Buffer.from("abc"), new Uint8Array(0), new Uint8Array(300)]));
  });

  it("accepts the largest datagram and refuses one byte more", () => {
    const max = encodeFrames([new Uint8Array(65534)]);
    expect(max.subarray(0, 2)).toEqual(Buffer.from([0xff, 0xfe]));
    expect(() => encodeFrames([new Uint8Array(65535)])).toThrow(RangeError);
  });

  it("copies, so the caller may reuse its buffers", () => {
    const d = Buffer.from("hello");
    const frames = encodeFrames([d]);
    d.fill(0);
    expect(frames.subarray(2).toString()).toBe("hello");
  });

  it("decodes whatever the chunk boundaries are", () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 3000 }), { maxLength: 12 }),
        fc.array(fc.integer({ min: 1, max: 4000 }), { maxLength: 8 }),
        (datagrams, sizes) => {
          const stream = encodeFrames(datagrams);
          expect(decodeInChunks(stream, sizes)).toEqual(datagrams.map((d) => Buffer.from(d).toString("hex")));
        },
      ),
      { numRuns: 300 },
    );
  });

  it("decodes a stream fed one byte at a time, holding no more than one frame", () => {
    const big = new Uint8Array(65534).map((_, i) => i & 0xff);
    const stream = encodeFrames([Buffer.from("x"), big, Buffer.from("yz")]);
    const d = new FrameDecoder();
    const got: Uint8Array[] = [];
    let maxHeld = 0;
    for (let i = 0; i < stream.length; i++) {
      d.push(stream.subarray(i, i + 1), (dg) => got.push(Buffer.from(dg)));
      maxHeld = Math.max(maxHeld, d.pendingBytes);
    }
    expect(got.map((g) => g.length)).toEqual([1, 65534, 2]);
    expect(Buffer.from(got[1]!).equals(Buffer.from(big))).toBe(true);
    expect(maxHeld).toBeLessThanOrEqual(65536);
  });

  it("skips zero-length frames", () => {
    const got: number[] = [];
    new FrameDecoder().push(Buffer.from([0, 0, 0, 1, 9, 0, 0]), (d) => got.push(d.length));
    expect(got).toEqual([1]);
  });

  it("refuses a length over the limit, also when the prefix is split, and stays failed", () => {
    const d = new FrameDecoder();
    const got: number[] = [];
    d.push(Buffer.from([0, 1, 5, 0xff]), (x) => got.push(x.length));
    expect(() => d.push(Buffer.from([0xff, 1, 2]), () => {})).toThrow(FrameError);
    expect(() => d.push(Buffer.from([0, 1, 5]), () => {})).toThrow(/65535 exceeds the limit of 65534/);
    expect(got).toEqual([1]);
  });

  it("reports an incomplete frame as pending bytes", () => {
    const d = new FrameDecoder();
    d.push(Buffer.from([0, 10, 1, 2, 3]), () => expect.unreachable());
    expect(d.pendingBytes).toBe(5);
    d.push(Buffer.from([0]), () => {});
    expect(d.pendingBytes).toBe(6);
  });
});
