/**
 * One way to read and change a WireGuard interface, whatever implements it: the kernel module
 * over generic netlink ({@link KernelWireGuard}) or a userspace implementation over its UAPI
 * socket ({@link UapiWireGuard}: wireguard-go, boringtun, tswg itself). The data is the UAPI's
 * (get state, set request), so both speak the same shapes.
 */
import { formatSet } from "../uapi/protocol.js";
import { uapiGet, uapiRequest } from "../uapi/client.js";
import type { UapiDeviceState, UapiSetRequest } from "../uapi/types.js";

export interface WireGuardControl {
  /** "kernel" or "uapi": who does the crypto. */
  readonly kind: "kernel" | "uapi";
  readonly ifname: string;
  get(): Promise<UapiDeviceState>;
  set(request: UapiSetRequest): Promise<void>;
  close(): void;
}

/** A userspace WireGuard through /var/run/wireguard/<ifname>.sock (or `dir`). */
export class UapiWireGuard implements WireGuardControl {
  readonly kind = "uapi";
  constructor(
    readonly ifname: string,
    private readonly dir?: string,
  ) {}

  get(): Promise<UapiDeviceState> {
    return uapiGet(this.ifname, this.dir);
  }

  async set(request: UapiSetRequest): Promise<void> {
    const reply = await uapiRequest(this.ifname, `set=1\n${formatSet(request).map((l) => `${l}\n`).join("")}\n`, this.dir);
    const errno = /errno=(-?\d+)/.exec(reply);
    if (errno === null || errno[1] !== "0") throw new Error(`${this.ifname}: set failed (${errno === null ? "no errno" : `errno ${errno[1]}`})`);
  }

  close(): void {}
}
