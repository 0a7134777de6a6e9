/**
 * A Linux TUN interface, read and written through the native addon.
 *
 * A native thread reads packets in batches and hands them over here; `read()` returns them.
 * Back-pressure: the thread may have at most `maxPendingBatches` batches handed over and not
 * yet taken by `read()`; beyond that it stops reading and packets wait in the kernel's queue
 * (whose overflow the kernel drops and counts), so a slow consumer costs no memory here.
 *
 * Offloads: by default the interface is created with a virtio-net header (IFF_VNET_HDR) and
 * the kernel's checksum and segmentation offloads. The kernel then hands over TCP (and UDP)
 * "super-packets" of up to 64 KiB, which the native reader splits into ordinary packets, and
 * `write` joins consecutive segments of a TCP flow into one such packet: far fewer system calls
 * and trips through the kernel's stack per byte. `read` and `write` still deal in plain IP
 * packets. TSWG_TUN_OFFLOAD=0 in the environment (or `offload: false`) turns this off.
 *
 * Events: "up"/"down" and "mtu" come from polling the interface's flags and MTU every
 * `pollIntervalMs` (ioctls, a few microseconds each), and immediately when `setMtu` is used.
 * The initial state is emitted once right after creation. "down" is also emitted when the
 * interface disappears under us (deleted with `ip link del`); reads then end with null.
 */
import { EventEmitter } from "node:events";
import type { NativeTun, NativeTunOffloads, NativeTunStats } from "../native/tun.js";
import { loadNative } from "../native/load.js";
import { checkInterfaceName } from "./interface-name.js";
import { describeTunOpenFailure } from "./linux-open-error.js";
import type { Tun } from "./tun.js";

export interface LinuxTunOptions {
  /** MTU to set right after creation (68..65535); the kernel's default is 1500. */
  mtu?: number;
  /**
   * Create the interface inside this network namespace: a name from `ip netns list`
   * (/var/run/netns/NAME) or a path such as /proc/PID/ns/net. The process stays where it is.
   */
  netns?: string;
  /** Most packets per `read()`; default 128. */
  batchSize?: number;
  /** Batches the reader may hand over before `read()` takes them; default 8. */
  maxPendingBatches?: number;
  /** How often to check the link state and MTU, in milliseconds; 0 turns polling off. Default 2000. */
  pollIntervalMs?: number;
  /**
   * Virtio-net header and segmentation offloads (see above). Default on, unless the
   * environment has TSWG_TUN_OFFLOAD=0.
   */
  offload?: boolean;
}

/** Environment variable that turns TUN offloads off when set to "0". */
export const TUN_OFFLOAD_ENV = "TSWG_TUN_OFFLOAD";

export interface LinuxTunStats extends NativeTunStats {
  /** Batches delivered and waiting for `read()`. */
  queuedBatches: number;
}

const IFF_UP = 0x1;
const IFF_RUNNING = 0x40;
const MIN_MTU = 68;
const MAX_MTU = 65535;
const DEFAULT_BATCH_SIZE = 128;
const DEFAULT_MAX_PENDING = 8;
const DEFAULT_POLL_MS = 2000;

type Waiter = (packets: Uint8Array[] | null) => void;

/** A batch from the native reader; `taken` packets of it were already read. */
interface QueuedBatch {
  packets: Uint8Array[];
  taken: number;
}

export class LinuxTun implements Tun {
  readonly events = new EventEmitter();
  readonly #native: NativeTun;
  readonly #batchSize: number;
  #name: string;
  #mtu: number;
  #up: boolean;
  readonly #queue: QueuedBatch[] = [];
  readonly #waiters: Waiter[] = [];
  #closed = false;
  #ended = false;
  #userRef = true;
  #timer: NodeJS.Timeout | undefined;

  /** Use createLinuxTun(); this takes an opened, not yet started native device. */
  constructor(native: NativeTun, batchSize: number, maxPendingBatches: number, pollIntervalMs: number) {
    this.#native = native;
    this.#batchSize = batchSize;
    this.#name = native.name();
    this.#mtu = native.getMtu();
    this.#up = isUp(native.getFlags());
    native.start(
      (data, sizes, error) => this.#onBatch(data, sizes, error),
      batchSize,
      maxPendingBatches,
    );
    if (pollIntervalMs > 0) {
      this.#timer = setInterval(() => this.#poll(), pollIntervalMs);
      this.#timer.unref();
    }
    // Later than any listener attached right after creation.
    setImmediate(() => {
      if (!this.#closed && !this.#ended) this.events.emit(this.#up ? "up" : "down");
    });
  }

  /** Current interface name (follows renames, as of the last poll). */
  get name(): string {
    return this.#name;
  }

  mtu(): number {
    return this.#mtu;
  }

  batchSize(): number {
    return this.#batchSize;
  }

  /** The addon's device, for the native data path to attach to. */
  get native(): NativeTun {
    return this.#native;
  }

  /** Whether packets carry a virtio-net header, and which offloads the kernel accepted. */
  offloads(): NativeTunOffloads {
    return this.#native.offloads();
  }

  /** Whether the interface was administratively up and running at the last check. */
  isUp(): boolean {
    return this.#up;
  }

  read(): Promise<Uint8Array[] | null> {
    if (this.#queue.length > 0) return Promise.resolve(this.#take());
    if (this.#closed || this.#ended) return Promise.resolve(null);
    return new Promise((resolve) => {
      this.#waiters.push(resolve);
      this.#updateRef();
    });
  }

  write(packets: Uint8Array[]): Promise<void> {
    if (packets.length > 0) this.#native.write(packets);
    return Promise.resolve();
  }

  /** Sets the MTU (ioctl SIOCSIFMTU) and emits "mtu" when it changed. */
  setMtu(mtu: number): void {
    checkMtu(mtu);
    if (this.#closed) throw new Error(`cannot set MTU of ${this.#name}: device is closed`);
    try {
      this.#native.setMtu(mtu);
    } catch (err) {
      throw new Error(`cannot set MTU of ${this.#name} to ${mtu}: ${(err as Error).message}`, { cause: err });
    }
    this.#setMtuValue(mtu);
  }

  /** Counters from the native side plus the batches waiting here. */
  stats(): LinuxTunStats {
    return { ...this.#native.stats(), queuedBatches: this.#queue.length };
  }

  /** Lets a pending `read()` keep the process alive (the default), like a socket. */
  ref(): this {
    this.#userRef = true;
    this.#updateRef();
    return this;
  }

  /** A pending `read()` will not keep the process alive. */
  unref(): this {
    this.#userRef = false;
    this.#updateRef();
    return this;
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#native.close();
    this.#queue.length = 0;
    this.#releaseWaiters();
    return Promise.resolve();
  }

  #take(): Uint8Array[] {
    // A split super-packet can make one native batch longer than batchSize: hand it out in
    // pieces, acknowledging the batch once its last piece is taken. Small batches that arrived
    // close together go out as one.
    let packets: Uint8Array[] = [];
    while (this.#queue.length > 0 && packets.length < this.#batchSize) {
      const head = this.#queue[0]!;
      const room = this.#batchSize - packets.length;
      const left = head.packets.length - head.taken;
      if (left > room && packets.length > 0) break;
      const end = head.taken + Math.min(left, room);
      const piece = head.taken === 0 && end === head.packets.length ? head.packets : head.packets.slice(head.taken, end);
      packets = packets.length === 0 ? piece : packets.concat(piece);
      head.taken = end;
      if (head.taken === head.packets.length) {
        this.#queue.shift();
        this.#native.ack();
      }
    }
    return packets;
  }

  #onBatch(data: Buffer | null, sizes: Uint32Array | null, error: string | null): void {
    if (this.#closed) return;
    if (data === null || sizes === null) {
      this.#end(error);
      return;
    }
    const packets: Uint8Array[] = new Array(sizes.length);
    let offset = 0;
    for (let i = 0; i < sizes.length; i++) {
      packets[i] = data.subarray(offset, offset + sizes[i]);
      offset += sizes[i];
    }
    this.#queue.push({ packets, taken: 0 });
    const waiter = this.#waiters.shift();
    if (waiter === undefined) return;
    this.#updateRef();
    waiter(this.#take());
  }

  /** The reader stopped for good: the interface is gone. */
  #end(_error: string | null): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    if (this.#up) {
      this.#up = false;
      this.events.emit("down");
    }
    // Packets already queued stay readable; after them, reads end.
    if (this.#queue.length === 0) this.#releaseWaiters();
  }

  #releaseWaiters(): void {
    const waiters = this.#waiters.splice(0);
    this.#updateRef();
    for (const waiter of waiters) waiter(null);
  }

  #updateRef(): void {
    if (this.#closed) return;
    if (this.#userRef && this.#waiters.length > 0) this.#native.ref();
    else this.#native.unref();
  }

  #poll(): void {
    if (this.#closed || this.#ended) return;
    let flags: number;
    let mtu: number;
    try {
      this.#name = this.#native.name();
      flags = this.#native.getFlags();
      mtu = this.#native.getMtu();
    } catch {
      // Moved to another namespace or being deleted: keep the last known state; deletion
      // shows up as the reader ending.
      return;
    }
    const up = isUp(flags);
    if (up !== this.#up) {
      this.#up = up;
      this.events.emit(up ? "up" : "down");
    }
    this.#setMtuValue(mtu);
  }

  #setMtuValue(mtu: number): void {
    if (mtu === this.#mtu) return;
    this.#mtu = mtu;
    this.events.emit("mtu", mtu);
  }
}

/**
 * Creates a TUN interface (IFF_TUN | IFF_NO_PI) named `name`, or attaches to an existing
 * persistent one. `name` may be a template with one "%d" ("tswg%d"); `tun.name` has the result.
 * The interface is deleted when the device is closed (or the process ends).
 */
export async function createLinuxTun(name: string, opts: LinuxTunOptions = {}): Promise<LinuxTun> {
  checkInterfaceName(name, true);
  if (opts.mtu !== undefined) checkMtu(opts.mtu);
  const batchSize = positiveInteger("batchSize", opts.batchSize ?? DEFAULT_BATCH_SIZE, 4096);
  const maxPending = positiveInteger("maxPendingBatches", opts.maxPendingBatches ?? DEFAULT_MAX_PENDING, 1024);
  const pollIntervalMs = opts.pollIntervalMs ?? DEFAULT_POLL_MS;
  if (!Number.isFinite(pollIntervalMs) || pollIntervalMs < 0) {
    throw new RangeError(`pollIntervalMs must be a non-negative number, got ${pollIntervalMs}`);
  }
  const netns = opts.netns ?? null;
  const netnsPath = netns === null ? null : netnsToPath(netns);
  const offload = opts.offload ?? process.env[TUN_OFFLOAD_ENV] !== "0";

  const { addon, reason } = loadNative();
  if (addon === null) throw new Error(`Linux TUN needs the native addon: ${reason}`);
  if (addon.Tun === undefined) throw new Error("Linux TUN is not available on this platform");

  let native: NativeTun;
  try {
    native = new addon.Tun(name, netnsPath, offload);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const message = describeTunOpenFailure(
      { code: e.code ?? "", syscall: e.syscall ?? "", message: e.message },
      name,
      netns,
    );
    throw new Error(message, { cause: err });
  }
  try {
    if (opts.mtu !== undefined) native.setMtu(opts.mtu);
    return new LinuxTun(native, batchSize, maxPending, pollIntervalMs);
  } catch (err) {
    native.close();
    throw new Error(`cannot set up TUN interface ${JSON.stringify(name)}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

function isUp(flags: number): boolean {
  return (flags & IFF_UP) !== 0 && (flags & IFF_RUNNING) !== 0;
}

function checkMtu(mtu: number): void {
  if (!Number.isInteger(mtu) || mtu < MIN_MTU || mtu > MAX_MTU) {
    throw new RangeError(`invalid MTU ${mtu}: must be an integer in ${MIN_MTU}..${MAX_MTU}`);
  }
}

function positiveInteger(what: string, value: number, max: number): number {
  if (!Number.isInteger(value) || value < 1 || value > max) {
    throw new RangeError(`${what} must be an integer in 1..${max}, got ${value}`);
  }
  return value;
}

function netnsToPath(netns: string): string {
  if (netns.includes("/")) return netns;
  if (netns === "" || netns === "." || netns === "..") {
    throw new Error(`invalid network namespace name ${JSON.stringify(netns)}`);
  }
  return `/var/run/netns/${netns}`;
}
