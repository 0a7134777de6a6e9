import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  KeyFormatError,
  generatePresharedKey,
  keyFromHex,
  keyToBase64,
  keyToHex,
  parseKey,
} from "../../src/crypto/index.js";

// Any 32 bytes will do; the hex form was checked with an independent base64 decoder.
const KEY_B64 = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
const KEY_HEX = "c809f3e5317e9575c9b5ed78b638b7ce530dabe85ddab614220241801ddf0669";

describe("key encodings", () => {
  it("decodes and re-encodes base64 and hex", () => {
    const key = parseKey(KEY_B64);
    expect(keyToHex(key)).toBe(KEY_HEX);
    expect(keyToBase64(key)).toBe(KEY_B64);
    expect(keyFromHex(KEY_HEX)).toEqual(key);
    expect(keyFromHex(KEY_HEX.toUpperCase())).toEqual(key);
    expect(parseKey(`  ${KEY_B64}\n`)).toEqual(key);
  });

  it("round-trips any 32 bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (bytes) => {
        expect(parseKey(keyToBase64(bytes))).toEqual(bytes);
        expect(keyFromHex(keyToHex(bytes))).toEqual(bytes);
      }),
    );
  });

  it("rejects malformed base64 keys with KeyFormatError", () => {
    const bad = [
      "",
      KEY_B64.slice(0, -1),
      KEY_B64.slice(0, -1) + "A",
      KEY_B64 + "=",
      "A" + KEY_B64,
      KEY_B64.replace("+", "-"),
      KEY_B64.slice(0, 42) + "n=", // non-zero padding bits
      Buffer.alloc(31).toString("base64"),
      Buffer.alloc(33).toString("base64"),
    ];
    for (const s of bad) expect(() => parseKey(s), JSON.stringify(s)).toThrow(KeyFormatError);
  });

  it("does not echo a rejected key in the error message", () => {
    const typo = KEY_B64.slice(0, 43);
    expect(() => parseKey(typo)).toThrow(/43 characters/);
    try {
      parseKey(typo);
    } catch (err) {
      expect(String(err)).not.toContain(typo);
    }
  });

  it("rejects malformed hex keys and wrong-length keys", () => {
    for (const s of ["", KEY_HEX.slice(2), KEY_HEX + "00", "zz" + KEY_HEX.slice(2), ` ${KEY_HEX}`]) {
      expect(() => keyFromHex(s), s).toThrow(KeyFormatError);
    }
    expect(() => keyToHex(new Uint8Array(31))).toThrow(KeyFormatError);
    expect(() => keyToBase64(new Uint8Array(33))).toThrow(KeyFormatError);
  });

  it("generates random 32-byte pre-shared keys", () => {
    const a = generatePresharedKey();
    const b = generatePresharedKey();
    expect(a.length).toBe(32);
    expect(keyToHex(a)).not.toBe(keyToHex(b));
  });
});
