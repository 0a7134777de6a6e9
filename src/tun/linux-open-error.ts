/**
 * Turns a failure of the native TUN constructor (errno name plus failed step) into a message
 * that tells the user what to do.
 */

export interface TunOpenFailure {
  /** errno name, e.g. "EACCES". */
  code: string;
  /** The step that failed, e.g. "open(/dev/net/tun)" or "ioctl(TUNSETIFF)". */
  syscall: string;
  /** The native error's own message. */
  message: string;
}

const NEEDS_ADMIN = "run as root or with CAP_NET_ADMIN";

export function describeTunOpenFailure(
  failure: TunOpenFailure,
  name: string,
  netns: string | null,
): string {
  const { code, syscall } = failure;
  const quoted = JSON.stringify(name);
  if (syscall.startsWith("open(/dev/net/tun")) {
    if (code === "EACCES" || code === "EPERM") {
      return `cannot open /dev/net/tun: permission denied (${NEEDS_ADMIN})`;
    }
    if (code === "ENOENT" || code === "ENODEV" || code === "ENXIO") {
      return "cannot open /dev/net/tun: no TUN support (load the module with \"modprobe tun\")";
    }
  } else if (syscall.startsWith("ioctl(TUNSETIFF")) {
    if (code === "EBUSY") return `interface name in use: ${quoted} is already attached to another process`;
    if (code === "EEXIST") return `interface name in use: ${quoted} exists and is not a TUN device`;
    if (code === "EPERM" || code === "EACCES") {
      return `cannot create TUN interface ${quoted}: permission denied (${NEEDS_ADMIN})`;
    }
    if (code === "EINVAL") return `invalid interface name ${quoted}: refused by the kernel`;
  } else if (syscall.startsWith("open(") && netns !== null) {
    if (code === "ENOENT") return `network namespace ${JSON.stringify(netns)} not found`;
  } else if (syscall.startsWith("setns(")) {
    if (code === "EPERM") {
      return `cannot enter network namespace ${JSON.stringify(netns)}: permission denied (needs CAP_SYS_ADMIN)`;
    }
  }
  return `cannot create TUN interface ${quoted}: ${failure.message}`;
}
