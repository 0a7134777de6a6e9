/**
 * Things in a valid configuration that are probably not what was meant: reported as warnings,
 * since `wg` and wg-quick accept them.
 */
import { keyToBase64 } from "../crypto/keys.js";
import type { QuickConfig } from "./wgquick.js";

/** A peer as messages name it: the start of its public key. */
const short = (key: Uint8Array): string => `${keyToBase64(key).slice(0, 8)}…`;

/**
 * The same AllowedIPs prefix given to more than one peer. Cryptokey routing gives each prefix to
 * one peer, so all but the last lose it, silently with wg; tswg says so.
 */
export function allowedIpConflicts(config: QuickConfig): string[] {
  const owners = new Map<string, Uint8Array[]>();
  for (const p of config.peers) {
    for (const prefix of p.allowedIps) {
      const list = owners.get(prefix);
      if (list === undefined) owners.set(prefix, [p.publicKey]);
      else list.push(p.publicKey);
    }
  }
  const out: string[] = [];
  for (const [prefix, keys] of owners) {
    if (keys.length < 2) continue;
    const last = keys[keys.length - 1]!;
    out.push(`AllowedIPs ${prefix} is given to ${keys.length} peers (${keys.map(short).join(", ")}): only the last, ${short(last)}, gets it`);
  }
  return out;
}
