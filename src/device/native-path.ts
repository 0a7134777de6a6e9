/**
 * The device's side of the native data path: it creates the addon's DataPath on the device's
 * Linux TUN and native UDP sockets and keeps it a faithful mirror of what the engine and the
 * device know — peers, AllowedIPs, endpoints, and every keypair with its send counter — while
 * feeding back what the timers need.
 *
 * Division of labour: the native side seals, opens, routes and moves data packets on its own
 * threads; it passes to JavaScript only handshake messages and packets for peers without a
 * usable session, which then take the ordinary (portable) way through the engine. The send
 * counter of each keypair lives natively and the engine draws from it through a
 * {@link SendCounter} cell, so a packet the engine seals itself never reuses a nonce.
 */
import { parseCidr } from "../allowedips/prefix.js";
import type { Bind, Endpoint } from "../bind/bind.js";
import { carrierOf, isAddressEndpoint } from "../bind/capabilities.js";
import type { Logger } from "../log/logger.js";
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
import type { Clock, DataPathActivity, Engine, Output, PeerHandle, SessionKeypairs } from "../noise/engine.js";
import type { Keypair, SendCounter } from "../noise/keypair.js";
import type { Tun } from "../tun/tun.js";

/**
 * The native side pushes an event after a burst of packets once its activity was last read;
 * while packets keep moving, reports are folded in at most this often (the first after a quiet
 * spell at once), so a busy path does not keep the JavaScript thread awake per burst.
 */
const ACTIVITY_MIN_INTERVAL_MS = 50;

/** The device's view of a peer that the native side needs. */
export interface NativePeerView {
  readonly nativeId: number;
  readonly handle: PeerHandle;
  endpoint: Endpoint | null;
}

export interface NativePathHost<P extends NativePeerView> {
  engine: Engine<Endpoint>;
  clock: Clock;
  log: Logger;
  /** Every peer of the device. */
  peers(): Iterable<P>;
  /** Each peer's AllowedIPs prefixes as text. */
  allowedIps(peer: P): string[];
  /** Carries out an engine output (as the device does for its own calls). */
  process(out: Output<Endpoint>): void;
  /** The native side saw the peer's packets come from a new endpoint. */
  roamed(peer: P, endpoint: Endpoint): void;
  /** The native side sent or received for the peer since the last report. */
  activity?(peer: P, sent: boolean, received: boolean): void;
}

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

/** Either a path ready to start, or why there is none. */
export type NativePathChoice<P extends NativePeerView> = { path: NativePath<P>; reason: null } | { path: null; reason: string };

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

export class NativePath<P extends NativePeerView> {
  private readonly byId = new Map<number, P>();
  private readonly byHandle = new Map<PeerHandle, P>();
  /** Peers the native side can send to (an endpoint on its sockets, directly or carried). */
  private readonly carried = new Set<number>();
  private timer: NodeJS.Timeout | null = null;
  private lastReportAt = -Infinity;
  private closed = false;

  private constructor(
    private readonly dp: NativeDataPath,
    private readonly host: NativePathHost<P>,
    private bind: NativeSocketBind,
    readonly description: string,
  ) {}

  /**
   * Creates the native data path when everything it needs is there: the addon (not disabled
   * with TSWG_DATAPATH=portable), a Linux TUN, and an open UdpBind on native sockets.
   * With TSWG_DATAPATH=native, anything missing is an error instead of a reason.
   */
  static choose<P extends NativePeerView>(
    tun: Tun,
    binds: readonly Bind[],
    host: NativePathHost<P>,
    preference: DataPathPreference,
  ): NativePathChoice<P> {
    const refuse = (reason: string): NativePathChoice<P> => {
      if (preference === "native") throw new Error(`the native data path was required but ${reason}`);
      return { path: null, reason };
    };
    if (preference === "portable") return { path: null, reason: "the portable path was asked for" };
    const { addon, reason } = loadNative();
    if (addon === null) return refuse(reason);
    if (addon.DataPath === undefined) return refuse("the native addon has no data path on this platform");
    if (!isNativeTun(tun)) return refuse("the packet side is not a Linux TUN");
    const bind = nativeSocketBind(binds);
    if (bind === undefined) return refuse("no UDP Bind on native sockets");
    const udp = bind.nativeSockets!;
    let path: NativePath<P> | null = null;
    const dp = new addon.DataPath(
      tun.native,
      udp,
      { rejectAfterMessages: host.engine.messageLimit, rejectAfterTimeMs: REJECT_AFTER_TIME, mtu: tun.mtu() },
      (type, peerId, localIndex) => path?.onEvent(type, peerId, localIndex),
    );
    const off = tun.offloads();
    const info = udp.info();
    const features = [
      off.vnetHdr ? `TUN offloads 0x${off.flags.toString(16)}` : "TUN without offloads",
      info.gso ? "UDP GSO" : "no UDP GSO",
      info.gro ? "UDP GRO" : "no UDP GRO",
    ];
    path = new NativePath(dp, host, bind, features.join(", "));
    return { path, reason: null };
  }

  /** Mirrors everything known so far and starts following the engine. */
  start(): void {
    for (const p of this.host.peers()) this.addPeer(p);
    this.syncRoutes();
    this.host.engine.observeKeypairs((peer, keypairs) => this.keypairsChanged(peer, keypairs));
  }

  /** Stops following, detaches from the TUN and sockets and forgets every key. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    // What happened since the last report still counts (byte counters, timers).
    this.pollActivity();
    this.host.engine.observeKeypairs(null);
    this.dp.close();
    this.byId.clear();
    this.byHandle.clear();
    this.carried.clear();
  }

  /** True when the native side sends the peer's data packets itself. */
  carries(p: P): boolean {
    return !this.closed && this.carried.has(p.nativeId);
  }

  stats(): NativeDataPathStats {
    return this.dp.stats();
  }

  /** What the native side dropped, by the reasons the engine and device use for the same cases. */
  drops(): Record<string, number> {
    const s = this.dp.stats();
    return {
      "no-route": s.noRoute,
      "unknown-index": s.unknownIndex,
      "expired-keypair": s.expired,
      "decryption-failed": s.decryptFailed,
      "replayed-counter": s.replayed,
      "bad-inner-packet": s.badInner,
      "source-not-allowed": s.sourceRejected,
      "send-failed": s.sendFailed,
    };
  }

  // ---- mirroring -----------------------------------------------------------------------------

  addPeer(p: P): void {
    if (this.closed) return;
    this.byId.set(p.nativeId, p);
    this.byHandle.set(p.handle, p);
    this.dp.setPeer(p.nativeId);
    this.setEndpoint(p);
    this.keypairsChanged(p.handle, this.host.engine.keypairsOf(p.handle));
  }

  removePeer(p: P): void {
    if (this.closed) return;
    this.byId.delete(p.nativeId);
    this.byHandle.delete(p.handle);
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
  syncRoutes(): void {
    if (this.closed) return;
    const records: number[][] = [];
    for (const p of this.byId.values()) {
      for (const text of this.host.allowedIps(p)) {
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
    if (!this.closed) this.dp.setMtu(mtu);
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

  private keypairsChanged(peer: PeerHandle, keypairs: SessionKeypairs): void {
    if (this.closed) return;
    const p = this.byHandle.get(peer);
    if (p === undefined) return;
    const now = this.host.clock.now();
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
    // From now on the counter lives natively; the engine draws from the same sequence.
    for (const k of [keypairs.current, keypairs.previous, keypairs.next]) {
      if (k !== null && !(k.counter instanceof NativeCounter)) {
        k.counter = new NativeCounter(this.dp, k.localIndex, this.host.engine.messageLimit);
      }
    }
  }

  // ---- feedback ------------------------------------------------------------------------------

  /** Folds what the native side did since the last call into the engine's timers and counters. */
  pollActivity(): void {
    if (this.closed) return;
    this.lastReportAt = this.host.clock.now();
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
        if (ep !== null && ep.key !== p.endpoint?.key) this.host.roamed(p, ep);
      }
      this.host.process(this.host.engine.recordActivity(p.handle, activity));
      this.host.activity?.(p, activity.sentAgoMs !== undefined, activity.receivedAgoMs !== undefined);
    }
  }

  /** Packets moved: fold them in now, or when the minimum interval since the last report is over. */
  private activityPushed(): void {
    if (this.closed || this.timer !== null) return;
    const wait = this.lastReportAt + ACTIVITY_MIN_INTERVAL_MS - this.host.clock.now();
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
    // Timers first, so the handshake completes against current activity.
    this.pollActivity();
    this.host.process(this.host.engine.confirmKeypair(p.handle, localIndex));
  }
}
