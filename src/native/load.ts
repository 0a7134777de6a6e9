/**
 * Finds and loads the tswg_native addon: the one `npm install` built into build/Release, else
 * the one prebuilt in the package (see addon-file.ts).
 *
 * Never throws: callers get the addon, or null and a reason they can show, and take the
 * pure-TypeScript path. Setting TSWG_NATIVE=0 in the environment forces that path.
 */
import { createRequire } from "node:module";
import { NATIVE_ABI_VERSION, type NativeAddon } from "./addon.js";
import { builtAddonPath, loadAddonFile, prebuiltAddonPath } from "./addon-file.js";

/** Where the build puts the addon. */
export const NATIVE_ADDON_PATH = builtAddonPath("tswg_native");
/** Where the package carries a prebuilt one for this platform, if it does. */
export const NATIVE_PREBUILT_PATH = prebuiltAddonPath("tswg_native");

export type NativeLoadResult =
  | { addon: NativeAddon; reason: null }
  | { addon: null; reason: string };

let cached: NativeLoadResult | undefined;

/** Loads the addon once per process. */
export function loadNative(): NativeLoadResult {
  if (cached === undefined) {
    cached =
      process.env.TSWG_NATIVE === "0"
        ? { addon: null, reason: "native addon disabled by TSWG_NATIVE=0" }
        : loadAddonFile("tswg_native", loadNativeFrom);
  }
  return cached;
}

/** Loads an addon file without caching (tests, or builds kept elsewhere). */
export function loadNativeFrom(path: string): NativeLoadResult {
  const require = createRequire(import.meta.url);
  let exports: unknown;
  try {
    exports = require(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "MODULE_NOT_FOUND" || code === "ENOENT") {
      return {
        addon: null,
        reason: `native addon not built: ${path} is missing (run "npm rebuild" or "npx node-gyp rebuild")`,
      };
    }
    return { addon: null, reason: `cannot load native addon ${path}: ${(err as Error).message}` };
  }
  const abi = (exports as { abiVersion?: unknown } | null)?.abiVersion;
  if (abi !== NATIVE_ABI_VERSION) {
    return {
      addon: null,
      reason: `native addon ${path} has ABI version ${String(abi)}, expected ${NATIVE_ABI_VERSION} (rebuild it with "npm rebuild")`,
    };
  }
  return { addon: exports as NativeAddon, reason: null };
}
