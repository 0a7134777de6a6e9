/**
 * Which side of a pair controls ICE (RFC 8445 §6.1.1: the controlling agent nominates the pair).
 * Both peers must reach the same answer without talking, so it is decided by the two WireGuard
 * public keys alone: the key that is larger, compared byte by byte, controls. The controlling
 * side also leads ICE restarts (see agent.ts), which rules out both sides restarting each
 * other in turn.
 */

export type IceRole = "controlling" | "controlled";

/** The role of the agent holding `local` when talking to `remote`. Throws for equal keys. */
export function iceRole(local: Uint8Array, remote: Uint8Array): IceRole {
  const c = compareKeys(local, remote);
  if (c === 0) throw new RangeError("ICE role: the local and remote public keys are equal (a peer cannot be itself)");
  return c > 0 ? "controlling" : "controlled";
}

/** Lexicographic byte comparison: negative, zero or positive. */
export function compareKeys(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return a.length - b.length;
}
