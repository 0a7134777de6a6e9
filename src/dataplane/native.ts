/**
 * The native data plane: the addon's DataPath (native/src/datapath.cc) on the device's Linux
 * TUN and native UDP sockets, seals, opens, routes and moves data packets on the threads that
 * read them, and pushes an event per burst; this class keeps it a copy of what the device and
 * the control plane know (peers, AllowedIPs, endpoints or their carriers, keypairs) and turns
 * its events into {@link DataPlaneEvents}.
 *
 * 1. TUN reader thread: AllowedIPs (dst) -> seal with the current keypair -> UDP GSO train.
 * 2. UDP receiver thread: open -> replay window -> AllowedIPs (src) -> joined TUN writes.
 * 3. What it passes up (packets without a usable session or endpoint, handshakes, datagrams of
 *    other Binds) takes the JavaScript way through a {@link PortablePlane} inside this one. The
 *    send counter of each keypair lives natively and the TypeScript side draws from it through
 *    a {@link SendCounter} cell, so a packet sealed in JavaScript never reuses a nonce.
 */
import { parseCidr } from "../allowedips/prefix.js";
import type { Bind, Endpoint } from "../bind/bind.js";
import { carrierOf, isAddressEndpoint } from "../bind/capabilities.js";
import type { CryptoBackend } from "../crypto/backend.js";
import {
  ACTIVITY_RECORD_SIZE,
  DATAPATH_EVENT_ACTIVITY,
  DATAPATH_EVENT_CONFIRMED,
  type NativeDataPath,
  type NativeDataPathStats,
  type NativeKeypairSpec,
} from "../native/datapath.js";
import { loadNative } from "../native/load.js";
import type { DataPathPreference } from "../native/mode.js";
import type { NativeTun, NativeTunOffloads } from "../native/tun.js";
import type { NativeUdp } from "../native/udp.js";
import { REJECT_AFTER_TIME } from "../noise/constants.js";
import type { DataPathActivity, SessionKeypairs } from "../noise/engine.js";
import type { Keypair, SendCounter } from "../noise/keypair.js";
import type { Tun } from "../tun/tun.js";
import type { DataPlane, DataPlaneOptions, Delivery, PlanePeer } from "./data-plane.js";
import { PortablePlane } from "./portable.js";

/**
 * The native side pushes an event after a burst of packets once its activity was last read;
 * while packets keep moving, reports are folded in at most this often (the first after a quiet
 * spell at once), so a busy path does not keep the JavaScript thread awake per burst.
 */
const ACTIVITY_MIN_INTERVAL_MS = 50;

/** A TUN whose descriptor the addon holds (the Linux TUN): what the native plane reads and writes. */
interface NativeTunDevice extends Tun {
  readonly native: NativeTun;
  offloads(): NativeTunOffloads;
}

/** A Bind on the addon's UDP sockets while open (the UDP Bind in its native form). */
interface NativeSocketBind extends Bind {
  readonly nativeSockets: NativeUdp | null;
  endpointFromPacked(packed: Uint8Array): Endpoint | null;
}

function isNativeTun(t: Tun): t is NativeTunDevice {
  const x = t as Partial<NativeTunDevice>;
  return typeof x.native === "object" && x.native !== null && typeof x.offloads === "function";
}

function nativeSocketBind(binds: readonly Bind[]): NativeSocketBind | undefined {
  return binds.find((b): b is NativeSocketBind => {
    const x = b as Partial<NativeSocketBind>;
    return typeof x.endpointFromPacked === "function" && typeof x.nativeSockets === "object" && x.nativeSockets !== null;
  });
}

/** Either a plane ready to use, or why there is none. */
export type NativePlaneChoice<P extends PlanePeer> = { plane: NativePlane<P>; reason: null } | { plane: null; reason: string };

/** A send counter kept by the native side, keyed by the keypair's local index. */
class NativeCounter implements SendCounter {
  constructor(
    private readonly dp: NativeDataPath,
    private readonly index: number,
    private readonly limit: number,
  ) {}
  peek(): number {
    const v = this.dp.counter(this.index);
    return v < 0 ? this.limit : v;
  }
  take(): number {
    const v = this.dp.takeCounter(this.index);
    return v < 0 ? this.limit : v;
  }
  set(value: number): void {
    this.dp.setCounter(this.index, value);
  }
}

export class NativePlane<P extends PlanePeer> implements DataPlane<P> {
  readonly kind = "native" as const;
  private readonly byId = new Map<number, P>();
  /** Peers the native side can send to (an endpoint on its sockets, directly or carried). */
  private readonly carried = new Set<number>();
  private timer: NodeJS.Timeout | null = null;
  private lastReportAt = -Infinity;
  private closed = false;

  private constructor(
    private readonly dp: NativeDataPath,
    private readonly js: PortablePlane<P>,
    private readonly opts: DataPlaneOptions<P>,
    private bind: NativeSocketBind,
    readonly description: string,
  ) {}

  /**
   * Creates the native plane when everything it needs is there: the addon (not disabled
   * with TSWG_DATAPATH=portable), a Linux TUN, and an open UDP Bind on native sockets.
   * With preference "native", anything missing is an error instead of a reason.
   */
  static choose<P extends PlanePeer>(
    tun: Tun,
    binds: readonly Bind[],
    backend: CryptoBackend,
    opts: DataPlaneOptions<P>,
    preference: DataPathPreference,
  ): NativePlaneChoice<P> {
    const refuse = (reason: string): NativePlaneChoice<P> => {
      if (preference === "native") throw new Error(`the native data path was required but ${reason}`);
      return { plane: null, reason };
    };
    if (preference === "portable") return { plane: null, reason: "the portable path was asked for" };
    const { addon, reason } = loadNative();
    if (addon === null) return refuse(reason);
    if (addon.DataPath === undefined) return refuse("the native addon has no data path on this platform");
    if (!isNativeTun(tun)) return refuse("the packet side is not a Linux TUN");
    const bind = nativeSocketBind(binds);
    if (bind === undefined) return refuse("no UDP Bind on native sockets");
    const udp = bind.nativeSockets!;
    let plane: NativePlane<P> | null = null;
    const dp = new addon.DataPath(
      tun.native,
      udp,
      { rejectAfterMessages: opts.rejectAfterMessages, rejectAfterTimeMs: REJECT_AFTER_TIME, mtu: opts.mtu },
      (type, peerId, localIndex) => plane?.onEvent(type, peerId, localIndex),
    );
    const off = tun.offloads();
    const info = udp.info();
    const features = [
      off.vnetHdr ? `TUN offloads 0x${off.flags.toString(16)}` : "TUN without offloads",
      info.gso ? "UDP GSO" : "no UDP GSO",
      info.gro ? "UDP GRO" : "no UDP GRO",
    ];
    plane = new NativePlane(dp, new PortablePlane(backend, opts), opts, bind, features.join(", "));
    return { plane, reason: null };
  }

  /** Stops, detaches from the TUN and sockets and forgets every key. Idempotent. */
  close(): void {
    if (this.closed) return;
    // What happened since the last report still counts (byte counters, timers).
    this.report();
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.dp.close();
    this.js.close();
    this.byId.clear();
    this.carried.clear();
  }

  carries(p: P): boolean {
    return !this.closed && this.carried.has(p.nativeId);
  }

  stats(): NativeDataPathStats {
    return this.dp.stats();
  }

  /** What both sides dropped, by the reasons the device uses for the same cases. */
  drops(): Record<string, number> {
    const out = this.js.drops();
    if (this.closed) return out;
    const s = this.dp.stats();
    const native: Record<string, number> = {
      "no-route": s.noRoute,
      "unknown-index": s.unknownIndex,
      "expired-keypair": s.expired,
      "decryption-failed": s.decryptFailed,
      "replayed-counter": s.replayed,
      "bad-inner-packet": s.badInner,
      "source-not-allowed": s.sourceRejected,
      "send-failed": s.sendFailed,
    };
    for (const [reason, n] of Object.entries(native)) if (n > 0) out[reason] = (out[reason] ?? 0) + n;
    return out;
  }

  send(peer: P, packets: Uint8Array[], out: Uint8Array[]): void {
    this.js.send(peer, packets, out);
  }

  receive(datagram: Uint8Array, src: Endpoint, out: Delivery<P>[]): void {
    this.js.receive(datagram, src, out);
  }

  flush(): void {
    // The native side's own bursts are pushed by its events; this ends a JavaScript one.
    this.js.flush();
  }

  report(): void {
    this.pollActivity();
    this.js.flush();
  }

  // ---- copies ----------------------------------------------------------------------------------

  addPeer(p: P): void {
    if (this.closed) return;
    this.byId.set(p.nativeId, p);
    this.js.addPeer(p);
    this.dp.setPeer(p.nativeId);
    this.setEndpoint(p);
  }

  removePeer(p: P): void {
    if (this.closed) return;
    this.js.removePeer(p);
    this.byId.delete(p.nativeId);
    this.carried.delete(p.nativeId);
    this.dp.removePeer(p.nativeId);
  }

  /**
   * The peer's endpoint, or what carries it (an ICE pair on the shared socket), changed on the
   * JavaScript side.
   */
  setEndpoint(p: P): void {
    if (this.closed || !this.byId.has(p.nativeId)) return;
    const ep = carrierOf(p.endpoint);
    // Only addresses on the sockets the native side uses can be sent to from there; for any
    // other, the peer's packets take the JavaScript way.
    if (ep !== null && ep.bind === this.bind && isAddressEndpoint(ep)) {
      this.dp.setEndpoint(p.nativeId, ep.family, ep.addressBytes(), ep.port, ep.zone, ep.channel ?? 0);
      this.carried.add(p.nativeId);
    } else {
      this.dp.setEndpoint(p.nativeId, 0);
      this.carried.delete(p.nativeId);
    }
  }

  /** AllowedIPs changed: the native table is rebuilt whole (changes are rare, lookups are not). */
  routesChanged(): void {
    if (this.closed) return;
    const records: number[][] = [];
    for (const p of this.byId.values()) {
      for (const text of this.opts.allowedIps(p)) {
        const prefix = parseCidr(text);
        const rec = new Array<number>(22).fill(0);
        rec[0] = prefix.family;
        rec[1] = prefix.bits;
        for (let i = 0; i < prefix.bytes.length; i++) rec[2 + i] = prefix.bytes[i]!;
        for (let i = 0; i < 4; i++) rec[18 + i] = (p.nativeId >>> (8 * i)) & 0xff;
        records.push(rec);
      }
    }
    this.dp.setAllowedIps(Uint8Array.from(records.flat()));
  }

  setMtu(mtu: number): void {
    if (this.closed) return;
    this.dp.setMtu(mtu);
    this.js.setMtu(mtu);
  }

  /** MSS clamping (mss-clamp.ts): 0 off, -1 auto, else the largest MSS. */
  setMssClamp(setting: number): void {
    if (!this.closed) this.dp.setMssClamp(setting);
  }

  /** The Binds were reopened (new listen port): follow the new sockets. */
  rebind(binds: readonly Bind[]): void {
    if (this.closed) return;
    const bind = nativeSocketBind(binds);
    this.dp.setUdp(bind?.nativeSockets ?? null);
    if (bind !== undefined) this.bind = bind;
    for (const p of this.byId.values()) this.setEndpoint(p);
  }

  setKeypairs(p: P, keypairs: SessionKeypairs): void {
    if (this.closed || !this.byId.has(p.nativeId)) return;
    const now = this.opts.now();
    const spec = (k: Keypair | null): NativeKeypairSpec | null =>
      k === null
        ? null
        : {
            localIndex: k.localIndex,
            remoteIndex: k.remoteIndex,
            sendKey: k.sendKey,
            receiveKey: k.receiveKey,
            ageMs: Math.max(0, now - k.created),
            sendCounter: k.sendCounter,
          };
    this.dp.setKeypairs(p.nativeId, spec(keypairs.current), spec(keypairs.previous), spec(keypairs.next));
    // From now on the counter lives natively; the TypeScript side draws from the same sequence.
    for (const k of [keypairs.current, keypairs.previous, keypairs.next]) {
      if (k !== null && !(k.counter instanceof NativeCounter)) {
        k.counter = new NativeCounter(this.dp, k.localIndex, this.opts.rejectAfterMessages);
      }
    }
    this.js.setKeypairs(p, keypairs);
  }

  // ---- events ----------------------------------------------------------------------------------

  /** Pushes what the native side did since the last call to the control plane. */
  private pollActivity(): void {
    if (this.closed) return;
    this.lastReportAt = this.opts.now();
    const records = this.dp.activity();
    for (let i = 0; i + ACTIVITY_RECORD_SIZE <= records.length; i += ACTIVITY_RECORD_SIZE) {
      const p = this.byId.get(records[i]!);
      if (p === undefined) continue;
      const ago = (v: number): number | undefined => (v < 0 ? undefined : v);
      const activity: DataPathActivity = {
        txBytes: records[i + 1]!,
        rxBytes: records[i + 2]!,
        sentAgoMs: ago(records[i + 3]!),
        dataSentAgoMs: ago(records[i + 4]!),
        receivedAgoMs: ago(records[i + 5]!),
        dataReceivedAgoMs: ago(records[i + 6]!),
      };
      if (records[i + 7] === 1) {
        const packed = this.dp.endpoint(p.nativeId);
        const ep = packed === null ? null : this.bind.endpointFromPacked(packed);
        if (ep !== null && ep.key !== p.endpoint?.key) this.opts.events.roamed(p, ep);
      }
      this.opts.events.activity(p, activity);
    }
  }

  /** Packets moved: report now, or when the minimum interval since the last report is over. */
  private activityPushed(): void {
    if (this.closed || this.timer !== null) return;
    const wait = this.lastReportAt + ACTIVITY_MIN_INTERVAL_MS - this.opts.now();
    if (wait <= 0) {
      this.pollActivity();
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = null;
      this.pollActivity();
    }, Math.ceil(wait));
    this.timer.unref();
  }

  private onEvent(type: number, peerId: number, localIndex: number): void {
    if (type === DATAPATH_EVENT_ACTIVITY) {
      this.activityPushed();
      return;
    }
    if (this.closed || type !== DATAPATH_EVENT_CONFIRMED) return;
    const p = this.byId.get(peerId);
    if (p === undefined) return;
    // Activity first, so the handshake completes against current timers.
    this.pollActivity();
    this.opts.events.confirmed(p, localIndex);
  }
}
