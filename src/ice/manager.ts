/**
 * ICE agents for a set of peers, sharing one signaling channel and one set of settings.
 *
 * The manager knows nothing of WireGuard devices: it moves datagrams to and from peers named by
 * public key, so the userspace device (through IceBind) and the kernel mode (through a proxy)
 * can both use it.
 */
import { keyToBase64, parseKey } from "../crypto/keys.js";
import type { Logger } from "../log/logger.js";
import type { SignalingChannel, SignalingMessage } from "../signaling/types.js";
import { PeerAgent, type IceAgentState, type IcePath, type PeerAgentStatus } from "./agent.js";
import type { CandidateInfo } from "./candidates.js";
import { MAX_TURN_SERVERS, resolveIceConfig, watchedAddresses, type IceAgentConfig, type ResolvedIceConfig } from "./config.js";
import { iceRole } from "./role.js";
import { SharedSocketRouter, type SharedSocketStats } from "./shared-socket.js";
import { PathMtuProber, type ProberHooks } from "./pmtu-probe.js";
import type { PacketSocket } from "../stun/packet-socket.js";

/** A public key as 32 bytes or as base64 text. */
export type PeerKey = Uint8Array | string;

export interface IceManagerOptions extends IceAgentConfig {
  /** Our own WireGuard static public key. */
  publicKey: Uint8Array;
  /** The sealed channel to the peers. The manager does not close it: its owner does. */
  channel: SignalingChannel;
  /**
   * Keep the channel's accepted peers equal to the manager's peers (calls channel.setPeers on
   * every change). Default true; turn off when the channel serves more than ICE.
   */
  manageChannelPeers?: boolean;
  /**
   * Create a peer's agent only when it is needed: on the first message from the peer or the
   * first datagram sent to it. Default false: every peer's agent starts with the manager.
   */
  lazy?: boolean;
}

export interface IceManagerStats {
  /** Datagrams for a key that is not a peer, or sent while stopped. */
  unknownPeerDrops: number;
  /** Signaling messages from keys that are not peers (the channel should already drop these). */
  unknownPeerMessages: number;
}

type DataListener = (peer: string, data: Uint8Array) => void;
type StateListener = (peer: string, state: IceAgentState) => void;
type PathListener = (peer: string, path: IcePath | null) => void;

/** How often this machine's addresses are compared with the last ones seen. */
const ADDRESS_CHECK_MS = 1000;

export class IceManager {
  readonly publicKey: Uint8Array;
  private readonly cfg: ResolvedIceConfig;
  private readonly channel: SignalingChannel;
  private readonly manageChannelPeers: boolean;
  private readonly lazy: boolean;
  private readonly log: Logger;
  /** Configured peers by base64 key, with their key bytes. */
  private readonly peerKeys = new Map<string, Uint8Array>();
  private readonly agents = new Map<string, PeerAgent>();
  private readonly dataListeners = new Set<DataListener>();
  private readonly stateListeners = new Set<StateListener>();
  private readonly pathListeners = new Set<PathListener>();
  private router: SharedSocketRouter | null = null;
  private prober: PathMtuProber | null = null;
  private probing: Pick<ProberHooks, "limit" | "report"> | null = null;
  private readonly networkListeners = new Set<(addresses: string[]) => void>();
  private addressTimer: NodeJS.Timeout | null = null;
  private addresses: string[] | null = null;
  private running = false;
  private closed = false;
  private subscribed = false;
  private readonly counters: IceManagerStats = { unknownPeerDrops: 0, unknownPeerMessages: 0 };
  private readonly listener = (from: Uint8Array, msg: SignalingMessage): void => this.onMessage(from, msg);

  constructor(opts: IceManagerOptions) {
    if (!(opts.publicKey instanceof Uint8Array) || opts.publicKey.length !== 32) throw new TypeError("IceManager: publicKey must be 32 bytes");
    this.publicKey = Uint8Array.from(opts.publicKey);
    this.cfg = resolveIceConfig(opts);
    this.channel = opts.channel;
    this.manageChannelPeers = opts.manageChannelPeers ?? true;
    this.lazy = opts.lazy ?? false;
    this.log = this.cfg.logger;
    for (const s of this.cfg.unusedServers) this.log.warn(`ICE server ${s.url} is not used: at most ${MAX_TURN_SERVERS} TURN servers are used`);
  }

  /** True between start() and stop()/close(). */
  get started(): boolean {
    return this.running;
  }

  /**
   * Puts the agents' host and server-reflexive candidates on `socket` (the interface's own UDP
   * socket) from the next session on; null gives them sockets of their own again.
   */
  useSocket(socket: PacketSocket | null): void {
    if (this.router?.socket === socket) return;
    this.router?.close();
    this.router = socket === null ? null : new SharedSocketRouter(socket);
    this.startProber();
  }

  /**
   * Probes the path MTU of every peer's path on the shared socket (pmtu-probe.ts): `limit` gives
   * the kernel's path MTU towards an address, `report` gets each confirmed size. Null stops it.
   */
  probePathMtu(hooks: Pick<ProberHooks, "limit" | "report"> | null): void {
    this.probing = hooks;
    this.startProber();
  }

  private startProber(): void {
    this.prober?.close();
    this.prober = null;
    const router = this.router;
    const hooks = this.probing;
    if (router === null || hooks === null) return;
    this.prober = new PathMtuProber(router.probes, { ...hooks, send: (data, address, port) => router.socket.sendPacket(data, address, port) });
    for (const [id, a] of this.agents) this.prober.pathChanged(id, a.probeRoute());
  }

  /** The peer whose ICE checks come from this address on the shared socket, or null. */
  peerAt(address: string, port: number): string | null {
    return this.router?.peerAt(address, port) ?? null;
  }

  /** The shared socket's routing counters, or null without one. */
  sharedSocketStats(): SharedSocketStats | null {
    return this.router?.stats() ?? null;
  }

  /** Adds a peer (idempotent). While running and not lazy, its agent starts at once. */
  addPeer(key: PeerKey): void {
    const [id, bytes] = normalize(key);
    if (this.closed) throw new Error("IceManager is closed");
    if (id === keyToBase64(this.publicKey)) throw new RangeError("IceManager: a peer cannot have our own public key");
    if (this.peerKeys.has(id)) return;
    this.peerKeys.set(id, bytes);
    this.syncChannelPeers();
    if (this.running && !this.lazy) this.agentFor(id);
  }

  /** Removes a peer and closes its agent. Unknown keys are ignored. */
  async removePeer(key: PeerKey): Promise<void> {
    const [id] = normalize(key);
    if (!this.peerKeys.delete(id)) return;
    this.syncChannelPeers();
    const a = this.agents.get(id);
    this.agents.delete(id);
    if (a !== undefined) await a.close();
  }

  hasPeer(key: PeerKey): boolean {
    return this.peerKeys.has(normalize(key)[0]);
  }

  /** Configured peers, base64. */
  peers(): string[] {
    return [...this.peerKeys.keys()];
  }

  /** Starts the agents (all of them, or on demand when lazy). Idempotent; works again after stop(). */
  start(): void {
    if (this.closed) throw new Error("IceManager is closed");
    if (this.running) return;
    this.running = true;
    if (!this.subscribed) {
      // Subscribed once and gated on `running`: the channel interface has no way to unsubscribe
      // (close() uses `off` where the channel has one).
      this.subscribed = true;
      this.channel.on("message", this.listener);
      this.channel.on("connected", () => {
        if (this.running) for (const a of this.agents.values()) a.signalingReconnected();
      });
    }
    this.syncChannelPeers();
    if (!this.lazy) for (const id of this.peerKeys.keys()) this.agentFor(id);
    this.addresses = this.currentAddresses();
    this.addressTimer = setInterval(() => this.checkAddresses(), ADDRESS_CHECK_MS);
    this.addressTimer.unref?.();
  }

  /**
   * This machine's addresses changed (checked every second while running): listeners run first
   * (the owner of the signaling transport reconnects it, since its connection may hang on a gone
   * address), then every agent starts a new generation. Returns an unsubscribe function.
   */
  onNetworkChange(listener: (addresses: string[]) => void): () => void {
    this.networkListeners.add(listener);
    return () => this.networkListeners.delete(listener);
  }

  private currentAddresses(): string[] | null {
    try {
      return watchedAddresses(this.cfg);
    } catch {
      return null;
    }
  }

  private checkAddresses(): void {
    if (!this.running) return;
    const now = this.currentAddresses();
    const before = this.addresses;
    if (now === null) return;
    this.addresses = now;
    if (before === null || (now.length === before.length && now.every((a, i) => a === before[i]))) return;
    this.log.info(`local addresses changed: ${before.join(", ") || "none"} -> ${now.join(", ") || "none"}`);
    for (const l of this.networkListeners) {
      try {
        l(now);
      } catch (e) {
        this.log.warn(`network change listener threw: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    // An allocation belongs to the address it was made from: new generations allocate afresh.
    this.router?.recheckRelays();
    for (const a of this.agents.values()) a.networkChanged();
  }

  /** Closes every agent; peers stay configured and start() brings them back. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.addressTimer !== null) clearInterval(this.addressTimer);
    this.addressTimer = null;
    const agents = [...this.agents.values()];
    this.agents.clear();
    await Promise.all(agents.map((a) => a.close()));
    this.startProber(); // a fresh prober: no peer's search or timer outlives its agent
    // Allocations on the shared socket outlive the agents' lanes: released here, while the
    // socket is still open (the device closes the Binds that ride a socket first).
    await this.router?.releaseRelays();
  }

  /** Stops for good. The channel is left open for its owner to close. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.stop();
    this.closed = true;
    const off = (this.channel as { off?: (event: "message", l: (from: Uint8Array, msg: SignalingMessage) => void) => unknown }).off;
    if (this.subscribed && typeof off === "function") off.call(this.channel, "message", this.listener);
    this.probePathMtu(null);
    this.router?.close();
    this.router = null;
    this.dataListeners.clear();
    this.stateListeners.clear();
    this.pathListeners.clear();
    this.networkListeners.clear();
  }

  /**
   * Sends a datagram to a peer over its selected pair. Returns false (and the datagram is
   * dropped) when the peer is unknown, not connected, or the manager is stopped.
   */
  send(key: PeerKey, data: Uint8Array): boolean {
    const id = typeof key === "string" ? key : keyToBase64(key);
    let a = this.agents.get(id);
    if (a === undefined) {
      if (!this.running || !this.peerKeys.has(id)) {
        this.counters.unknownPeerDrops++;
        return false;
      }
      a = this.agentFor(id); // lazy: the first datagram wakes the agent
    }
    return a.send(data);
  }

  /** Datagrams from any peer, with the peer's base64 key. Returns an unsubscribe function. */
  onData(listener: DataListener): () => void {
    this.dataListeners.add(listener);
    return () => this.dataListeners.delete(listener);
  }

  /** State changes of any peer's agent. Returns an unsubscribe function. */
  onStateChange(listener: StateListener): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  /**
   * The pair a peer's datagrams take changed (first path, relay to direct, fail-over), or null
   * when it has none. One event per change; a data path that sends to peers itself follows it.
   * Returns an unsubscribe function.
   */
  onPathChange(listener: PathListener): () => void {
    this.pathListeners.add(listener);
    return () => this.pathListeners.delete(listener);
  }

  /** A peer's current path, or null. */
  pathOf(key: PeerKey): IcePath | null {
    return this.agents.get(normalize(key)[0])?.path() ?? null;
  }

  /**
   * A data plane carried traffic for a peer without {@link send} (its path is on the shared
   * socket): counted for the path's liveness checks.
   */
  noteActivity(key: PeerKey, sent: boolean, received: boolean): void {
    this.agents.get(typeof key === "string" ? key : keyToBase64(key))?.noteActivity(sent, received);
  }

  /** Status of every configured peer (peers without an agent yet show state "new"). */
  status(): PeerAgentStatus[] {
    return [...this.peerKeys.keys()].map((id) => this.statusOf(id)!);
  }

  /** Status of one peer, or null if it is not configured. */
  statusOf(key: PeerKey): PeerAgentStatus | null {
    const [id] = normalize(key);
    if (!this.peerKeys.has(id)) return null;
    const a = this.agents.get(id);
    if (a !== undefined) return a.status();
    return {
      peer: id,
      role: iceRole(this.publicKey, this.peerKeys.get(id)!),
      state: "new",
      generation: 0,
      restarts: 0,
      selectedPair: null,
      path: null,
      pathChanges: 0,
      rttMs: null,
      localCandidates: [],
      remoteCandidates: [],
      connectedAt: null,
      lastConnectMs: null,
      lastError: null,
      txPackets: 0,
      txBytes: 0,
      rxPackets: 0,
      rxBytes: 0,
      txDropped: 0,
      txQueued: 0,
    };
  }

  /** Remote address of a peer's selected pair, or null. */
  selectedRemote(key: PeerKey): CandidateInfo | null {
    const id = typeof key === "string" ? key : keyToBase64(key);
    return this.agents.get(id)?.selectedRemote() ?? null;
  }

  /** The running agent of a peer, if any (for diagnostics and tests). */
  agent(key: PeerKey): PeerAgent | undefined {
    return this.agents.get(normalize(key)[0]);
  }

  stats(): IceManagerStats {
    return { ...this.counters };
  }

  private onMessage(from: Uint8Array, msg: SignalingMessage): void {
    if (!this.running) return;
    let id: string;
    try {
      id = keyToBase64(from);
    } catch {
      this.counters.unknownPeerMessages++;
      return;
    }
    if (!this.peerKeys.has(id)) {
      this.counters.unknownPeerMessages++;
      return;
    }
    this.agentFor(id).receive(msg);
  }

  private agentFor(id: string): PeerAgent {
    const existing = this.agents.get(id);
    if (existing !== undefined) return existing;
    const agent = new PeerAgent({ localKey: this.publicKey, peerKey: this.peerKeys.get(id)!, channel: this.channel, resolved: this.cfg, watchAddresses: false, sharedSocket: () => this.router });
    this.agents.set(id, agent);
    agent.onData((data) => {
      for (const l of this.dataListeners) l(id, data);
    });
    agent.onStateChange((state) => {
      for (const l of this.stateListeners) l(id, state);
    });
    agent.onPathChange((path) => {
      this.prober?.pathChanged(id, agent.probeRoute());
      for (const l of this.pathListeners) l(id, path);
    });
    agent.start();
    return agent;
  }

  private syncChannelPeers(): void {
    if (!this.manageChannelPeers || this.closed) return;
    this.channel.setPeers([...this.peerKeys.values()]);
  }
}

function normalize(key: PeerKey): [string, Uint8Array] {
  if (typeof key === "string") {
    const bytes = parseKey(key);
    return [keyToBase64(bytes), bytes];
  }
  if (!(key instanceof Uint8Array) || key.length !== 32) throw new TypeError("a peer key must be 32 bytes or base64 text");
  const bytes = Uint8Array.from(key);
  return [keyToBase64(bytes), bytes];
}
