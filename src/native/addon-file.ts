/**
 * Where a native addon file may be: built on this machine by node-gyp (build/Release), or
 * shipped prebuilt in the package for this platform (prebuilds/<platform>-<arch>, made by
 * scripts/prebuild.mjs when the package is packed). A local build comes first: it was made for
 * this machine, and `npm rebuild` is how a user replaces a prebuilt that does not suit.
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

export type AddonLoad<A> = { addon: A; reason: null } | { addon: null; reason: string };

/** src/native and dist/native both sit two levels below the package root. */
const root = new URL("../../", import.meta.url);

export function builtAddonPath(name: string): string {
  return fileURLToPath(new URL(`build/Release/${name}.node`, root));
}

export function prebuiltAddonPath(name: string): string {
  return fileURLToPath(new URL(`prebuilds/${process.platform}-${process.arch}/${name}.node`, root));
}

/**
 * Loads the first of the local build and the prebuilt that loads. When neither file exists,
 * the build path's result (its "missing" reason names where a build goes); when every file
 * present fails, their reasons joined.
 */
export function loadAddonFile<A>(name: string, load: (path: string) => AddonLoad<A>): AddonLoad<A> {
  const present = [builtAddonPath(name), prebuiltAddonPath(name)].filter((p) => existsSync(p));
  if (present.length === 0) return load(builtAddonPath(name));
  const reasons: string[] = [];
  for (const path of present) {
    const r = load(path);
    if (r.reason === null) return r;
    reasons.push(r.reason);
  }
  return { addon: null, reason: [...new Set(reasons)].join("; ") };
}
