import { describe, expect, it } from "vitest";
import { describeTunOpenFailure } from "../../src/tun/linux-open-error.js";

const fail = (code: string, syscall: string) => ({ code, syscall, message: `${syscall}: some text` });

describe("describeTunOpenFailure", () => {
  it("explains a permission problem on /dev/net/tun", () => {
    expect(describeTunOpenFailure(fail("EACCES", "open(/dev/net/tun)"), "wg0", null)).toBe(
      "cannot open /dev/net/tun: permission denied (run as root or with CAP_NET_ADMIN)",
    );
    expect(describeTunOpenFailure(fail("EPERM", "ioctl(TUNSETIFF)"), "wg0", null)).toMatch(
      /permission denied \(run as root or with CAP_NET_ADMIN\)/,
    );
  });

  it("suggests loading the module when the TUN driver is missing", () => {
    expect(describeTunOpenFailure(fail("ENOENT", "open(/dev/net/tun)"), "wg0", null)).toMatch(/modprobe tun/);
  });

  it("says the name is in use, and why", () => {
    expect(describeTunOpenFailure(fail("EBUSY", "ioctl(TUNSETIFF)"), "wg0", null)).toBe(
      'interface name in use: "wg0" is already attached to another process',
    );
    expect(describeTunOpenFailure(fail("EEXIST", "ioctl(TUNSETIFF)"), "lo", null)).toBe(
      'interface name in use: "lo" exists and is not a TUN device',
    );
  });

  it("names a missing network namespace", () => {
    expect(describeTunOpenFailure(fail("ENOENT", "open(/var/run/netns/blue)"), "wg0", "blue")).toBe(
      'network namespace "blue" not found',
    );
  });

  it("falls back to the native message", () => {
    expect(describeTunOpenFailure(fail("ENFILE", "ioctl(TUNSETIFF)"), "wg0", null)).toBe(
      'cannot create TUN interface "wg0": ioctl(TUNSETIFF): some text',
    );
  });
});
