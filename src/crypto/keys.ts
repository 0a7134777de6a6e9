/**
 * Text encodings of 32-byte keys: base64 as in wg(8) config files and `wg genkey`, lowercase hex as
 * on the UAPI socket.
 */
import { randomFillSync } from "node:crypto";
import { KEY_LENGTH } from "./sizes.js";

/** A key string that is not a valid encoding of exactly 32 bytes. */
export class KeyFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KeyFormatError";
  }
}

// 32 bytes are 43 base64 digits plus one '=' of padding; the last digit carries 2 bits of padding,
// which must be zero for the encoding to be canonical.
const BASE64_KEY = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;
const HEX_KEY = /^[0-9a-fA-F]{64}$/;

/** Decodes a base64 key (surrounding whitespace ignored). Throws {@link KeyFormatError} otherwise. */
export function parseKey(text: string): Uint8Array {
  const trimmed = text.trim();
  if (!BASE64_KEY.test(trimmed)) {
    throw new KeyFormatError(`invalid key: expected 44 characters of base64 encoding 32 bytes, got ${describe(trimmed)}`);
  }
  return new Uint8Array(Buffer.from(trimmed, "base64"));
}

export function keyToBase64(key: Uint8Array): string {
  requireKey(key);
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString("base64");
}

export function keyToHex(key: Uint8Array): string {
  requireKey(key);
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString("hex");
}

/** Decodes a 64-digit hex key (either case). Throws {@link KeyFormatError} otherwise. */
export function keyFromHex(text: string): Uint8Array {
  if (!HEX_KEY.test(text)) {
    throw new KeyFormatError(`invalid key: expected 64 hex digits encoding 32 bytes, got ${describe(text)}`);
  }
  return new Uint8Array(Buffer.from(text, "hex"));
}

/** A fresh random 32-byte pre-shared key (`wg genpsk`). */
export function generatePresharedKey(): Uint8Array {
  return randomFillSync(new Uint8Array(KEY_LENGTH));
}

function requireKey(key: Uint8Array): void {
  if (!(key instanceof Uint8Array) || key.length !== KEY_LENGTH) {
    throw new KeyFormatError(`a key must be ${KEY_LENGTH} bytes`);
  }
}

// Report the shape of a bad key without echoing it: it may be a private key with a typo.
function describe(text: string): string {
  return `${text.length} characters`;
}
