/**
 * The two messages of Noise_IKpsk2 with WireGuard's construction (whitepaper section 5.4.2-5.4.3):
 *
 *   <- s
 *   ...
 *   -> e, es, s, ss        payload: TAI64N timestamp in WireGuard
 *   <- e, ee, se, psk      payload: empty in WireGuard
 *
 * These functions produce and consume only the Noise parts of the messages (ephemeral key and
 * sealed fields); framing, indices and MACs are added by the caller. Prologue and payloads are
 * parameters so the Cacophony test vector can be replayed byte for byte. Ephemeral private keys
 * are passed in for the same reason. The static-static DH is passed in precomputed, because a
 * device computes it once per peer.
 *
 * Functions that read a message return null on any authentication or key failure and never throw
 * for bad input bytes.
 */
import type { CryptoBackend } from "../crypto/backend.js";
import { isZero, wipe } from "../crypto/index.js";
import { KEY_SIZE, TAG_SIZE } from "./constants.js";
import { SymmetricState } from "./symmetric.js";

export interface InitiationParts {
  ephemeral: Uint8Array;
  encryptedStatic: Uint8Array;
  encryptedPayload: Uint8Array;
}

export interface ResponseParts {
  ephemeral: Uint8Array;
  encryptedPayload: Uint8Array;
}

export interface WriteInitiationInput {
  prologue: Uint8Array;
  localStaticPublic: Uint8Array;
  remoteStatic: Uint8Array;
  /** DH(local static private, remote static public), precomputed. */
  staticStatic: Uint8Array;
  ephemeralPrivate: Uint8Array;
  payload: Uint8Array;
}

/** Writes message 1. The returned state is what the initiator keeps until the response arrives. */
export function writeInitiation(
  backend: CryptoBackend,
  input: WriteInitiationInput,
): { parts: InitiationParts; state: SymmetricState } {
  const st = SymmetricState.initialize(backend, input.prologue);
  st.mixHash(input.remoteStatic);
  const ephemeral = backend.publicKey(input.ephemeralPrivate);
  st.mixChain(ephemeral);
  st.mixHash(ephemeral);
  const es = backend.dh(input.ephemeralPrivate, input.remoteStatic);
  const k1 = st.mixKey(es);
  wipe(es);
  const encryptedStatic = st.encryptAndHash(k1, input.localStaticPublic);
  wipe(k1);
  const k2 = st.mixKey(input.staticStatic);
  const encryptedPayload = st.encryptAndHash(k2, input.payload);
  wipe(k2);
  return { parts: { ephemeral, encryptedStatic, encryptedPayload }, state: st };
}

export interface ReadInitiationInput {
  prologue: Uint8Array;
  localStaticPrivate: Uint8Array;
  localStaticPublic: Uint8Array;
  parts: InitiationParts;
  /** DH(local static private, initiator's static) for a known initiator, or null to reject it. */
  staticStatic: (remoteStatic: Uint8Array) => Uint8Array | null;
}

export interface ReadInitiationResult {
  remoteStatic: Uint8Array;
  remoteEphemeral: Uint8Array;
  payload: Uint8Array;
  state: SymmetricState;
}

/** Reads message 1 on the responder; null when it does not authenticate or the sender is unknown. */
export function readInitiation(backend: CryptoBackend, input: ReadInitiationInput): ReadInitiationResult | null {
  const { parts } = input;
  if (
    parts.ephemeral.length !== KEY_SIZE ||
    parts.encryptedStatic.length !== KEY_SIZE + TAG_SIZE ||
    parts.encryptedPayload.length < TAG_SIZE
  ) {
    return null;
  }
  const st = SymmetricState.initialize(backend, input.prologue);
  st.mixHash(input.localStaticPublic);
  const remoteEphemeral = parts.ephemeral.slice();
  st.mixChain(remoteEphemeral);
  st.mixHash(remoteEphemeral);
  const es = safeDh(backend, input.localStaticPrivate, remoteEphemeral);
  if (es === null) return fail(st);
  const k1 = st.mixKey(es);
  wipe(es);
  const remoteStatic = st.decryptAndHash(k1, parts.encryptedStatic);
  wipe(k1);
  if (remoteStatic === null) return fail(st);
  const ss = input.staticStatic(remoteStatic);
  if (ss === null || isZero(ss)) return fail(st);
  const k2 = st.mixKey(ss);
  const payload = st.decryptAndHash(k2, parts.encryptedPayload);
  wipe(k2);
  if (payload === null) return fail(st);
  return { remoteStatic, remoteEphemeral, payload, state: st };
}

export interface WriteResponseInput {
  /** The state returned by {@link readInitiation}; advanced in place. */
  state: SymmetricState;
  remoteEphemeral: Uint8Array;
  remoteStatic: Uint8Array;
  ephemeralPrivate: Uint8Array;
  /** 32 bytes; all zeros when the peers use no preshared key. */
  presharedKey: Uint8Array;
  payload: Uint8Array;
}

/** Writes message 2 on the responder. Throws only for invalid keys (e.g. a low-order point). */
export function writeResponse(backend: CryptoBackend, input: WriteResponseInput): ResponseParts {
  const st = input.state;
  const ephemeral = backend.publicKey(input.ephemeralPrivate);
  st.mixChain(ephemeral);
  st.mixHash(ephemeral);
  const ee = backend.dh(input.ephemeralPrivate, input.remoteEphemeral);
  wipe(st.mixKey(ee));
  wipe(ee);
  const se = backend.dh(input.ephemeralPrivate, input.remoteStatic);
  wipe(st.mixKey(se));
  wipe(se);
  const k = st.mixKeyAndHash(input.presharedKey);
  const encryptedPayload = st.encryptAndHash(k, input.payload);
  wipe(k);
  return { ephemeral, encryptedPayload };
}

export interface ReadResponseInput {
  /** The state returned by {@link writeInitiation}; not modified (a copy is advanced). */
  state: SymmetricState;
  localEphemeralPrivate: Uint8Array;
  localStaticPrivate: Uint8Array;
  presharedKey: Uint8Array;
  parts: ResponseParts;
}

/** Reads message 2 on the initiator; null when it does not authenticate. */
export function readResponse(
  backend: CryptoBackend,
  input: ReadResponseInput,
): { payload: Uint8Array; state: SymmetricState } | null {
  const { parts } = input;
  if (parts.ephemeral.length !== KEY_SIZE || parts.encryptedPayload.length < TAG_SIZE) return null;
  const st = input.state.clone();
  const remoteEphemeral = parts.ephemeral.slice();
  st.mixChain(remoteEphemeral);
  st.mixHash(remoteEphemeral);
  const ee = safeDh(backend, input.localEphemeralPrivate, remoteEphemeral);
  if (ee === null) return fail(st);
  wipe(st.mixKey(ee));
  wipe(ee);
  const se = safeDh(backend, input.localStaticPrivate, remoteEphemeral);
  if (se === null) return fail(st);
  wipe(st.mixKey(se));
  wipe(se);
  const k = st.mixKeyAndHash(input.presharedKey);
  const payload = st.decryptAndHash(k, parts.encryptedPayload);
  wipe(k);
  if (payload === null) return fail(st);
  return { payload, state: st };
}

/** Transport keys after message 2: [initiator → responder, responder → initiator]. */
export function deriveTransportKeys(state: SymmetricState): [Uint8Array, Uint8Array] {
  return state.split();
}

/** DH of a key received from the network: null instead of an exception for bad points. */
function safeDh(backend: CryptoBackend, privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array | null {
  try {
    return backend.dh(privateKey, publicKey);
  } catch {
    return null;
  }
}

function fail(st: SymmetricState): null {
  st.wipe();
  return null;
}
