import { describe, expect, it } from "vitest";
import { bindingRequest, parseBindingResponse, transactionIdOf } from "../../src/stun/message.js";

const TXID = Uint8Array.from({ length: 12 }, (_, i) => 0xb0 + i);

/** A Binding Success Response built by hand: header + the given attributes. */
function response(attrs: Buffer[], txid: Uint8Array = TXID, type = 0x0101): Uint8Array {
  const body = Buffer.concat(attrs);
  const h = Buffer.alloc(20);
  h.writeUInt16BE(type, 0);
  h.writeUInt16BE(body.length, 2);
  h.writeUInt32BE(0x2112a442, 4);
  h.set(txid, 8);
  return Buffer.concat([h, body]);
}

function attr(type: number, value: number[]): Buffer {
  const padded = Buffer.alloc(4 + Math.ceil(value.length / 4) * 4);
  padded.writeUInt16BE(type, 0);
  padded.writeUInt16BE(value.length, 2);
  padded.set(value, 4);
  return padded;
}

describe("STUN binding", () => {
  it("builds a 20-byte Binding Request with the magic cookie", () => {
    const req = bindingRequest(TXID);
    expect(Buffer.from(req).toString("hex")).toBe("000100002112a442" + Buffer.from(TXID).toString("hex"));
    expect(transactionIdOf(req)).toEqual(TXID);
    expect(bindingRequest()).not.toEqual(bindingRequest());
    expect(() => bindingRequest(new Uint8Array(5))).toThrow(/12 bytes/);
  });

  it("reads XOR-MAPPED-ADDRESS (192.0.2.1:32853)", () => {
    // port 0x8055 ^ 0x2112 = 0xa147; address c0000201 ^ 2112a442 = e112a643
    const r = response([attr(0x8022, [0x74, 0x65, 0x73, 0x74]), attr(0x0020, [0, 1, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43])]);
    expect(parseBindingResponse(r, TXID)).toEqual({ family: 4, address: "192.0.2.1", port: 32853 });
  });

  it("reads an IPv6 XOR-MAPPED-ADDRESS", () => {
    const addr = Buffer.from("20010db8000000000000000000000001", "hex");
    const key = Buffer.concat([Buffer.from("2112a442", "hex"), Buffer.from(TXID)]);
    const x = addr.map((b, i) => b ^ key[i]!);
    const r = response([attr(0x0020, [0, 2, 0xa1, 0x47, ...x])]);
    expect(parseBindingResponse(r, TXID)).toEqual({ family: 6, address: "2001:db8::1", port: 32853 });
  });

  it("falls back to MAPPED-ADDRESS and prefers the XOR form", () => {
    const plain = attr(0x0001, [0, 1, 0x80, 0x55, 192, 0, 2, 9]);
    expect(parseBindingResponse(response([plain]), TXID)).toEqual({ family: 4, address: "192.0.2.9", port: 32853 });
    const both = response([plain, attr(0x0020, [0, 1, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43])]);
    expect(parseBindingResponse(both, TXID).address).toBe("192.0.2.1");
  });

  it("rejects what is not a matching success response, with a reason", () => {
    const good = [attr(0x0020, [0, 1, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43])];
    expect(() => parseBindingResponse(new Uint8Array(8), TXID)).toThrow(/not a STUN message/);
    expect(() => parseBindingResponse(response(good, TXID, 0x0111), TXID)).toThrow(/0x0111 is not a Binding Success/);
    expect(() => parseBindingResponse(response(good, new Uint8Array(12)), TXID)).toThrow(/another transaction/);
    expect(() => parseBindingResponse(response([]), TXID)).toThrow(/no \(XOR-\)MAPPED-ADDRESS/);
    const truncated = response(good).slice(0, 26);
    expect(() => parseBindingResponse(truncated, TXID)).toThrow(/does not fit/);
    const badCookie = Buffer.from(response(good));
    badCookie[4] = 0;
    expect(() => parseBindingResponse(badCookie, TXID)).toThrow(/magic cookie/);
    expect(() => parseBindingResponse(response([attr(0x0020, [0, 7, 0, 0, 1, 2, 3, 4])]), TXID)).toThrow(/family 0x7/);
    expect(() => parseBindingResponse(response([attr(0x0020, [0, 1, 0, 0])]), TXID)).toThrow(/too short/);
  });

  it("never crashes on random bytes", () => {
    for (let i = 0; i < 2000; i++) {
      const len = Math.floor(Math.random() * 60);
      const junk = Uint8Array.from({ length: len }, () => Math.floor(Math.random() * 256));
      if (len >= 20 && i % 2 === 0) junk.set([0x01, 0x01, 0, len - 20 - ((len - 20) % 4), 0x21, 0x12, 0xa4, 0x42, ...TXID]);
      try {
        parseBindingResponse(junk, TXID);
      } catch (e) {
        expect(e).toBeInstanceOf(Error);
      }
    }
  });
});
