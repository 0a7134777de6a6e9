/**
 * A WireGuard device: the protocol engine joined to a packet side (TUN) and one or more
 * transports (Binds), with cryptokey routing in between.
 *
 * The device owns no protocol logic; it moves bytes between three parts it joins: the control
 * plane (the engine: handshakes, cookies, timers), a data plane (src/dataplane: seals, opens,
 * replay windows, counters) and the Binds and TUN.
 *
 * 1. TUN: packets are routed to a peer by destination (AllowedIPs, the one table, owned here)
 *    and handed to the data plane to seal; what it cannot seal goes to the engine to wait for
 *    a handshake.
 * 2. Binds: transport messages go to the data plane (which checks the inner source against
 *    the same table), handshake messages to the engine.
 * 3. The engine's keypairs are installed in the data plane as they change; the data plane's
 *    events (activity, a confirmed keypair, handshake needed, roaming) drive the engine.
 * 4. One timer serves every peer at the engine's earliest deadline.
 *
 * The data plane is chosen once at `up()`: the native one (dataplane/native.ts) moves data
 * packets on the addon's threads where it can, so only what needs the engine reaches the loops
 * here; else the portable one. All of it runs on the JavaScript thread, so the engine is never
 * entered twice at once. See docs/device.md.
 */
import { AllowedIps, normalizeCidr } from "../allowedips/index.js";
import type { Bind, Endpoint, ReceiveFunc } from "../bind/bind.js";
import { carrierOf, isAddressEndpoint, observesActivity, probesPathMtu, ridesSocket, screensHandshakes, sharesSocket } from "../bind/capabilities.js";
import type { CryptoBackend } from "../crypto/backend.js";
import { defaultBackend } from "../crypto/index.js";
import { silentLogger, type Logger } from "../log/logger.js";
import { Engine, type Clock, type EngineEvent, type HandshakeCounters, type Output, type PeerHandle, type Transmit } from "../noise/engine.js";
import type { Tun } from "../tun/tun.js";
import type { Netstack } from "../netstack/netstack.js";
import type { NativeDataPathStats } from "../native/datapath.js";
import { dataPathPreference, type DataPathPreference } from "../native/mode.js";
import type { DataPlane, DataPlaneOptions, Delivery } from "../dataplane/data-plane.js";
import { NativePlane } from "../dataplane/native.js";
import { PortablePlane } from "../dataplane/portable.js";
import { loadNative } from "../native/load.js";
import { MESSAGE_TRANSPORT } from "../noise/constants.js";
import { endpointInnerMtu, endpointPathMtu, kernelPathMtuReader, PathMtuTable, type PathMtu } from "./pmtu.js";
import { TooBigResponder } from "./icmp-too-big.js";
import { MssClamp, nativeMssClamp, type MssClampSetting } from "./mss-clamp.js";

/** How a peer is configured; absent fields are left as they are. */
export interface PeerConfig {
  publicKey: Uint8Array;
  /** null removes the key. */
  presharedKey?: Uint8Array | null;
  /** An endpoint string any of the device's Binds understands, or an Endpoint; null forgets it. */
  endpoint?: string | Endpoint | null;
  /** Seconds, 0 = off. */
  persistentKeepalive?: number;
  /** Prefixes to add ("10.0.0.0/24"). */
  allowedIps?: string[];
  /** Prefixes to remove. */
  removeAllowedIps?: string[];
  /** Clear the peer's prefixes before adding `allowedIps`. */
  replaceAllowedIps?: boolean;
}

export interface PeerStatus {
  publicKey: Uint8Array;
  presharedKey: Uint8Array | null;
  endpoint: string | null;
  /** Which Bind carries the peer ("udp", ...), or null without an endpoint. */
  transport: string | null;
  /**
   * Where the peer's datagrams really go when its endpoint rides another transport's socket
   * (an ICE pair on the interface's UDP socket: "udp 192.0.2.1:51820"), else null.
   */
  carriedBy: string | null;
  /** Which data plane seals and opens the peer's data packets now. */
  dataPlane: "native" | "portable";
  /** The outer path MTU towards the endpoint and how it was learnt (pmtu.ts), null when unknown. */
  pathMtu: PathMtu | null;
  persistentKeepalive: number;
  allowedIps: string[];
  /** Wall-clock ms of the last completed handshake, 0 = never. */
  lastHandshakeMs: number;
  rxBytes: number;
  txBytes: number;
}

export interface DeviceStatus {
  name: string;
  publicKey: Uint8Array | null;
  privateKey: Uint8Array | null;
  /** The bound port while up, else the configured one. */
  listenPort: number;
  fwmark: number;
  cryptoBackend: string;
  /** "native" while the native data path moves the packets, else "portable". */
  dataPath: "native" | "portable";
  /** True while handshakes are answered with cookie replies (WireGuard's defence under load). */
  underLoad: boolean;
  /** Handshake messages received and cookie replies sent since the device was made. */
  handshakes: HandshakeCounters;
  peers: PeerStatus[];
}

export interface DeviceOptions {
  /** Interface name, for logs. Defaults to the TUN's name. */
  name?: string;
  tun: Tun;
  /** Transports, tried in order when parsing an endpoint. At least one. */
  binds: Bind[];
  backend?: CryptoBackend;
  clock?: Clock;
  logger?: Logger;
  /**
   * Which data path moves the packets: "native" (the addon's threads; an error where it cannot
   * run), "portable" (TypeScript only) or "auto" (native where possible). Default: the
   * TSWG_DATAPATH environment variable, else "auto".
   */
  dataPath?: DataPathPreference;
  /** TCP MSS clamping to the peer's path (mss-clamp.ts); default off. */
  mssClamp?: MssClampSetting;
}

/** A device-side view of a peer: the engine's handle plus where to send. */
class DevicePeer {
  endpoint: Endpoint | null = null;
  constructor(
    readonly handle: PeerHandle,
    /** Names the peer to the native data path. */
    readonly nativeId: number,
  ) {}
}

const systemClock: Clock = {
  now: () => performance.now(),
  wallNow: () => Date.now(),
};

/** A Bind that can be told which data plane runs (the UDP Bind then picks its sockets). */
interface PlaneAwareBind extends Bind {
  useDataPlane(plane: DataPathPreference): void;
}

function usePlaneOf(b: Bind, plane: DataPathPreference): void {
  const x = b as Partial<PlaneAwareBind>;
  if (typeof x.useDataPlane === "function") x.useDataPlane.call(b, plane);
}

function carriedBy(ep: Endpoint | null): string | null {
  if (ep === null) return null;
  const c = carrierOf(ep);
  if (c === null || c === ep) return null;
  const channel = isAddressEndpoint(c) ? (c.channel ?? 0) : 0;
  return `${c.bind.kind} ${c.dstToString()}${channel !== 0 ? ` (TURN channel 0x${channel.toString(16)})` : ""}`;
}

function shortKey(id: string): string {
  return id.slice(0, 8) + "…";
}

export class Device {
  readonly name: string;
  readonly tun: Tun;
  readonly binds: readonly Bind[];
  private readonly backend: CryptoBackend;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly engine: Engine<Endpoint>;
  private readonly routes = new AllowedIps<DevicePeer>();
  private readonly peersById = new Map<string, DevicePeer>();
  /** Kept for `status()`: the engine does not hand its key out. */
  private privateKey: Uint8Array | null = null;
  private configuredPort = 0;
  private boundPort = 0;
  private fwmark = 0;
  private state: "down" | "up" | "closed" = "down";
  private tunLoopDone: Promise<void> | null = null;
  /** One per Bind receiver; replaced when the Binds are reopened. */
  private receiveLoops: Promise<void>[] = [];
  private resolveStopped!: () => void;
  /**
   * Resolves when the device stops moving packets: after `close()`, or when the TUN goes away
   * underneath it (the interface deleted with `ip link del`), which callers treat as "down".
   */
  readonly stopped = new Promise<void>((r) => (this.resolveStopped = r));
  private timer: NodeJS.Timeout | null = null;
  private timerAt = Infinity;
  /** Serialises reconfiguration of the Binds (listen port changes) against start/close. */
  private bindOps: Promise<unknown> = Promise.resolve();
  /** Counters for packets the device itself dropped (not the engine). */
  readonly drops = { noRoute: 0, noEndpoint: 0, sendFailed: 0 };
  /** Path MTU per peer endpoint (pmtu.ts) and the ICMP answers to packets over it (icmp-too-big.ts). */
  private readonly kernelPathMtu = kernelPathMtuReader(loadNative().addon?.pathMtu);
  readonly pathMtus = new PathMtuTable(this.kernelPathMtu);
  readonly tooBig = new TooBigResponder();
  readonly mssClamp: MssClamp;
  /** Datagrams the engine dropped, by its reason. */
  private readonly engineDrops = new Map<string, number>();
  /** The data plane while up (chosen at `up()`). */
  private plane: DataPlane<DevicePeer> | null = null;
  /**
   * AllowedIPs changed since the native table was last rebuilt. A rebuild costs every route, so
   * changes made in one go (a whole UAPI request, a config) share one rebuild, at the end of
   * the current task; a rebuild per peer would make adding N peers cost N².
   */
  private routesDirty = false;
  /** A timer reschedule is pending for the end of the current task. */
  private timerDirty = false;
  /** The timer was set from a scan of every peer since it last fired. */
  private timerScanned = false;
  private nextNativeId = 1;
  private readonly dataPathWanted: DataPathPreference;

  constructor(opts: DeviceOptions) {
    if (opts.binds.length === 0) throw new Error("a device needs at least one Bind");
    this.name = opts.name ?? opts.tun.name;
    this.tun = opts.tun;
    this.binds = opts.binds;
    this.backend = opts.backend ?? defaultBackend();
    this.clock = opts.clock ?? systemClock;
    this.log = opts.logger ?? silentLogger;
    this.dataPathWanted = opts.dataPath ?? dataPathPreference();
    this.mssClamp = new MssClamp(opts.mssClamp ?? "off");
    this.engine = new Engine<Endpoint>({ backend: this.backend, clock: this.clock });
    this.tun.events.on("mtu", (mtu: number) => this.plane?.setMtu(mtu));
    // Keypairs are derived by the engine and installed in the data plane as they change.
    this.engine.observeKeypairs((handle, keypairs) => {
      const p = this.peersById.get(handle.id);
      if (p !== undefined) this.plane?.setKeypairs(p, keypairs);
    });
    // One socket per interface: a transport that can ride another's socket (ICE on the UDP
    // Bind's port) does, and whatever carries its endpoints is followed by the data plane.
    const owner = this.binds.find(sharesSocket) ?? null;
    for (const b of this.binds) {
      if (!ridesSocket(b)) continue;
      if (owner !== null) b.rideSocket(owner);
      b.onCarrierChange((ep) => this.carrierChanged(ep));
      if (owner !== null && probesPathMtu(b)) {
        b.probePathMtu(
          (ep) => this.kernelPathMtu?.(ep).mtu ?? 0,
          (ep, mtu) => {
            this.pathMtus.set(ep, mtu, "probe");
            owner.probedPathMtu?.(ep, mtu);
          },
        );
      }
    }
    for (const b of this.binds) usePlaneOf(b, this.dataPathWanted);
    // Handshake messages are sorted by their MACs as they are queued (flood defence).
    for (const b of this.binds) if (screensHandshakes(b)) b.setHandshakeScreen(this.engine.handshakeScreen());
  }

  // ---- life cycle ----------------------------------------------------------------------------

  /** Opens the Binds on the listen port and starts moving packets. */
  async up(): Promise<void> {
    if (this.state === "closed") throw new Error(`device ${this.name} is closed`);
    if (this.state === "up") return;
    await this.serialBinds(() => this.openBinds(this.configuredPort));
    try {
      this.startDataPath();
    } catch (err) {
      await this.serialBinds(async () => {
        for (const b of this.binds) await b.close();
      });
      throw err;
    }
    this.state = "up";
    this.tunLoopDone = this.tunLoop().finally(() => {
      if (this.state !== "closed") this.log.info("the TUN device went away");
      this.resolveStopped();
    });
    this.log.info(`up: listening on port ${this.boundPort}, crypto ${this.backend.name}, data path: ${this.dataPath}`);
    // Peers with persistent keepalive announce themselves at once, as WireGuard does.
    for (const p of this.peersById.values()) {
      if (p.handle.persistentKeepalive > 0) void this.process(this.engine.sendKeepalive(p.handle));
    }
    this.scheduleTimer();
  }

  /** Stops everything, wipes keys and closes the TUN and the Binds. Idempotent. */
  async close(): Promise<void> {
    if (this.state === "closed") return;
    this.state = "closed";
    this.clearTimer();
    // The data plane goes first: the native one holds the TUN and the sockets while it runs.
    if (this.plane !== null) for (const [r, n] of Object.entries(this.plane.drops())) this.engineDrops.set(r, (this.engineDrops.get(r) ?? 0) + n);
    this.plane?.close();
    this.plane = null;
    await this.serialBinds(async () => {
      // A Bind riding another's socket first: it may still send on it while closing (ICE
      // releases its TURN allocations there).
      for (const b of this.binds.filter(ridesSocket)) await b.close();
      for (const b of this.binds) if (!ridesSocket(b)) await b.close();
    });
    await this.tun.close();
    await Promise.allSettled([...this.receiveLoops, this.tunLoopDone]);
    this.engine.reset();
    this.engine.setPrivateKey(null);
    this.resolveStopped();
    this.log.info("closed");
  }

  get isUp(): boolean {
    return this.state === "up";
  }

  /**
   * The in-process network stack when the packet side is one (its `tun`, docs/netstack.md):
   * `device.netstack.connect()`, `createServer()`, `createUdpSocket()`, `ping()`. Else null.
   */
  get netstack(): Netstack | null {
    const owner = (this.tun as { stack?: unknown }).stack;
    return typeof owner === "object" && owner !== null && "connect" in owner ? (owner as Netstack) : null;
  }

  /** Which data path moves the packets: "native" (the addon's threads) or "portable" (TypeScript). */
  get dataPath(): "native" | "portable" {
    return this.plane?.kind ?? "portable";
  }

  /**
   * Every packet dropped so far, by reason, in one vocabulary for both data planes ("no-route",
   * "source-not-allowed", "decryption-failed", "replayed-counter", "unknown-index", ...): what
   * the device, the engine and (while it runs) the native plane dropped, added up.
   */
  dropCounts(): Record<string, number> {
    const out: Record<string, number> = {};
    const add = (reason: string, n: number): void => {
      if (n > 0) out[reason] = (out[reason] ?? 0) + n;
    };
    add("no-route", this.drops.noRoute);
    add("no-endpoint", this.drops.noEndpoint);
    add("send-failed", this.drops.sendFailed);
    for (const [reason, n] of this.engineDrops) add(reason, n);
    for (const [reason, n] of Object.entries(this.plane?.drops() ?? {})) add(reason, n);
    return out;
  }

  /** The native data path's counters while it runs, else null. */
  nativeStats(): NativeDataPathStats | null {
    return this.plane?.stats() ?? null;
  }

  // ---- configuration -------------------------------------------------------------------------

  get publicKey(): Uint8Array | null {
    return this.engine.publicKey;
  }

  /** Sets (null: removes) the private key; sessions restart with the new identity. */
  setPrivateKey(key: Uint8Array | null): void {
    this.engine.setPrivateKey(key);
    this.privateKey = key === null ? null : key.slice();
    // The engine drops a peer whose key became our own public key; follow it.
    for (const [id, p] of this.peersById) {
      if (this.engine.peer(id) === undefined) this.forgetPeer(p);
    }
    this.scheduleTimer();
  }

  get listenPort(): number {
    return this.state === "up" ? this.boundPort : this.configuredPort;
  }

  /** Changes the listen port; while up the Binds are reopened on it (0 = any free port). */
  async setListenPort(port: number): Promise<void> {
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`invalid listen port ${port}`);
    this.configuredPort = port;
    if (this.state !== "up" || port === this.boundPort) return;
    await this.serialBinds(async () => {
      for (const b of this.binds) await b.close();
      await Promise.allSettled(this.receiveLoops.splice(0));
      await this.openBinds(port);
      this.plane?.rebind(this.binds);
    });
    this.log.info(`listening on port ${this.boundPort}`);
  }

  async setFwmark(mark: number): Promise<void> {
    if (!Number.isInteger(mark) || mark < 0 || mark > 0xffffffff) throw new RangeError(`invalid fwmark ${mark}`);
    this.fwmark = mark;
    if (this.state === "up") for (const b of this.binds) await b.setMark(mark);
  }

  /** Parses an endpoint with the first Bind that understands it. */
  parseEndpoint(s: string): Endpoint {
    const errors: string[] = [];
    for (const b of this.binds) {
      try {
        return b.parseEndpoint(s);
      } catch (err) {
        errors.push(`${b.kind}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    throw new Error(`invalid endpoint "${s}" (${errors.join("; ")})`);
  }

  /** Adds the peer if it is new, then applies every field present in `cfg`. */
  setPeer(cfg: PeerConfig): void {
    const id = Buffer.from(cfg.publicKey).toString("base64");
    let p = this.peersById.get(id);
    // Validate before changing anything, so a bad field leaves the peer as it was.
    const endpoint =
      cfg.endpoint === undefined || cfg.endpoint === null || typeof cfg.endpoint !== "string"
        ? cfg.endpoint
        : this.parseEndpoint(cfg.endpoint);
    if (p === undefined) {
      const own = this.engine.publicKey;
      if (own !== null && Buffer.from(own).equals(Buffer.from(cfg.publicKey))) {
        this.log.debug("ignoring a peer with the device's own public key");
        return;
      }
      p = new DevicePeer(this.engine.addPeer(cfg.publicKey), this.nextNativeId++);
      this.peersById.set(id, p);
      this.plane?.addPeer(p);
      this.log.debug(`peer ${shortKey(id)} added`);
    }
    if (cfg.presharedKey !== undefined) p.handle.presharedKey = cfg.presharedKey;
    if (endpoint !== undefined) p.endpoint = endpoint;
    if (cfg.replaceAllowedIps) this.routes.removeByValue(p);
    if (cfg.removeAllowedIps !== undefined && cfg.removeAllowedIps.length > 0) {
      const mine = new Set(this.routes.entriesFor(p));
      for (const prefix of cfg.removeAllowedIps) if (mine.has(normalizeCidr(prefix))) this.routes.remove(prefix);
    }
    for (const prefix of cfg.allowedIps ?? []) this.routes.insert(prefix, p);
    if (this.plane !== null) {
      if (endpoint !== undefined) this.plane.setEndpoint(p);
      if (cfg.replaceAllowedIps || (cfg.removeAllowedIps?.length ?? 0) > 0 || (cfg.allowedIps?.length ?? 0) > 0) {
        this.markRoutesDirty();
      }
    }
    if (cfg.persistentKeepalive !== undefined) {
      const was = p.handle.persistentKeepalive;
      p.handle.persistentKeepalive = cfg.persistentKeepalive;
      // Turning keepalive on while up sends one right away, so the peer learns our endpoint now.
      if (this.state === "up" && was === 0 && cfg.persistentKeepalive > 0) {
        void this.process(this.engine.sendKeepalive(p.handle));
      }
    }
    this.scheduleTimerSoon();
  }

  removePeer(publicKey: Uint8Array): boolean {
    const p = this.peersById.get(Buffer.from(publicKey).toString("base64"));
    if (p === undefined) return false;
    this.engine.removePeer(p.handle);
    this.forgetPeer(p);
    return true;
  }

  removeAllPeers(): void {
    for (const p of [...this.peersById.values()]) {
      this.engine.removePeer(p.handle);
      this.forgetPeer(p);
    }
  }

  hasPeer(publicKey: Uint8Array): boolean {
    return this.peersById.has(Buffer.from(publicKey).toString("base64"));
  }

  /** Starts a handshake with a peer now (rate-limited to one per REKEY_TIMEOUT). */
  initiateHandshake(publicKey: Uint8Array): void {
    const p = this.peersById.get(Buffer.from(publicKey).toString("base64"));
    if (p === undefined) throw new Error("no such peer");
    void this.process(this.engine.initiateHandshake(p.handle));
  }

  status(): DeviceStatus {
    return {
      name: this.name,
      publicKey: this.engine.publicKey,
      privateKey: this.privateKey === null ? null : this.privateKey.slice(),
      listenPort: this.listenPort,
      fwmark: this.fwmark,
      cryptoBackend: this.backend.name,
      dataPath: this.dataPath,
      underLoad: this.engine.isUnderLoad(),
      handshakes: this.engine.handshakeCounters(),
      peers: [...this.peersById.values()].map((p) => ({
        publicKey: p.handle.publicKey,
        presharedKey: p.handle.presharedKey,
        endpoint: p.endpoint?.dstToString() ?? null,
        transport: p.endpoint?.bind.kind ?? null,
        carriedBy: carriedBy(p.endpoint),
        dataPlane: this.plane?.carries(p) ? ("native" as const) : ("portable" as const),
        pathMtu: this.peerPathMtu(p),
        persistentKeepalive: p.handle.persistentKeepalive,
        allowedIps: this.routes.entriesFor(p),
        lastHandshakeMs: p.handle.stats.lastHandshakeMs,
        rxBytes: p.handle.stats.rxBytes,
        txBytes: p.handle.stats.txBytes,
      })),
    };
  }

  // ---- packet paths --------------------------------------------------------------------------

  private async openBinds(port: number): Promise<void> {
    let first = true;
    for (const b of this.binds) {
      const { receivers, port: actual } = await b.open(first ? port : 0);
      if (first) this.boundPort = actual;
      first = false;
      if (this.fwmark !== 0) await b.setMark(this.fwmark);
      for (const r of receivers) this.receiveLoops.push(this.receiveLoop(b, r));
    }
  }

  /** Chooses the data plane (native where it can run and is wanted) and says which, and why. */
  private startDataPath(): void {
    const opts: DataPlaneOptions<DevicePeer> = {
      events: {
        activity: (p, activity) => {
          void this.process(this.engine.recordActivity(p.handle, activity));
          // A carried endpoint's own Bind (ICE) saw none of it: tell it, for its liveness checks.
          const ep = p.endpoint;
          if (ep !== null && this.plane?.carries(p) && observesActivity(ep.bind)) {
            ep.bind.noteActivity(ep, activity.sentAgoMs !== undefined, activity.receivedAgoMs !== undefined);
          }
        },
        confirmed: (p, localIndex) => void this.process(this.engine.confirmKeypair(p.handle, localIndex)),
        handshakeNeeded: (p, _why, waiting) => void this.process(this.engine.queue(p.handle, waiting)),
        roamed: (p, ep) => {
          if (p.endpoint !== null) this.log.debug(`peer ${shortKey(p.handle.id)} roamed to ${ep.dstToString()}`);
          p.endpoint = ep;
          this.plane?.setEndpoint(p);
        },
      },
      sourceAllowed: (p, packet) => (packet[0]! >> 4 === 4 ? this.routes.lookupV4(packet, 12) : this.routes.lookupV6(packet, 8)) === p,
      allowedIps: (p) => this.routes.entriesFor(p),
      rejectAfterMessages: this.engine.messageLimit,
      mtu: this.tun.mtu(),
      now: () => this.clock.now(),
    };
    const choice = NativePlane.choose<DevicePeer>(this.tun, this.binds, this.backend, opts, this.dataPathWanted);
    const plane = choice.plane ?? new PortablePlane<DevicePeer>(this.backend, opts);
    this.plane = plane;
    for (const p of this.peersById.values()) {
      plane.addPeer(p);
      plane.setKeypairs(p, this.engine.keypairsOf(p.handle));
    }
    choice.plane?.setMssClamp(nativeMssClamp(this.mssClamp.setting));
    plane.routesChanged();
    this.log.info(choice.plane === null ? `data path: portable (${choice.reason})` : `data path: native (${plane.description})`);
  }

  private serialBinds<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.bindOps.then(fn, fn);
    this.bindOps = run.catch(() => undefined);
    return run;
  }

  private async tunLoop(): Promise<void> {
    const groups = new Map<DevicePeer, Uint8Array[]>();
    const answers: Uint8Array[] = [];
    for (;;) {
      const packets = await this.tun.read();
      if (packets === null || this.state === "closed") return;
      for (const pkt of packets) {
        const version = pkt[0]! >> 4;
        let peer: DevicePeer | undefined;
        if (version === 4 && pkt.length >= 20) peer = this.routes.lookupV4(pkt, 16);
        else if (version === 6 && pkt.length >= 40) peer = this.routes.lookupV6(pkt, 24);
        if (peer === undefined) {
          this.drops.noRoute++;
          continue;
        }
        // ---- path MTU: too big for the peer's path: answered with ICMP; the packet still goes,
        // fragmented outside, so a host that filters ICMP is not cut off ----
        this.overPathMtu(peer, pkt, answers);
        const g = groups.get(peer);
        if (g === undefined) groups.set(peer, [pkt]);
        else g.push(pkt);
      }
      const pending: Promise<void>[] = [];
      const transmit: Transmit<Endpoint>[] = [];
      for (const [peer, list] of groups) this.seal(peer, list, transmit);
      groups.clear();
      if (transmit.length > 0) pending.push(this.transmit(transmit));
      if (answers.length > 0) pending.push(this.tun.write(answers.splice(0)).then(() => undefined, () => undefined));
      // The burst's activity reaches the timers (a rekey may be due).
      this.plane?.flush();
      await Promise.all(pending);
    }
  }

  /** The largest inner packet the peer's path carries (pmtu.ts); 0 when unknown. */
  private peerInnerMtu(peer: DevicePeer): number {
    return peer.endpoint === null ? 0 : endpointInnerMtu(this.pathMtus, peer.endpoint);
  }

  private peerPathMtu(p: DevicePeer): PathMtu | null {
    return p.endpoint === null ? null : endpointPathMtu(this.pathMtus, p.endpoint);
  }

  /** Path MTU (pmtu.ts, icmp-too-big.ts): whether `pkt` is over the peer's path; the answer goes to `answers`. */
  private overPathMtu(peer: DevicePeer, pkt: Uint8Array, answers: Uint8Array[]): boolean {
    const inner = this.peerInnerMtu(peer);
    this.mssClamp.apply(pkt, inner, this.tun.mtu()); // ---- MSS clamp (mss-clamp.ts), leaving ----
    if (inner === 0) return false;
    const r = this.tooBig.check(pkt, inner);
    if (r === null) return false;
    if (r.answer !== null) answers.push(r.answer);
    return true;
  }

  private async receiveLoop(bind: Bind, receive: ReceiveFunc): Promise<void> {
    for (;;) {
      let batch;
      try {
        batch = await receive();
      } catch (err) {
        this.log.warn(`${bind.kind} receive failed: ${err instanceof Error ? err.message : String(err)}`);
        return;
      }
      if (batch === null || this.state === "closed") return;
      // Transport data to the data plane, handshakes to the engine. The opened packets of the
      // whole batch then reach the TUN in one write, where segments of a TCP flow are joined.
      const out: Output<Endpoint> = { transmit: [], seal: [], authenticated: [], events: [], dropped: [] };
      const deliveries: Delivery<DevicePeer>[] = [];
      const plane = this.plane;
      for (const { data, endpoint } of batch) {
        if (data[0] === MESSAGE_TRANSPORT && plane !== null) {
          plane.receive(data, endpoint, deliveries);
          continue;
        }
        const o = this.engine.receive(data, endpoint);
        for (const x of o.authenticated) out.authenticated.push(x);
        for (const x of o.transmit) out.transmit.push(x);
        for (const x of o.seal) out.seal.push(x);
        for (const x of o.events) out.events.push(x);
        for (const x of o.dropped) out.dropped.push(x);
      }
      plane?.flush();
      await Promise.all([this.process(out), this.deliver(deliveries)]);
    }
  }

  /** Carries out what the engine asked for: roam, send, deliver, log. */
  private process(out: Output<Endpoint>): Promise<void> {
    for (const { peer, src } of out.authenticated) {
      const p = this.peersById.get(peer.id);
      if (p !== undefined && p.endpoint?.key !== src.key) {
        if (p.endpoint !== null) this.log.debug(`peer ${shortKey(peer.id)} roamed to ${src.dstToString()}`);
        p.endpoint = src;
        this.plane?.setEndpoint(p);
      }
    }
    for (const ev of out.events) this.logEvent(ev);
    for (const d of out.dropped) this.engineDrops.set(d.reason, (this.engineDrops.get(d.reason) ?? 0) + 1);
    if (this.log.enabled("debug")) {
      for (const d of out.dropped) {
        this.log.debug(`dropped a datagram${d.peer ? ` from peer ${shortKey(d.peer.id)}` : ""}: ${d.reason}`);
      }
    }
    let transmit = out.transmit;
    if (out.seal.length > 0) {
      transmit = transmit.slice();
      for (const { peer, packets } of out.seal) {
        const p = this.peersById.get(peer.id);
        if (p !== undefined) this.seal(p, packets, transmit);
      }
      // What was sealed here reaches the timers now, not at the next burst.
      this.plane?.flush();
    }
    this.scheduleTimer();
    return transmit.length === 0 ? Promise.resolve() : this.transmit(transmit);
  }

  /** Has the data plane seal `packets` for a peer; the datagrams join `transmit`. */
  private seal(p: DevicePeer, packets: Uint8Array[], transmit: Transmit<Endpoint>[]): void {
    const plane = this.plane;
    if (plane === null) return;
    const sealed: Uint8Array[] = [];
    plane.send(p, packets, sealed);
    for (const data of sealed) transmit.push({ peer: p.handle, data });
  }

  private async transmit(list: Transmit<Endpoint>[]): Promise<void> {
    // Group by destination so each Bind gets whole batches.
    const byEndpoint = new Map<Endpoint, Uint8Array[]>();
    for (const t of list) {
      let ep: Endpoint | null;
      if (t.peer !== undefined) ep = this.peersById.get(t.peer.id)?.endpoint ?? null;
      else ep = t.to;
      if (ep === null) {
        this.drops.noEndpoint++;
        continue;
      }
      const list = byEndpoint.get(ep);
      if (list === undefined) byEndpoint.set(ep, [t.data]);
      else list.push(t.data);
    }
    for (const [ep, list] of byEndpoint) {
      const max = ep.bind.batchSize();
      for (let i = 0; i < list.length; i += max) {
        try {
          await ep.bind.send(i === 0 && list.length <= max ? list : list.slice(i, i + max), ep);
        } catch (err) {
          this.drops.sendFailed++;
          this.log.debug(`send to ${ep.dstToString()} failed: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
    }
  }

  /** Writes what the data plane opened (its source already checked) to the TUN. */
  private async deliver(deliveries: Delivery<DevicePeer>[]): Promise<void> {
    if (deliveries.length === 0 || this.state === "closed") return;
    // ---- MSS clamp (mss-clamp.ts), arriving: only looked at when configured (off by default) ----
    if (this.mssClamp.setting !== "off") {
      const mtu = this.tun.mtu();
      for (const d of deliveries) this.mssClamp.apply(d.packet, () => this.peerInnerMtu(d.peer), mtu);
    }
    const packets = deliveries.map((d) => d.packet);
    const max = this.tun.batchSize();
    for (let i = 0; i < packets.length; i += max) await this.tun.write(packets.slice(i, i + max));
  }

  private logEvent(ev: EngineEvent): void {
    const who = `peer ${shortKey(ev.peer.id)}`;
    switch (ev.type) {
      case "handshake-initiated":
        this.log.debug(`${who}: sending handshake initiation${ev.retry ? " (retry)" : ""}`);
        break;
      case "handshake-complete":
        this.log.debug(`${who}: handshake complete (${ev.role})`);
        break;
      case "handshake-gave-up":
        this.log.info(`${who}: no handshake after 90 s, giving up (${ev.droppedPackets} queued packets dropped)`);
        break;
      case "keys-zeroed":
        this.log.debug(`${who}: session keys zeroed after 540 s without a handshake`);
        break;
      case "queue-overflow":
        this.log.debug(`${who}: queue full, ${ev.droppedPackets} packets dropped`);
        break;
    }
  }

  // ---- timers --------------------------------------------------------------------------------

  private scheduleTimer(): void {
    // Timers only matter while packets can move; `up()` schedules the first one.
    if (this.state !== "up") return;
    // A full scan of the peers once after each firing; between firings only deadlines set
    // since then can move the timer earlier, so the packet path's cost does not grow with
    // the number of peers.
    let at: number | undefined;
    if (!this.timerScanned) {
      this.timerScanned = true;
      at = this.engine.nextDeadline();
      if (at === undefined) {
        this.clearTimer();
        return;
      }
    } else {
      at = this.engine.takeNewDeadline();
      if (at === undefined) return;
    }
    // Keep an earlier timer; one that fires early just reschedules.
    if (this.timer !== null && this.timerAt <= at) return;
    this.clearTimer();
    this.timerAt = at;
    this.timer = setTimeout(() => this.onTimer(), Math.max(0, Math.ceil(at - this.clock.now())));
    this.timer.unref();
  }

  /** Reschedules once at the end of the current task, however many changes it makes. */
  private scheduleTimerSoon(): void {
    if (this.timerDirty) return;
    this.timerDirty = true;
    queueMicrotask(() => {
      this.timerDirty = false;
      this.scheduleTimer();
    });
  }

  /** Rebuilds the native route table once at the end of the current task. */
  private markRoutesDirty(): void {
    if (this.routesDirty) return;
    this.routesDirty = true;
    queueMicrotask(() => this.flushRoutes());
  }

  /** Brings the native route table up to date now if AllowedIPs changed. */
  flushRoutes(): void {
    if (!this.routesDirty) return;
    this.routesDirty = false;
    this.plane?.routesChanged();
  }

  private clearTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.timerAt = Infinity;
  }

  private onTimer(): void {
    this.timer = null;
    this.timerAt = Infinity;
    if (this.state === "closed") return;
    // Timers decide on what happened: the data plane reports what it did since its last report.
    this.plane?.report();
    this.timerScanned = false;
    void this.process(this.engine.tick());
  }

  /** What carries `ep` changed (an ICE pair selected, switched or lost): the data plane follows. */
  private carrierChanged(ep: Endpoint): void {
    if (this.plane === null) return;
    for (const p of this.peersById.values()) {
      if (p.endpoint === ep) {
        this.plane.setEndpoint(p);
        const via = carrierOf(ep);
        this.log.debug(`peer ${shortKey(p.handle.id)}: ${via === null ? "no direct path" : `carried by ${via.bind.kind} ${via.dstToString()}`}`);
      }
    }
  }

  private forgetPeer(p: DevicePeer): void {
    this.routes.removeByValue(p);
    this.peersById.delete(p.handle.id);
    if (this.plane !== null) {
      this.plane.removePeer(p);
      this.markRoutesDirty();
    }
    this.log.debug(`peer ${shortKey(p.handle.id)} removed`);
  }
}
