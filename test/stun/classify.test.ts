/** Telling STUN and ChannelData from WireGuard on one socket, against messages built by the ICE library. */
import { describe, expect, it } from "vitest";
import { classes, Message, methods } from "werift-ice";
import { isChannelData, isIceTraffic, isStunMessage, stunClass, stunTransactionId, stunUsername } from "../../src/stun/classify.js";

function binding(cls: number, username?: string): Buffer {
  const m = new Message(methods.BINDING, cls);
  if (username !== undefined) m.setAttribute("USERNAME", username);
  return m.bytes;
}

describe("STUN and ChannelData classification", () => {
  it("recognises STUN requests and responses with their class, transaction ID and USERNAME", () => {
    const req = binding(classes.REQUEST, "abcd:efgh");
    expect(isStunMessage(req)).toBe(true);
    expect(stunClass(req)).toBe("request");
    expect(stunUsername(req)).toBe("abcd:efgh");
    const m = new Message(methods.BINDING, classes.RESPONSE);
    expect(stunClass(m.bytes)).toBe("success");
    expect(stunTransactionId(m.bytes)).toBe(m.transactionIdHex);
    expect(stunClass(binding(classes.ERROR))).toBe("error");
    expect(stunClass(binding(classes.INDICATION))).toBe("indication");
    expect(stunUsername(binding(classes.REQUEST))).toBeNull();
  });

  it("never takes a WireGuard message for STUN or ChannelData", () => {
    for (const type of [1, 2, 3, 4]) {
      for (const len of [32, 92, 148, 64, 1452]) {
        const wg = new Uint8Array(len);
        wg[0] = type;
        // Even with the cookie's bytes where STUN has them, the length rule does not match.
        wg.set([0x21, 0x12, 0xa4, 0x42], 4);
        expect(isIceTraffic(wg)).toBe(false);
      }
    }
  });

  it("rejects STUN look-alikes: top bits set, wrong cookie, inconsistent length", () => {
    const ok = binding(classes.REQUEST, "u:v");
    const top = Buffer.from(ok);
    top[0]! |= 0x80;
    expect(isStunMessage(top)).toBe(false);
    const cookie = Buffer.from(ok);
    cookie[7] = 0;
    expect(isStunMessage(cookie)).toBe(false);
    expect(isStunMessage(ok.subarray(0, ok.length - 4))).toBe(false);
    expect(isStunMessage(Buffer.concat([ok, Buffer.alloc(4)]))).toBe(false);
    expect(isStunMessage(new Uint8Array(10))).toBe(false);
  });

  it("recognises ChannelData by channel number and length (padding allowed)", () => {
    const cd = Buffer.from([0x40, 0x01, 0x00, 0x03, 1, 2, 3, 0]);
    expect(isChannelData(cd)).toBe(true);
    expect(isChannelData(Buffer.from([0x4f, 0xff, 0x00, 0x00]))).toBe(true);
    expect(isChannelData(Buffer.from([0x50, 0x00, 0x00, 0x00]))).toBe(false);
    expect(isChannelData(Buffer.from([0x40, 0x00, 0x00, 0x09, 1, 2]))).toBe(false);
    expect(isChannelData(Buffer.from([0x40, 0x00]))).toBe(false);
  });

  it("stops at a truncated attribute instead of reading past the message", () => {
    const req = Buffer.from(binding(classes.REQUEST, "abcd:efgh"));
    // USERNAME's length field now claims more than the message holds.
    req[22] = 0x01;
    expect(stunUsername(req)).toBeNull();
  });
});
