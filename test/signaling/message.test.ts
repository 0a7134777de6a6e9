/** The message encoding: valid messages round-trip, anything else is refused (decode) or thrown (encode). */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { SignalingMessageError } from "../../src/signaling/errors.js";
import { MAX_MESSAGE_BYTES, decodeMessage, encodeMessage } from "../../src/signaling/message.js";
import type { SignalingMessage } from "../../src/signaling/types.js";

const bytes = (s: string) => new TextEncoder().encode(s);

describe("signaling messages", () => {
  const valid: SignalingMessage[] = [
    { type: "credentials", generation: 0, ufrag: "ab12", pwd: "0123456789abcdef012345" },
    { type: "candidate", generation: 3, candidate: "1 1 udp 2130706431 192.0.2.1 40000 typ host generation 0 ufrag ab12" },
    { type: "candidate", generation: 3, candidate: "candidate:2 1 udp 1694498815 198.51.100.7 3478 typ srflx raddr 10.0.0.2 rport 40000" },
    { type: "candidate", generation: 4294967295, candidate: null },
    { type: "restart", generation: 7 },
  ];

  it("round-trips every message type", () => {
    for (const m of valid) expect(decodeMessage(encodeMessage(m))).toEqual(m);
  });

  it("ignores unknown extra fields, keeping only the known ones", () => {
    const m = decodeMessage(bytes(JSON.stringify({ type: "restart", generation: 1, future: "x" })));
    expect(m).toEqual({ type: "restart", generation: 1 });
  });

  it("refuses malformed input without throwing", () => {
    const bad = [
      "",
      "null",
      "[]",
      "{",
      '{"type":"restart"}',
      '{"type":"restart","generation":-1}',
      '{"type":"restart","generation":1.5}',
      '{"type":"restart","generation":4294967296}',
      '{"type":"restart","generation":"1"}',
      '{"type":"bogus","generation":1}',
      '{"type":"credentials","generation":1,"ufrag":"","pwd":"x"}',
      '{"type":"credentials","generation":1,"ufrag":"a b","pwd":"x"}',
      '{"type":"credentials","generation":1,"ufrag":"ab","pwd":"' + "p".repeat(257) + '"}',
      '{"type":"candidate","generation":1}',
      '{"type":"candidate","generation":1,"candidate":"a\\nb"}',
      '{"type":"candidate","generation":1,"candidate":" leading"}',
      '{"type":"candidate","generation":1,"candidate":5}',
    ];
    for (const s of bad) expect(decodeMessage(bytes(s)), s).toBeNull();
    expect(decodeMessage(Uint8Array.of(0xff, 0xfe, 0x7b))).toBeNull(); // not UTF-8
    expect(decodeMessage(new Uint8Array(MAX_MESSAGE_BYTES + 1).fill(0x20))).toBeNull();
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (junk) => void decodeMessage(junk)));
    fc.assert(fc.property(fc.json(), (j) => void decodeMessage(bytes(j))));
  });

  it("encode throws a clear error for invalid messages", () => {
    expect(() => encodeMessage({ type: "credentials", generation: 0, ufrag: "a b", pwd: "x" })).toThrow(SignalingMessageError);
    expect(() => encodeMessage({ type: "restart", generation: -1 })).toThrow(/generation/);
    expect(() => encodeMessage({ type: "candidate", generation: 0, candidate: "x".repeat(2000) })).toThrow(/candidate/);
  });
});
