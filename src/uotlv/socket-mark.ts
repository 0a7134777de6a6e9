/**
 * SO_MARK on the TCP sockets of UoTLV/1 clients, so that policy routing can keep the tunnel's
 * own connection out of the tunnel (ProxyGuard's --fwmark). Node cannot set socket options; the
 * native addon's `setSocketMark(fd, mark)` can, and it must happen before the SYN leaves, or the
 * SYN would be routed as unmarked traffic (into the tunnel, with a default route through it).
 *
 * Node creates the descriptor only while connecting, in one step with the connect itself. Giving
 * a local address makes it bind first; the mark is set between that bind and the connect by
 * wrapping the socket handle's connect method. That handle is Node's internal TCP wrapper, so
 * its shape is checked and anything unexpected is refused rather than left unmarked.
 */
import net from "node:net";
import { loadNative } from "../native/load.js";

type SetSocketMark = (fd: number, mark: number) => void;

function nativeSetSocketMark(): SetSocketMark | string {
  const { addon, reason } = loadNative();
  if (addon === null) return `setting SO_MARK on TCP sockets needs the native addon (${reason})`;
  if (typeof addon.setSocketMark !== "function") return "setting SO_MARK on TCP sockets needs a native addon with setSocketMark, which this build lacks";
  return addon.setSocketMark.bind(addon);
}

/** Why socket marks cannot be used here, or null when they can. */
export function socketMarkUnsupportedReason(): string | null {
  const s = nativeSetSocketMark();
  return typeof s === "string" ? s : null;
}

/** The parts of Node's TCP handle used here. */
interface TcpHandle {
  readonly fd: number;
  connect?: (...args: unknown[]) => number;
  connect6?: (...args: unknown[]) => number;
}

export interface MarkedConnectOptions {
  host: string;
  port: number;
  /** 0 or absent = any. */
  localPort?: number;
  mark: number;
}

/**
 * Starts connecting a TCP socket that carries `mark` from its first packet on. Fails (through
 * the socket's 'error' event, or by throwing when marks are unsupported) rather than connect
 * without the mark.
 */
export function connectMarked(o: MarkedConnectOptions): net.Socket {
  if (!Number.isInteger(o.mark) || o.mark < 0 || o.mark > 0xffffffff) throw new RangeError(`mark must be an integer from 0 to 4294967295, got ${o.mark}`);
  const setMark = nativeSetSocketMark();
  if (typeof setMark === "string") throw new Error(setMark);
  const v6 = net.isIPv6(o.host);
  const sock = new net.Socket();
  sock.connect({ host: o.host, port: o.port, localAddress: v6 ? "::" : "0.0.0.0", localPort: o.localPort ?? 0 });
  const handle = (sock as unknown as { _handle?: TcpHandle | null })._handle;
  const method = v6 ? "connect6" : "connect";
  const original = handle?.[method];
  if (handle === undefined || handle === null || typeof original !== "function") {
    sock.destroy();
    throw new Error("cannot set SO_MARK before connecting: this Node version's TCP handle is not the expected one");
  }
  handle[method] = function (this: TcpHandle, ...args: unknown[]): number {
    try {
      setMark(this.fd, o.mark);
    } catch (err) {
      // A negative errno makes Node fail the connect with that error, as a failed connect(2) would.
      const errno = (err as { errno?: unknown }).errno;
      return typeof errno === "number" && errno > 0 ? -errno : -1;
    }
    return original.apply(this, args);
  };
  return sock;
}
