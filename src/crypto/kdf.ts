/**
 * WireGuard's KDF_n (the whitepaper's HKDF over HMAC-BLAKE2s): with
 *   T0 = HMAC(key, input), T1 = HMAC(T0, 0x1), Ti = HMAC(T0, T(i-1) || i),
 * KDF_n returns T1..Tn. T0 is the pseudo-random key and is wiped before returning.
 */
import type { CryptoBackend } from "./backend.js";
import { wipe } from "./bytes.js";

/** Anything with WireGuard's HMAC-BLAKE2s, usually a {@link CryptoBackend}. */
export type HmacProvider = Pick<CryptoBackend, "hmac">;

function expand(backend: HmacProvider, key: Uint8Array, input: Uint8Array, n: 1 | 2 | 3): Uint8Array[] {
  const prk = backend.hmac(key, input);
  const out: Uint8Array[] = [];
  let previous: Uint8Array = new Uint8Array(0);
  for (let i = 1; i <= n; i++) {
    previous = backend.hmac(prk, previous, Uint8Array.of(i));
    out.push(previous);
  }
  wipe(prk);
  return out;
}

export function kdf1(backend: HmacProvider, key: Uint8Array, input: Uint8Array): Uint8Array {
  const [t1] = expand(backend, key, input, 1) as [Uint8Array];
  return t1;
}

export function kdf2(backend: HmacProvider, key: Uint8Array, input: Uint8Array): [Uint8Array, Uint8Array] {
  return expand(backend, key, input, 2) as [Uint8Array, Uint8Array];
}

export function kdf3(
  backend: HmacProvider,
  key: Uint8Array,
  input: Uint8Array,
): [Uint8Array, Uint8Array, Uint8Array] {
  return expand(backend, key, input, 3) as [Uint8Array, Uint8Array, Uint8Array];
}
