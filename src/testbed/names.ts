/**
 * Names of test-bed namespaces (and temporary directories): `tswgt-<pid base 36, 5 digits>.<3 random>-<bed>-<host>`.
 *
 * The creating PID is in the name so that leftovers of a dead test process can be told from
 * namespaces another live process is using; the "." after it is what marks a name as made by
 * this helper, so hand-made `tswgt-...` names of other tools are never swept.
 */
export const NETNS_PREFIX = "tswgt-";

// Padded to the width of the largest Linux PID (2^22), so every id has the same length.
const PID36 = process.pid.toString(36).padStart(5, "0");
const OURS = /^tswgt-([0-9a-z]{5})\.[0-9a-z]{3}-[0-9a-z]+-[0-9a-z]+$/;

/** A fresh id `<pid36>.<3 random>`, unique on this machine while this process lives. */
export function newBedId(): string {
  let r = "";
  while (r.length < 3) r += Math.floor(Math.random() * 36).toString(36);
  return `${PID36}.${r}`;
}

export function namespaceName(bedId: string, bed: string, host: string): string {
  return `${NETNS_PREFIX}${bedId}-${bed}-${host}`;
}

/** The PID that created a namespace of ours, or null for any other name. */
export function creatorPid(ns: string): number | null {
  const m = OURS.exec(ns);
  return m ? parseInt(m[1]!, 36) : null;
}
