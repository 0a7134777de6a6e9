/**
 * The shape of the tswg_native addon's exports. Each native part adds its member here.
 */
import type { NativeTunConstructor } from "./tun.js";

/** Bumped whenever the exports change incompatibly; the loader refuses a stale build. */
export const NATIVE_ABI_VERSION = 1;

export interface NativeAddon {
  readonly abiVersion: number;
  /** Linux TUN devices; absent on other systems. */
  readonly Tun?: NativeTunConstructor;
}
