/**
 * The stack's packet side as a socket the native data plane takes for its TUN, so decrypted
 * packets move between the data plane and lwIP on native threads without entering JavaScript.
 *
 * 1. The stack opens a SOCK_SEQPACKET socketpair (one IP packet per message) and keeps one end:
 *    its reader thread feeds what arrives to lwIP in batches, lwIP's output is sent to it.
 * 2. The other end becomes the addon's `Tun` (a plain packet descriptor: no virtio-net header,
 *    no offloads); this class is the `Tun` a device sees, so its native data plane attaches to
 *    it like to a Linux TUN. The stack's packet sink is set on it: what the data plane decrypts
 *    goes into lwIP by a call on the data plane's thread, not through the socket. Packets the data plane passes on (no session yet) reach the
 *    device's read() in batches as with a TUN.
 */
import { closeSync } from "node:fs";
import { loadNative } from "../native/load.js";
import { LinuxTun } from "../tun/linux.js";
import type { NativeStack } from "./addon.js";

/** Batches the data plane may hand to JavaScript before read() takes them (as a TUN's default). */
const MAX_PENDING_BATCHES = 8;

export class StackSocketPort extends LinuxTun {
  #detached = false;

  private constructor(
    nativeTun: ConstructorParameters<typeof LinuxTun>[0],
    batchSize: number,
    /** The capability a device looks for: the stack this packet side belongs to. */
    readonly stack: { close(): Promise<void> },
    /** Whether the data plane's packets reach the stack by a call (a packet sink). */
    readonly direct: boolean,
  ) {
    super(nativeTun, batchSize, MAX_PENDING_BATCHES, 0);
    // As the batch side: a device waiting for packets does not keep the process alive; open
    // sockets of the stack do.
    this.unref();
  }

  /**
   * The socket side when the native addon can adopt a packet descriptor; otherwise the reason
   * (the caller then uses the batch side, StackPort).
   */
  static open(
    name: string,
    native: NativeStack,
    mtu: number,
    batchSize: number,
    stack: { close(): Promise<void> },
  ): { port: StackSocketPort; reason: null } | { port: null; reason: string } {
    const { addon, reason } = loadNative();
    if (addon === null) return { port: null, reason };
    if (addon.Tun === undefined) return { port: null, reason: "the native addon has no Tun on this platform" };
    const fd = native.openPacketFd();
    let nativeTun;
    try {
      nativeTun = new addon.Tun(fd, name, mtu);
    } catch (err) {
      // An addon built before packet descriptors were taken: the descriptor is still ours, and
      // the stack goes back to the batch side.
      closeSync(fd);
      native.closePacketFd();
      return { port: null, reason: `the native addon cannot take a packet socket (${(err as Error).message})` };
    }
    // The data plane's decrypted packets then go into lwIP by a call on its own thread; the
    // socket still carries lwIP's output and whatever JavaScript writes.
    const sink = native.packetSink?.() ?? null;
    const direct = sink !== null && nativeTun.setPacketSink?.(sink) === true;
    return { port: new StackSocketPort(nativeTun, batchSize, stack, direct), reason: null };
  }

  /** Nothing to take here: packets are exchanged natively. */
  wake(): void {}

  /** Ends reads and closes the data plane's end; the stack itself is closed by its owner. */
  detach(): void {
    if (this.#detached) return;
    this.#detached = true;
    void super.close();
    this.events.emit("down");
  }

  override async close(): Promise<void> {
    this.detach();
    await this.stack.close();
  }
}
