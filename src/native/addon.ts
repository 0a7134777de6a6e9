/**
 * The shape of the tswg_native addon's exports. Each native part adds its member here.
 */
import type { NativeAeadFunctions } from "./aead.js";
import type { NativeDataPathConstructor } from "./datapath.js";
import type { NativeHelperFunctions } from "./helpers.js";
import type { NativeTunConstructor } from "./tun.js";
import type { NativeUdpConstructor } from "./udp.js";

/** Bumped whenever the exports change incompatibly; the loader refuses a stale build. */
export const NATIVE_ABI_VERSION = 2;

export interface NativeAddon extends NativeAeadFunctions, Partial<NativeHelperFunctions> {
  readonly abiVersion: number;
  /** Linux TUN devices; absent on other systems. */
  readonly Tun?: NativeTunConstructor;
  /** Native UDP sockets with batched I/O; Linux only. */
  readonly Udp?: NativeUdpConstructor;
  /** The native data path joining a Tun and a Udp; Linux only. */
  readonly DataPath?: NativeDataPathConstructor;
}
