/**
 * The native sender's table takes a prober's size through the UDP port's `setPathMtu`: bad input
 * is a clear error, and the UDP Bind hands over only sizes for its own endpoints. (Its effect on
 * the data path is tested across a 1280 link in ice-path.test.ts.)
 */
import { afterEach, describe, expect, it } from "vitest";
import { UdpBind } from "../../src/bind/udp.js";
import { loadNative } from "../../src/native/load.js";

const hasNative = typeof loadNative().addon?.pathMtu === "function";

describe.skipIf(!hasNative)("setPathMtu on the native UDP port", () => {
  let bind: UdpBind | null = null;
  afterEach(async () => {
    await bind?.close();
    bind = null;
  });

  it("rejects bad input with a clear error and takes a size for a destination", async () => {
    bind = new UdpBind({ address4: "127.0.0.1", ipv6: false, sockets: "native" });
    await bind.open(0);
    const n = bind.nativeSockets!;
    expect(typeof n.setPathMtu).toBe("function");
    const lo = Uint8Array.of(127, 0, 0, 1);
    expect(() => n.setPathMtu!(4, lo, 9, "", 10)).toThrow(/mtu must be an integer from 68 to 65535/);
    expect(() => n.setPathMtu!(4, lo, 9, "", 1280.5)).toThrow(/mtu must be/);
    expect(() => n.setPathMtu!(4, new Uint8Array(3), 9, "", 1280)).toThrow(/unusable destination/);
    expect(() => (n.setPathMtu as unknown as (...a: unknown[]) => void)("4", lo, 9, "", 1280)).toThrow(/setPathMtu\(family, address, port, zone, mtu\)/);
    expect(n.setPathMtu!(4, lo, 9, "", 1280)).toBeUndefined();
    // Through the Bind: its own endpoint is taken, another Bind's is ignored without an error.
    const own = bind;
    expect(() => own.probedPathMtu(own.parseEndpoint("127.0.0.1:9"), 1280)).not.toThrow();
    const other = new UdpBind({ address4: "127.0.0.1", ipv6: false, sockets: "native" });
    expect(() => own.probedPathMtu(other.parseEndpoint("127.0.0.1:9"), 1280)).not.toThrow();
  });
});
