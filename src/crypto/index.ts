/** The crypto layer: backends behind one interface, plus the helpers WireGuard builds on them. */
export { CryptoInputError, ZeroSharedSecretError, type CryptoBackend } from "./backend.js";
export {
  backends,
  backendNames,
  CRYPTO_BACKEND_ENV,
  DEFAULT_BACKEND_NAME,
  defaultBackend,
  getBackend,
  registerBackend,
  type BackendFactory,
} from "./registry.js";
export { NodeBackend, createNodeBackend, type NodeBackendOptions } from "./node.js";
export { NativeBackend, nativeBackendFactory } from "./native.js";
export { StablelibBackend, createStablelibBackend } from "./stablelib.js";
export { kdf1, kdf2, kdf3, type HmacProvider } from "./kdf.js";
export { concatBytes, constantTimeEqual, isZero, wipe } from "./bytes.js";
export { KeyFormatError, generatePresharedKey, keyFromHex, keyToBase64, keyToHex, parseKey } from "./keys.js";
export { counterNonce } from "./nonce.js";
export { blake2s, blake2sMac, type Blake2sOptions } from "./blake2s.js";
export {
  AEAD_NONCE_LENGTH,
  AEAD_TAG_LENGTH,
  HASH_LENGTH,
  KEY_LENGTH,
  MAC_LENGTH,
  XAEAD_NONCE_LENGTH,
  clampPrivateKey,
} from "./sizes.js";
