/**
 * The plaintext inside an envelope: a {@link SignalingMessage} as JSON. JSON keeps the format easy
 * to inspect and to extend (unknown fields are ignored, so a newer peer may add some); messages are
 * small and rare, so compactness does not matter. Decoding checks every field: anything that does
 * not match the rules is dropped, and encoding applies the same rules so mistakes show at the sender.
 */
import { SignalingMessageError } from "./errors.js";
import type { SignalingMessage } from "./types.js";

/** Largest encoded message accepted, in bytes. */
export const MAX_MESSAGE_BYTES = 4096;
/** ufrag and pwd: RFC 8445 allows up to 256 characters. */
export const MAX_CREDENTIAL_LENGTH = 256;
export const MAX_CANDIDATE_LENGTH = 1024;
const MAX_GENERATION = 0xffff_ffff;

// ICE credentials are ice-chars (RFC 8445: ALPHA / DIGIT / "+" / "/"); other printable characters
// are let through since they cannot confuse anything here, but no spaces or controls.
const CREDENTIAL = /^[\x21-\x7e]+$/;
// A candidate line: printable ASCII with single spaces between its fields.
const CANDIDATE = /^[\x21-\x7e]+(?: [\x21-\x7e]+)*$/;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

type Checked = { ok: true; msg: SignalingMessage } | { ok: false; error: string };

function isGeneration(x: unknown): x is number {
  return typeof x === "number" && Number.isInteger(x) && x >= 0 && x <= MAX_GENERATION;
}

function isCredential(x: unknown): x is string {
  return typeof x === "string" && x.length >= 1 && x.length <= MAX_CREDENTIAL_LENGTH && CREDENTIAL.test(x);
}

function isCandidate(x: unknown): x is string | null {
  return x === null || (typeof x === "string" && x.length <= MAX_CANDIDATE_LENGTH && CANDIDATE.test(x));
}

/** Checks an untrusted value and returns a fresh message holding only the known fields. */
export function checkMessage(x: unknown): Checked {
  if (typeof x !== "object" || x === null || Array.isArray(x)) return { ok: false, error: "not an object" };
  const o = x as Record<string, unknown>;
  if (!isGeneration(o.generation)) return { ok: false, error: `generation must be an integer from 0 to ${MAX_GENERATION}` };
  switch (o.type) {
    case "credentials":
      if (!isCredential(o.ufrag)) return { ok: false, error: `ufrag must be 1-${MAX_CREDENTIAL_LENGTH} printable ASCII characters` };
      if (!isCredential(o.pwd)) return { ok: false, error: `pwd must be 1-${MAX_CREDENTIAL_LENGTH} printable ASCII characters` };
      return { ok: true, msg: { type: "credentials", generation: o.generation, ufrag: o.ufrag, pwd: o.pwd } };
    case "candidate":
      if (!isCandidate(o.candidate)) {
        return { ok: false, error: `candidate must be null or up to ${MAX_CANDIDATE_LENGTH} printable ASCII characters in space-separated fields` };
      }
      return { ok: true, msg: { type: "candidate", generation: o.generation, candidate: o.candidate } };
    case "restart":
      return { ok: true, msg: { type: "restart", generation: o.generation } };
    default:
      return { ok: false, error: `unknown message type ${JSON.stringify(o.type)}` };
  }
}

/** Encodes a message; throws {@link SignalingMessageError} if it breaks the rules. */
export function encodeMessage(msg: SignalingMessage): Uint8Array {
  const checked = checkMessage(msg);
  if (!checked.ok) throw new SignalingMessageError(`invalid signaling message: ${checked.error}`);
  const bytes = encoder.encode(JSON.stringify(checked.msg));
  if (bytes.length > MAX_MESSAGE_BYTES) throw new SignalingMessageError(`signaling message of ${bytes.length} bytes exceeds ${MAX_MESSAGE_BYTES}`);
  return bytes;
}

/** Decodes untrusted bytes; null for anything that is not a valid message. Never throws. */
export function decodeMessage(bytes: Uint8Array): SignalingMessage | null {
  if (bytes.length > MAX_MESSAGE_BYTES) return null;
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(bytes));
  } catch {
    return null;
  }
  const checked = checkMessage(value);
  return checked.ok ? checked.msg : null;
}
