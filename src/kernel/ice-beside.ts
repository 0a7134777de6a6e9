/**
 * ICE beside a WireGuard device that does its own crypto (the kernel module, or a userspace
 * implementation reached over UAPI): the ICE manager finds a path per peer, a port share makes
 * that path carry the device's packets, and the device's endpoint for the peer is kept pointing
 * at it.
 *
 * Flow per peer: 1. the manager reports a selected pair (state or path change, or the periodic
 * check as a safety net); 2. the mode is chosen for that pair (relay pairs
 * always by proxy); 3. the new share is attached first, then the device's endpoint is set, then
 * the old share is detached, so a pair or mode change never leaves the peer without a path.
 * A peer whose ICE fails keeps its last path until a new one is selected.
 *
 * Liveness of a path the kernel carries: ICE sees none of the WireGuard packets of a raw,
 * nftables or iptables share, so a direct path that dies would only be noticed when ICE's consent
 * expires (30 s). Each pass therefore reads the device's per-peer byte counters; a peer the
 * device kept sending to for QUIET_MS while hearing nothing back is reported to the manager as
 * carried traffic, which makes the agent probe the path and, if it does not answer, move to its
 * relay lane (the peer then goes through the proxy) and restart. Traffic both ways is not
 * reported (it shows the path alive), nor is a single look with sends only: WireGuard's own
 * keepalive, 10 s after the last packet received, and the end of a flow look like that, and
 * reporting them would restart ICE on a healthy path.
 *
 * Raw sharing (asked for, or chosen by auto where raw sockets open) is decided before ICE starts:
 * the raw socket on the device's port becomes the manager's shared socket, so every direct
 * candidate is the device's port, and the device's endpoint for a peer is its remote candidate.
 */
import type { SelectedPair } from "../ice/agent.js";
import type { IceManager } from "../ice/manager.js";
import type { Logger } from "../log/logger.js";
import type { WireGuardControl } from "./control.js";
import { IptablesShare, iptablesUnavailableReason } from "./iptables-share.js";
import { NftShare, nftUnavailableReason } from "./nft-share.js";
import { chooseShareMode, type PortShare, type ShareCapabilities, type ShareMode, type ShareModeSetting } from "./port-share.js";
import { ProxyShare } from "./proxy-share.js";
import { RawShare } from "./raw-share.js";
import { RawPacketSocket } from "./raw-socket.js";

export interface IceBesideOptions {
  control: WireGuardControl;
  /** The manager with the ICE peers added; started by IceBeside if it is not yet. */
  manager: IceManager;
  mode: ShareModeSetting;
  log: Logger;
  /** How often pairs are re-checked, ms. Default 1000. */
  checkIntervalMs?: number;
  nft?: string;
  iptables?: string;
  /** Opens the raw socket for the device's port (tests inject failures); default RawPacketSocket. */
  openRaw?: (port: number) => RawPacketSocket;
}

export interface PeerShareStatus {
  peer: string;
  mode: ShareMode | null;
  why: string;
  /** The endpoint the device uses for the peer, or null before the first pair. */
  endpoint: string | null;
  pair: SelectedPair | null;
}

interface Attachment {
  share: PortShare;
  pair: SelectedPair;
  endpoint: string;
  why: string;
}

/** Sending with nothing received for this long, seen in two looks in a row at least, suggests a dead path. */
const QUIET_MS = 1500;

const pairKey = (p: SelectedPair): string => `${p.local.type} ${p.local.address} ${p.local.port} ${p.remote.type} ${p.remote.address} ${p.remote.port}`;

export class IceBeside {
  readonly listenPort: number;
  readonly capabilities: ShareCapabilities;
  readonly proxy: ProxyShare;
  readonly nft: NftShare | null;
  readonly iptables: IptablesShare | null;
  readonly raw: RawShare | null;
  private readonly attached = new Map<string, Attachment>();
  /** Per peer: the mode and pair whose attach failed, and why (not retried for that pair). */
  private readonly failed = new Map<string, { key: string; why: string }>();
  private readonly timer: NodeJS.Timeout;
  private readonly unsubscribe: (() => void)[] = [];
  private queue: Promise<void> = Promise.resolve();
  private closed = false;
  /**
   * Per peer on a kernel-carried share: the device's byte counters at the last look, when that
   * was, and since when the device has been sending without receiving (null: it has not).
   */
  private readonly bytesSeen = new Map<string, { tx: bigint; rx: bigint; at: number; quietSince: number | null; quietLooks: number }>();
  /** No counter reads before this time (a large device makes a read slow: see noteCarried). */
  private nextCountersAt = 0;
  syncErrors = 0;

  private constructor(
    private readonly opts: IceBesideOptions,
    listenPort: number,
    capabilities: ShareCapabilities,
    rawSocket: RawPacketSocket | null,
  ) {
    this.listenPort = listenPort;
    this.capabilities = capabilities;
    const { manager, control } = opts;
    this.proxy = new ProxyShare({ listenPort, send: (peer, data) => manager.send(peer, data) });
    this.nft = capabilities.nftables !== null ? null : new NftShare({ ifname: control.ifname, listenPort, nft: opts.nft });
    this.iptables = capabilities.iptables !== null ? null : new IptablesShare({ ifname: control.ifname, listenPort, iptables: opts.iptables });
    this.raw = rawSocket === null ? null : new RawShare(rawSocket);
    this.unsubscribe.push(manager.onData((peer, data) => void this.proxy.deliver(peer, data)));
    this.unsubscribe.push(manager.onStateChange(() => this.schedule()));
    // A path change (relay to direct, fail-over) need not change the state: follow it at once.
    this.unsubscribe.push(manager.onPathChange(() => this.schedule()));
    this.timer = setInterval(() => this.schedule(), opts.checkIntervalMs ?? 1000);
    this.timer.unref();
  }

  /** Reads the device's port, probes the host's firewall tools, removes leftovers of a crashed run, starts ICE. */
  static async start(opts: IceBesideOptions): Promise<IceBeside> {
    const state = await opts.control.get();
    if (state.listenPort === 0) throw new Error(`${opts.control.ifname} has no listen port; ICE needs one to share`);
    // Raw first: it decides where ICE gathers, which cannot change once the agents run.
    let rawSocket: RawPacketSocket | null = null;
    let raw: string | null = "not requested";
    if (opts.mode === "raw" || opts.mode === "auto") {
      try {
        rawSocket = (opts.openRaw ?? ((port) => new RawPacketSocket(port)))(state.listenPort);
        raw = null;
      } catch (e) {
        raw = `raw sockets: ${e instanceof Error ? e.message : String(e)}`;
      }
    }
    const wantsFirewall = opts.mode === "nftables" || opts.mode === "iptables" || (opts.mode === "auto" && rawSocket === null);
    const notNeeded = rawSocket !== null ? "not needed: raw sockets share the port" : "not requested";
    const capabilities: ShareCapabilities = {
      nftables: wantsFirewall && opts.mode !== "iptables" ? await nftUnavailableReason(opts.nft) : notNeeded,
      iptables: wantsFirewall && opts.mode !== "nftables" ? await iptablesUnavailableReason(opts.iptables) : notNeeded,
      raw,
    };
    if (rawSocket !== null) {
      opts.manager.useSocket(rawSocket);
      if (rawSocket.ipv6Unavailable !== null) opts.log.info(`raw sockets: IPv4 only (IPv6: ${rawSocket.ipv6Unavailable})`);
    }
    const beside = new IceBeside(opts, state.listenPort, capabilities, rawSocket);
    await beside.nft?.cleanStale();
    await beside.iptables?.cleanStale();
    opts.manager.start();
    beside.schedule();
    return beside;
  }

  status(): PeerShareStatus[] {
    return this.opts.manager.peers().map((peer) => {
      const a = this.attached.get(peer);
      return a === undefined
        ? { peer, mode: null, why: "no ICE pair yet", endpoint: null, pair: null }
        : { peer, mode: a.share.mode, why: a.why, endpoint: a.endpoint, pair: a.pair };
    });
  }

  /** Runs a pass over all peers after the queued ones; resolves when it is done. */
  sync(): Promise<void> {
    const next = this.queue.then(() => this.pass());
    this.queue = next.catch((e: unknown) => {
      this.syncErrors++;
      this.opts.log.warn(`kernel ICE: ${e instanceof Error ? e.message : String(e)}`);
    });
    return next;
  }

  private schedule(): void {
    if (!this.closed) void this.sync().catch(() => undefined);
  }

  private shareFor(mode: ShareMode): PortShare {
    if (mode === "nftables" && this.nft !== null) return this.nft;
    if (mode === "iptables" && this.iptables !== null) return this.iptables;
    if (mode === "raw" && this.raw !== null) return this.raw;
    return this.proxy;
  }

  private async pass(): Promise<void> {
    if (this.closed) return;
    const { manager, control, log, mode: setting } = this.opts;
    const present = new Set(manager.peers());
    for (const [peer, a] of this.attached) {
      if (present.has(peer)) continue;
      this.attached.delete(peer);
      this.failed.delete(peer);
      await a.share.detach(peer);
    }
    for (const s of manager.status()) {
      if (s.state !== "connected" || s.selectedPair === null) continue;
      const pair = s.selectedPair;
      const was = this.attached.get(s.peer);
      let choice = chooseShareMode(setting, pair, this.capabilities, this.listenPort);
      const key = `${choice.mode} ${pairKey(pair)}`;
      const failed = this.failed.get(s.peer);
      if (failed !== undefined && failed.key === key) choice = { mode: "proxy", why: failed.why };
      let share = this.shareFor(choice.mode);
      if (was !== undefined && was.share === share && pairKey(was.pair) === pairKey(pair)) continue;
      let endpoint: string;
      try {
        endpoint = await share.attach(s.peer, pair);
        this.failed.delete(s.peer);
      } catch (e) {
        if (share === this.proxy) throw e;
        // A mode that cannot carry this pair (a firewall tool refused it, ...): the proxy carries
        // it instead, and the mode is not tried again for the same pair.
        const why = `${choice.mode} failed for this pair (${e instanceof Error ? e.message : String(e)})`;
        this.failed.set(s.peer, { key, why });
        log.warn(`peer ${s.peer.slice(0, 8)}…: ${why}; using the proxy`);
        choice = { mode: "proxy", why };
        share = this.proxy;
        endpoint = await share.attach(s.peer, pair);
      }
      if (was?.endpoint !== endpoint) {
        await control.set({
          replacePeers: false,
          peers: [{ publicKey: Buffer.from(s.peer, "base64"), remove: false, updateOnly: true, endpoint, replaceAllowedIps: false, allowedIps: [], removeAllowedIps: [] }],
        });
      }
      if (was !== undefined && was.share !== share) await was.share.detach(s.peer);
      this.attached.set(s.peer, { share, pair, endpoint, why: choice.why });
      const side = (c: SelectedPair["local"]): string => `${c.type} ${c.address}:${c.port}`;
      log.info(`peer ${s.peer.slice(0, 8)}…: ${share.mode} (${choice.why}); pair ${side(pair.local)} -> ${side(pair.remote)}; device endpoint ${endpoint}`);
    }
    await this.noteCarried();
  }

  /** Reports kernel-carried peers that sent without hearing back to the manager (see the top). */
  private async noteCarried(): Promise<void> {
    const carried = new Set([...this.attached].filter(([, a]) => a.share !== this.proxy).map(([peer]) => peer));
    for (const peer of this.bytesSeen.keys()) if (!carried.has(peer)) this.bytesSeen.delete(peer);
    const now = Date.now();
    if (carried.size === 0 || now < this.nextCountersAt) return;
    const state = await this.opts.control.get();
    // At most a tenth of the time goes to reading counters (1000 peers take a while to dump).
    const took = Date.now() - now;
    this.nextCountersAt = Date.now() + Math.max(Math.min(500, this.opts.checkIntervalMs ?? 1000), 10 * took);
    for (const p of state.peers) {
      const peer = Buffer.from(p.publicKey).toString("base64");
      if (!carried.has(peer)) continue;
      const tx = BigInt(p.txBytes);
      const rx = BigInt(p.rxBytes);
      const was = this.bytesSeen.get(peer);
      const quiet = was !== undefined && tx > was.tx && rx === was.rx;
      const quietSince = quiet ? (was.quietSince ?? was.at) : null;
      const quietLooks = quiet ? was.quietLooks + 1 : 0;
      this.bytesSeen.set(peer, { tx, rx, at: now, quietSince, quietLooks });
      if (quietSince !== null && quietLooks >= 2 && now - quietSince >= QUIET_MS) this.opts.manager.noteActivity(peer, true, false);
    }
  }

  /** Detaches every peer and removes every rule and socket. The manager is left to its owner. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    for (const u of this.unsubscribe) u();
    await this.queue;
    this.attached.clear();
    await this.proxy.close();
    await this.nft?.close();
    await this.iptables?.close();
    if (this.raw !== null) {
      await this.raw.close();
      // The manager's agents must not keep a socket that is about to close.
      this.opts.manager.useSocket(null);
      this.raw.socket.close();
    }
  }
}
