/**
 * The device's own drop counters (no route, no endpoint, send failed; the source check belongs to the data plane) in the
 * UAPI status as `tswg_drops_<reason>`, for `tswg show --json` and the metrics — unless the device
 * already reports drops itself, which then take precedence.
 */
import type { Device } from "../device/device.js";
import type { UapiHandler } from "../uapi/types.js";

const snake = (s: string): string => s.replace(/[A-Z]/gu, (c) => `_${c.toLowerCase()}`);

export function withDeviceCounters(handler: UapiHandler, device: Device): UapiHandler {
  return {
    async get() {
      const state = await handler.get();
      const extra = (state.extra ??= {});
      if (!Object.keys(extra).some((k) => k.startsWith("tswg_drop"))) {
        for (const [reason, n] of Object.entries(device.drops)) extra[`tswg_drops_${snake(reason)}`] = String(n);
      }
      return state;
    },
    set: (req) => handler.set(req),
  };
}
