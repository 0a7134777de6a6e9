/**
 * The "node" backend: node:crypto (OpenSSL) for X25519, ChaCha20-Poly1305, BLAKE2s-256 and
 * HMAC-BLAKE2s; @stablelib-based code for the two primitives node:crypto lacks (keyed BLAKE2s-128
 * and XChaCha20-Poly1305).
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  randomFillSync,
  type KeyObject,
} from "node:crypto";
import { XChaCha20Poly1305 } from "@stablelib/xchacha20poly1305";
import { ZeroSharedSecretError, type CryptoBackend } from "./backend.js";
import { blake2sMac } from "./blake2s.js";
import { isZero, wipe } from "./bytes.js";
import { KeyCache } from "./key-cache.js";
import {
  AEAD_NONCE_LENGTH,
  AEAD_TAG_LENGTH,
  KEY_LENGTH,
  XAEAD_NONCE_LENGTH,
  clampPrivateKey,
  requireLength,
} from "./sizes.js";

// OpenSSL derives the public half from `d` when importing a private JWK and does not check `x`,
// but Node insists the field is present; 32 zero bytes serve as a placeholder. (PKCS#8 import
// would avoid the placeholder but is several times slower.)
const PLACEHOLDER_X = Buffer.alloc(KEY_LENGTH).toString("base64url");

interface PrivateEntry {
  readonly key: KeyObject;
  readonly publicKey: Uint8Array;
}

function toBuffer(u: Uint8Array): Buffer {
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

export interface NodeBackendOptions {
  /** How many imported private keys to keep (the static key plus a few ephemerals). */
  privateKeyCacheSize?: number;
  /** How many imported public keys to keep (roughly one per peer). */
  publicKeyCacheSize?: number;
}

export class NodeBackend implements CryptoBackend {
  readonly name = "node";
  private readonly privateKeys: KeyCache<PrivateEntry>;
  private readonly publicKeys: KeyCache<KeyObject>;

  constructor(options: NodeBackendOptions = {}) {
    this.privateKeys = new KeyCache(options.privateKeyCacheSize ?? 16);
    this.publicKeys = new KeyCache(options.publicKeyCacheSize ?? 1024);
  }

  generatePrivateKey(): Uint8Array {
    return clampPrivateKey(randomFillSync(new Uint8Array(KEY_LENGTH)));
  }

  publicKey(privateKey: Uint8Array): Uint8Array {
    requireLength("X25519 private key", privateKey, KEY_LENGTH);
    return Uint8Array.from(this.importPrivate(privateKey).publicKey);
  }

  dh(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
    requireLength("X25519 private key", privateKey, KEY_LENGTH);
    requireLength("X25519 public key", publicKey, KEY_LENGTH);
    const priv = this.importPrivate(privateKey).key;
    const pub = this.importPublic(publicKey);
    let shared: Buffer;
    try {
      shared = diffieHellman({ privateKey: priv, publicKey: pub });
    } catch (err) {
      // OpenSSL 3 refuses to return an all-zero X25519 result and reports a derivation failure.
      // The inputs were checked above, so an OpenSSL error here means a low-order public key.
      if (isOpenSslError(err)) throw new ZeroSharedSecretError();
      throw err;
    }
    const out = new Uint8Array(shared);
    wipe(shared);
    if (isZero(out)) throw new ZeroSharedSecretError();
    return out;
  }

  aeadSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, ad?: Uint8Array): Uint8Array {
    requireLength("ChaCha20-Poly1305 key", key, KEY_LENGTH);
    requireLength("ChaCha20-Poly1305 nonce", nonce, AEAD_NONCE_LENGTH);
    const cipher = createCipheriv("chacha20-poly1305", key, nonce, { authTagLength: AEAD_TAG_LENGTH });
    if (ad !== undefined && ad.length > 0) cipher.setAAD(ad, { plaintextLength: plaintext.length });
    const body = cipher.update(plaintext);
    cipher.final();
    const out = new Uint8Array(body.length + AEAD_TAG_LENGTH);
    out.set(body, 0);
    out.set(cipher.getAuthTag(), body.length);
    return out;
  }

  aeadOpen(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, ad?: Uint8Array): Uint8Array | null {
    requireLength("ChaCha20-Poly1305 key", key, KEY_LENGTH);
    requireLength("ChaCha20-Poly1305 nonce", nonce, AEAD_NONCE_LENGTH);
    if (sealed.length < AEAD_TAG_LENGTH) return null;
    const bodyLength = sealed.length - AEAD_TAG_LENGTH;
    const decipher = createDecipheriv("chacha20-poly1305", key, nonce, { authTagLength: AEAD_TAG_LENGTH });
    decipher.setAuthTag(sealed.subarray(bodyLength));
    if (ad !== undefined && ad.length > 0) decipher.setAAD(ad, { plaintextLength: bodyLength });
    const body = decipher.update(sealed.subarray(0, bodyLength));
    try {
      decipher.final();
    } catch {
      // Authentication failed: the plaintext must not escape.
      wipe(body);
      return null;
    }
    return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
  }

  xaeadSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, ad?: Uint8Array): Uint8Array {
    requireLength("XChaCha20-Poly1305 key", key, KEY_LENGTH);
    requireLength("XChaCha20-Poly1305 nonce", nonce, XAEAD_NONCE_LENGTH);
    const aead = new XChaCha20Poly1305(key);
    try {
      return aead.seal(nonce, plaintext, ad);
    } finally {
      aead.clean();
    }
  }

  xaeadOpen(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, ad?: Uint8Array): Uint8Array | null {
    requireLength("XChaCha20-Poly1305 key", key, KEY_LENGTH);
    requireLength("XChaCha20-Poly1305 nonce", nonce, XAEAD_NONCE_LENGTH);
    const aead = new XChaCha20Poly1305(key);
    try {
      return aead.open(nonce, sealed, ad);
    } finally {
      aead.clean();
    }
  }

  hash(...data: Uint8Array[]): Uint8Array {
    const h = createHash("blake2s256");
    for (const part of data) h.update(part);
    return toUint8(h.digest());
  }

  mac(key: Uint8Array, ...data: Uint8Array[]): Uint8Array {
    return blake2sMac(key, data);
  }

  hmac(key: Uint8Array, ...data: Uint8Array[]): Uint8Array {
    const h = createHmac("blake2s256", key);
    for (const part of data) h.update(part);
    return toUint8(h.digest());
  }

  private importPrivate(privateKey: Uint8Array): PrivateEntry {
    // Cache under a digest rather than the key itself so raw private keys do not end up as
    // immutable JS strings that can never be wiped.
    const id = createHash("blake2s256").update(privateKey).digest("base64");
    let entry = this.privateKeys.get(id);
    if (entry === undefined) {
      const key = createPrivateKey({
        key: { kty: "OKP", crv: "X25519", d: toBuffer(privateKey).toString("base64url"), x: PLACEHOLDER_X },
        format: "jwk",
      });
      const x = createPublicKey(key).export({ format: "jwk" }).x;
      if (typeof x !== "string") throw new Error("node:crypto exported no X25519 public key");
      entry = { key, publicKey: new Uint8Array(Buffer.from(x, "base64url")) };
      this.privateKeys.set(id, entry);
    }
    return entry;
  }

  private importPublic(publicKey: Uint8Array): KeyObject {
    const x = toBuffer(publicKey).toString("base64url");
    let key = this.publicKeys.get(x);
    if (key === undefined) {
      key = createPublicKey({ key: { kty: "OKP", crv: "X25519", x }, format: "jwk" });
      this.publicKeys.set(x, key);
    }
    return key;
  }
}

function toUint8(b: Buffer): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

function isOpenSslError(err: unknown): boolean {
  if (typeof err !== "object" || err === null) return false;
  const code = (err as { code?: unknown }).code;
  return typeof code === "string" && code.startsWith("ERR_OSSL");
}

export function createNodeBackend(): CryptoBackend {
  return new NodeBackend();
}
