import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  COOKIE_REPLY_SIZE,
  INITIATION_SIZE,
  REJECT_AFTER_MESSAGES,
  REJECT_AFTER_MESSAGES_EXACT,
  REKEY_AFTER_MESSAGES,
  REKEY_AFTER_MESSAGES_EXACT,
  RESPONSE_SIZE,
} from "../../src/noise/constants.js";
import {
  encodeCookieReply,
  encodeInitiation,
  encodeResponse,
  encodeTransport,
  messageType,
  parseCookieReply,
  parseInitiation,
  parseResponse,
  parseTransport,
} from "../../src/noise/messages.js";

const bytes = (n: number, fill: number) => new Uint8Array(n).fill(fill);

describe("message codecs", () => {
  it("round-trips an initiation and places fields at WireGuard's offsets", () => {
    const m = encodeInitiation({
      sender: 0xdeadbeef,
      ephemeral: bytes(32, 1),
      encryptedStatic: bytes(48, 2),
      encryptedTimestamp: bytes(28, 3),
      mac1: bytes(16, 4),
      mac2: bytes(16, 5),
    });
    expect(m).toHaveLength(INITIATION_SIZE);
    expect([...m.subarray(0, 8)]).toEqual([1, 0, 0, 0, 0xef, 0xbe, 0xad, 0xde]);
    expect(m[8]).toBe(1);
    expect(m[40]).toBe(2);
    expect(m[88]).toBe(3);
    expect(m[116]).toBe(4);
    expect(m[132]).toBe(5);
    const p = parseInitiation(m)!;
    expect(p.sender).toBe(0xdeadbeef);
    expect(p.encryptedTimestamp).toEqual(bytes(28, 3));
    expect(p.mac2).toEqual(bytes(16, 5));
    expect(messageType(m)).toBe(1);
  });

  it("round-trips a response, a cookie reply and a transport message", () => {
    const r = encodeResponse({ sender: 7, receiver: 9, ephemeral: bytes(32, 1), encryptedNothing: bytes(16, 2) });
    expect(r).toHaveLength(RESPONSE_SIZE);
    expect(parseResponse(r)).toMatchObject({ sender: 7, receiver: 9, mac1: bytes(16, 0) });
    const c = encodeCookieReply({ receiver: 5, nonce: bytes(24, 1), encryptedCookie: bytes(32, 2) });
    expect(c).toHaveLength(COOKIE_REPLY_SIZE);
    expect(parseCookieReply(c)).toMatchObject({ receiver: 5, nonce: bytes(24, 1), encryptedCookie: bytes(32, 2) });
    const t = encodeTransport(3, 2 ** 40 + 5, bytes(20, 9));
    expect(t).toHaveLength(36);
    const pt = parseTransport(t)!;
    expect(pt.receiver).toBe(3);
    expect(pt.counter).toBe(2 ** 40 + 5);
    expect([...pt.counterBytes]).toEqual([5, 0, 0, 0, 0, 1, 0, 0]);
    expect(pt.sealed).toEqual(bytes(20, 9));
  });

  it("refuses wrong lengths, wrong types and non-zero reserved bytes", () => {
    const init = encodeInitiation({ sender: 1, ephemeral: bytes(32, 1), encryptedStatic: bytes(48, 2), encryptedTimestamp: bytes(28, 3) });
    expect(parseInitiation(init.subarray(0, 147))).toBeNull();
    expect(parseInitiation(new Uint8Array([...init, 0]))).toBeNull();
    expect(parseResponse(init)).toBeNull();
    for (const i of [1, 2, 3]) {
      const bad = init.slice();
      bad[i] = 1;
      expect(parseInitiation(bad)).toBeNull();
      expect(messageType(bad)).toBe(0);
    }
    expect(parseTransport(new Uint8Array([4, 0, 0, 0, ...bytes(27, 0)]))).toBeNull();
    expect(parseTransport(new Uint8Array([4, 0, 0, 0, ...bytes(28, 0)]))).not.toBeNull();
    expect(messageType(new Uint8Array([4, 0, 0]))).toBe(0);
    expect(messageType(new Uint8Array([0, 0, 0, 0]))).toBe(0);
    expect(messageType(new Uint8Array([5, 0, 0, 0]))).toBe(0);
    expect(() => encodeInitiation({ sender: 1, ephemeral: bytes(31, 0), encryptedStatic: bytes(48, 0), encryptedTimestamp: bytes(28, 0) })).toThrow(RangeError);
    expect(() => encodeTransport(1, -1, bytes(16, 0))).toThrow(RangeError);
    expect(() => encodeTransport(1, 0, bytes(15, 0))).toThrow(RangeError);
  });

  it("reads counters at and beyond 2^53 as numbers that are at least 2^53", () => {
    const t = new Uint8Array(32);
    t[0] = 4;
    t.set([0, 0, 0, 0, 0, 0, 0x20, 0], 8); // 2^53
    expect(parseTransport(t)!.counter).toBe(2 ** 53);
    t.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], 8);
    expect(parseTransport(t)!.counter).toBeGreaterThanOrEqual(2 ** 53);
    expect(parseTransport(t)!.counter >= REJECT_AFTER_MESSAGES).toBe(true);
  });

  it("keeps the exact limits and clamps the applied ones below 2^53", () => {
    expect(REJECT_AFTER_MESSAGES_EXACT).toBe(18446744073709543423n);
    expect(REKEY_AFTER_MESSAGES_EXACT).toBe(1152921504606846976n);
    expect(Number.isSafeInteger(REJECT_AFTER_MESSAGES)).toBe(true);
    expect(REKEY_AFTER_MESSAGES).toBeLessThan(REJECT_AFTER_MESSAGES);
  });

  it("never throws on arbitrary bytes (property)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.integer({ min: 1, max: 4 }), (raw, type) => {
        for (const data of [raw, new Uint8Array([type, 0, 0, 0, ...raw])]) {
          messageType(data);
          const parsed = [parseInitiation(data), parseResponse(data), parseCookieReply(data), parseTransport(data)];
          // At most one parser accepts a datagram, and only one with the matching type and size.
          expect(parsed.filter((p) => p !== null).length).toBeLessThanOrEqual(1);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
