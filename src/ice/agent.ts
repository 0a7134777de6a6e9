/**
 * The ICE agent for one remote peer: finds a path to it with the help of a signaling channel and
 * keeps one, restarting when the path fails.
 *
 * Paths. A generation runs a direct lane and a relay lane per TURN server side by side
 * (generation.ts). Datagrams go over the best connected lane (the *path*): the first that
 * connects carries the first packets (often the relay), and traffic moves to a better one
 * (direct) the moment it connects, with no packet held back and no new WireGuard handshake (the
 * device's endpoint is the same object throughout). Datagrams sent before any path exists wait
 * in a small bounded queue and go out the moment one is selected, so the first handshake is not
 * lost. Every change of path is one event ({@link PeerAgent.onPathChange}).
 *
 * Failing over. While traffic is sent on the path and nothing has come back on it for
 * {@link SUSPECT_AFTER_MS}, the agent probes the path (a STUN check) and meanwhile sends each
 * datagram over the next-best connected lane too (the peer's WireGuard drops the duplicate by
 * its replay counter). A path that does not answer the probe is abandoned: traffic moves to the
 * warm relay lane and a new generation is started at once in the background. The generation
 * that carries traffic is kept until the new one has a path (make before break), and a few
 * seconds more so that datagrams in flight on it still arrive. A change of this machine's
 * addresses (checked every second) starts a new generation at once, too.
 *
 * Roles come from the public keys (role.ts). The controlling side leads every generation:
 *
 * - it opens a session (see session.ts) and signals `credentials` (generation g, ufrag, pwd),
 *   then its candidates as they are gathered, then end-of-candidates;
 * - the controlled side answers credentials it has not seen with a session of the same
 *   generation g and signals its own credentials and candidates; a repeat of credentials it has
 *   already answered means its answer was lost, so it answers again;
 * - while nobody has answered, the controlling side repeats its credentials with back-off, for
 *   ever: a peer whose signaling is quiet is retried, not forgotten;
 * - when a session fails (no pair in time, consent lost), the controlling side starts generation
 *   g+1 after a back-off delay (1 s, doubling, at most 30 s by default); its new credentials are
 *   the restart signal. The controlled side instead sends `restart` (generation g) and repeats
 *   it with back-off until new credentials arrive. A controlled side that has just started has
 *   no session and asks the same way, so whichever side comes up second gets going at once.
 *
 * Only one side ever starts sessions, so the two can never restart each other in turn. Messages
 * that do not fit the current generation are ignored; bad ones never throw.
 */
import { keyToBase64 } from "../crypto/keys.js";
import type { Logger } from "../log/logger.js";
import { backoffDelay } from "../signaling/backoff.js";
import type { SignalingChannel, SignalingMessage } from "../signaling/types.js";
import { parseRemoteCandidate, type CandidateInfo } from "./candidates.js";
import { currentHostAddresses, resolveIceConfig, watchedAddresses, type IceAgentConfig, type ResolvedIceConfig } from "./config.js";
import { IceGeneration } from "./generation.js";
import { iceRole, type IceRole } from "./role.js";
import type { IceSession, LaneKind, SharedSocketUse } from "./session.js";
import type { SharedSocketRouter } from "./shared-socket.js";
import type { Candidate } from "werift-ice";
import type { ProbeRoute } from "./pmtu-probe.js";

export type IceAgentState = "new" | "checking" | "connected" | "failed" | "closed";

export interface SelectedPair {
  local: CandidateInfo;
  remote: CandidateInfo;
}

/** The pair a peer's datagrams are sent over, as the path-change event reports it. */
export interface IcePath extends SelectedPair {
  /** "direct" (host or server-reflexive pair) or "relay" (through a TURN server). */
  lane: LaneKind;
  generation: number;
  /** For a relay path: the TURN server and how it is reached ("udp", "tcp" or "tls"). */
  relay: { host: string; port: number; transport: string } | null;
  /**
   * The pair sends from the interface's own socket (the direct lane on the shared socket), so a
   * data plane on that socket can carry the peer's datagrams to `remote` itself.
   */
  shared: boolean;
  /**
   * The pair is relayed by the shared socket's TURN allocation: the server's address and the
   * channel bound to the remote, which a data plane on that socket sends ChannelData on.
   */
  sharedRelay: { server: { address: string; port: number }; channel: number } | null;
}

export interface PeerAgentStatus {
  /** The peer's public key, base64. */
  peer: string;
  role: IceRole;
  state: IceAgentState;
  /** Generation of the current (or last) session; the controlling side counts it up on restarts. */
  generation: number;
  /** Sessions started after the first one. */
  restarts: number;
  selectedPair: SelectedPair | null;
  /** The path datagrams take (selected pair, lane, TURN server), or null. */
  path: IcePath | null;
  /** How often the path changed (upgrades, fail-overs, restarts). */
  pathChanges: number;
  /** Latest round-trip time of the selected pair's STUN checks. */
  rttMs: number | null;
  localCandidates: CandidateInfo[];
  remoteCandidates: CandidateInfo[];
  /** When the current path was selected (ms since the epoch), or null. */
  connectedAt: number | null;
  /** How long the last successful session took from its start to a selected pair. */
  lastConnectMs: number | null;
  lastError: string | null;
  txPackets: number;
  txBytes: number;
  rxPackets: number;
  rxBytes: number;
  /** Datagrams not sent because no pair was selected (the waiting queue was full or too old). */
  txDropped: number;
  /** Datagrams that waited for a path and were sent once one was selected. */
  txQueued: number;
}

export interface PeerAgentOptions extends IceAgentConfig {
  /** Our own WireGuard static public key. */
  localKey: Uint8Array;
  /** The peer's WireGuard static public key. */
  peerKey: Uint8Array;
  /** Where messages to the peer go. Messages from it are handed to {@link PeerAgent.receive}. */
  channel: Pick<SignalingChannel, "send">;
  /** Settings already checked by {@link resolveIceConfig} (the manager shares one); overrides the rest. */
  resolved?: ResolvedIceConfig;
  /**
   * Compare this machine's addresses every second and restart on a change. Default true; a
   * manager watches once for all its agents and calls {@link PeerAgent.networkChanged} instead.
   */
  watchAddresses?: boolean;
  /**
   * The interface's shared socket, if any, read when each generation opens: the direct lane's
   * host and server-reflexive candidates, and UDP relay lanes' allocations, then live on it.
   */
  sharedSocket?: () => SharedSocketRouter | null;
}

type DataListener = (data: Uint8Array) => void;
type StateListener = (state: IceAgentState) => void;
type PathListener = (path: IcePath | null) => void;

/** Candidates that arrived before the credentials of their generation. */
interface EarlyCandidates {
  generation: number;
  candidates: Candidate[];
  end: boolean;
}

const MAX_EARLY_CANDIDATES = 32;
/** Datagrams held per peer while no path exists (a handshake and a few packets behind it). */
const QUEUE_MAX = 32;
/** Older queued datagrams are dropped: WireGuard has retransmitted its handshake by then. */
const QUEUE_MAX_AGE_MS = 5000;
/** Sent on the path and nothing back for this long: probe it and mirror traffic to the next lane. */
export const SUSPECT_AFTER_MS = 1000;
/** A probe of a suspect path waits this long (two checks, half of it apart) for an answer. */
export const PROBE_TIMEOUT_MS = 1000;
/** A path whose probe was answered is not probed again this soon while the peer is heard on another lane. */
const VERIFIED_FOR_MS = 10_000;
/**
 * A path the data plane carries is probed this often while it sends: its replies are not seen
 * per lane, so the answers to these probes are what shows the path alive.
 */
const CARRIED_PROBE_MS = 500;
/** How often the path's liveness is checked. */
const TICK_MS = 250;
/** How often this machine's addresses are compared with the last ones seen. */
const ADDRESS_CHECK_MS = 1000;
/**
 * Once a relay carries traffic, a direct lane that has found nothing this long after the
 * credentials were exchanged ends, and the next generation (after the back-off) tries again:
 * checks take well under a second where a direct path exists.
 */
const DIRECT_DEADLINE_WITH_RELAY_MS = 6000;
/** A replaced generation keeps receiving this long after traffic moved away from it. */
const RETIRE_GRACE_MS = 3000;
/** Do not answer repeated credentials or restart requests more often than this. */
const RESIGNAL_MIN_INTERVAL_MS = 250;

export class PeerAgent {
  readonly role: IceRole;
  readonly peerKey: Uint8Array;
  /** The peer's public key, base64. */
  readonly peer: string;
  private readonly cfg: ResolvedIceConfig;
  private readonly channel: Pick<SignalingChannel, "send">;
  private readonly log: Logger;
  /** The generation signaling is about. */
  private gen: IceGeneration | null = null;
  /** The generation that carried traffic before `gen`, kept until `gen` has a path. */
  private prev: IceGeneration | null = null;
  /** Generations replaced and closing after a grace period. */
  private readonly retiring = new Set<IceGeneration>();
  /** The lane datagrams are sent over. */
  private active: IceSession | null = null;
  private suspect: IceSession | null = null;
  /**
   * While a path the data plane carries is suspect: the lane the data plane is pointed at
   * instead (it cannot mirror datagrams as {@link send} does), until the probe decides.
   */
  private standIn: IceSession | null = null;
  /** When the carried path was last probed in passing (see {@link CARRIED_PROBE_MS}). */
  private lastCarriedProbeAt = 0;
  private generation = 0;
  private stateValue: IceAgentState = "new";
  private sessionsStarted = 0;
  /** Consecutive generations that ended without a path, for the restart back-off; reset on connect. */
  private failures = 0;
  /** Consecutive generations whose direct lane found nothing while a relay worked. */
  private directRetries = 0;
  /** The STUN server the next direct lane asks (rotates when one stays silent). */
  private stunIndex = 0;
  /** Repeats of the current signal (credentials or restart request), for their back-off. */
  private repeats = 0;
  private timer: NodeJS.Timeout | null = null;
  private tick: NodeJS.Timeout | null = null;
  private lastAddressCheck = 0;
  private addresses: string[] | null = null;
  private started = false;
  private closedFlag = false;
  private lastResignalAt = 0;
  private early: EarlyCandidates | null = null;
  private outbox: Promise<void> = Promise.resolve();
  private connectedAt: number | null = null;
  private lastConnectMs: number | null = null;
  private lastError: string | null = null;
  private pathChanges = 0;
  /** When a datagram last came from the peer, on any lane, and on which. */
  private lastRxAt = 0;
  private lastRxLane: IceSession | null = null;
  private queue: { data: Buffer; at: number }[] = [];
  private readonly counters = { txPackets: 0, txBytes: 0, rxPackets: 0, rxBytes: 0, txDropped: 0, txQueued: 0 };
  /** Signaling messages that could not be handed to the channel. */
  signalErrors = 0;
  /** Signaling messages ignored (stale generation, malformed candidate, ...). */
  signalsIgnored = 0;
  private readonly dataListeners = new Set<DataListener>();
  private readonly stateListeners = new Set<StateListener>();
  private readonly pathListeners = new Set<PathListener>();

  private readonly watchAddresses: boolean;
  /** When a data plane last sent for this peer without {@link send} (see {@link noteActivity}). */
  private carriedTxAt = 0;
  private readonly sharedSocket: () => SharedSocketRouter | null;
  /** What the last path event said, so that a repeat of it is not announced again. */
  private pathKey = "";

  constructor(opts: PeerAgentOptions) {
    this.cfg = opts.resolved ?? resolveIceConfig(opts);
    this.watchAddresses = opts.watchAddresses ?? true;
    this.peerKey = Uint8Array.from(opts.peerKey);
    this.peer = keyToBase64(this.peerKey);
    this.role = iceRole(opts.localKey, opts.peerKey);
    this.channel = opts.channel;
    this.sharedSocket = opts.sharedSocket ?? (() => null);
    this.log = this.cfg.logger.child(`ice ${this.peer.slice(0, 8)}`);
  }

  get state(): IceAgentState {
    return this.stateValue;
  }

  get controlling(): boolean {
    return this.role === "controlling";
  }

  /** Begins: the controlling side opens a generation, the controlled side asks for one. Idempotent. */
  start(): void {
    if (this.started || this.closedFlag) return;
    this.started = true;
    this.log.debug(`starting as ${this.role}`);
    this.addresses = safeWatched(this.cfg);
    this.lastAddressCheck = Date.now();
    this.tick = setInterval(() => this.onTick(), TICK_MS);
    this.tick.unref?.();
    if (this.controlling) this.openGeneration(this.generation);
    else this.requestRestart();
  }

  /** A message from this agent's peer (the channel has authenticated it). Never throws. */
  receive(msg: SignalingMessage): void {
    if (this.closedFlag || !this.started) return;
    if (msg === null || typeof msg !== "object" || !Number.isSafeInteger(msg.generation) || msg.generation < 0) {
      this.signalsIgnored++;
      return;
    }
    try {
      switch (msg.type) {
        case "credentials":
          if (typeof msg.ufrag !== "string" || typeof msg.pwd !== "string" || msg.ufrag === "" || msg.pwd === "" || msg.ufrag.length > 256 || msg.pwd.length > 256) {
            this.signalsIgnored++;
          } else if (this.controlling) this.onAnswer(msg.generation, msg.ufrag, msg.pwd);
          else this.onOffer(msg.generation, msg.ufrag, msg.pwd);
          return;
        case "candidate":
          this.onCandidate(msg.generation, msg.candidate);
          return;
        case "restart":
          this.onRestartRequest(msg.generation);
          return;
        default:
          this.signalsIgnored++;
      }
    } catch (e) {
      // A bug here must not take the device down with it.
      this.signalsIgnored++;
      this.log.warn(`signaling message dropped: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /**
   * Sends one datagram over the path. Without a path it waits in a small queue (false, and
   * counted as dropped, when the agent is closed or not started).
   */
  send(data: Uint8Array): boolean {
    const a = this.active;
    if (a !== null && a.send(data)) {
      this.counters.txPackets++;
      this.counters.txBytes += data.byteLength;
      // A path under suspicion: the next lane carries a copy until the probe decides.
      if (this.suspect === a) this.backupLane(a)?.send(data);
      return true;
    }
    if (this.closedFlag || !this.started) {
      this.counters.txDropped++;
      return false;
    }
    if (this.queue.length >= QUEUE_MAX) {
      this.queue.shift();
      this.counters.txDropped++;
    }
    this.queue.push({ data: Buffer.from(data), at: Date.now() });
    return true;
  }

  /** Datagrams from the peer. Returns a function that unsubscribes. */
  onData(listener: DataListener): () => void {
    this.dataListeners.add(listener);
    return () => this.dataListeners.delete(listener);
  }

  onStateChange(listener: StateListener): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  /**
   * The path changed: a first pair, an upgrade (relay to direct), a fail-over, or null when no
   * path is left. A data path that sends to the peer itself follows this. Returns an unsubscribe function.
   */
  onPathChange(listener: PathListener): () => void {
    this.pathListeners.add(listener);
    return () => this.pathListeners.delete(listener);
  }

  /** The current path, or null. */
  path(): IcePath | null {
    const a = this.standIn ?? this.active;
    const pair = a?.selectedPair() ?? null;
    if (a === null || pair === null) return null;
    const t = a.turnServer;
    return {
      ...pair,
      lane: a.lane,
      generation: a.generation,
      relay: t === null ? null : { host: t.host, port: t.port, transport: t.transport },
      shared: a.selectedOnSharedSocket(),
      sharedRelay: a.selectedRelay(),
    };
  }

  /** What a path MTU prober needs of the current path on the shared socket (pmtu-probe.ts), or null. */
  probeRoute(): ProbeRoute | null {
    const a = this.standIn ?? this.active;
    const path = this.path();
    const creds = a?.remote ?? null;
    if (a === null || path === null || creds === null || (!path.shared && path.sharedRelay === null)) return null;
    const credentials = { localUfrag: a.ufrag, remoteUfrag: creds.ufrag, remotePwd: creds.pwd };
    const relay = path.sharedRelay === null ? null : { ...path.sharedRelay.server, channel: path.sharedRelay.channel };
    return { credentials, remote: [path.remote.address, path.remote.port], relay, remoteRelayed: path.remote.type === "relay" };
  }

  /** The remote address of the selected pair, or null. */
  selectedRemote(): CandidateInfo | null {
    return this.active?.selectedPair()?.remote ?? null;
  }

  status(): PeerAgentStatus {
    const g = this.gen;
    const path = this.path();
    return {
      peer: this.peer,
      role: this.role,
      state: this.stateValue,
      generation: this.generation,
      restarts: Math.max(0, this.sessionsStarted - 1),
      selectedPair: path === null ? null : { local: path.local, remote: path.remote },
      path,
      pathChanges: this.pathChanges,
      rttMs: this.active?.rttMs() ?? null,
      localCandidates: g ? g.localCandidates : [],
      remoteCandidates: g ? g.remoteCandidates : [],
      connectedAt: this.stateValue === "connected" ? this.connectedAt : null,
      lastConnectMs: this.lastConnectMs,
      lastError: this.lastError,
      ...this.counters,
    };
  }

  /** Stops for good: closes the generations and timers. Later messages and sends are dropped. */
  async close(): Promise<void> {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.clearTimer();
    if (this.tick !== null) clearInterval(this.tick);
    this.tick = null;
    const gens = [this.gen, this.prev, ...this.retiring].filter((g): g is IceGeneration => g !== null);
    this.gen = null;
    this.prev = null;
    this.retiring.clear();
    this.active = null;
    this.queue = [];
    this.setState("closed");
    this.announcePath();
    this.dataListeners.clear();
    this.pathListeners.clear();
    await Promise.all(gens.map((g) => g.close()));
    this.stateListeners.clear();
  }

  // ---- controlling side ----

  /** Peer's answer to our credentials. */
  private onAnswer(generation: number, ufrag: string, pwd: string): void {
    const g = this.gen;
    if (g === null || generation !== g.generation) {
      this.signalsIgnored++;
      return;
    }
    const r = g.remote;
    if (r === null) {
      this.clearTimer();
      g.setRemote({ ufrag, pwd });
      this.applyEarly(g);
      return;
    }
    if (r.ufrag === ufrag && r.pwd === pwd) return; // a repeat: the peer answered our repeat
    // The peer answered this generation twice (it restarted in between): start afresh.
    this.restartNow("the peer answered again with new credentials");
  }

  private onRestartRequest(generation: number): void {
    if (!this.controlling) {
      // Only the controlling side leads restarts; the controlled one follows its credentials.
      this.signalsIgnored++;
      return;
    }
    const g = this.gen;
    if (g === null) return; // a restart is already scheduled
    if (g.remote === null || generation < g.generation) {
      // The peer lacks our current credentials (lost, or it has just started): repeat them.
      this.resignal(g);
      return;
    }
    this.restartNow(`the peer asked for an ICE restart of generation ${generation}`);
  }

  // ---- controlled side ----

  /** Credentials from the controlling side. */
  private onOffer(generation: number, ufrag: string, pwd: string): void {
    const g = this.gen;
    if (g !== null && g.generation === generation && g.remote?.ufrag === ufrag && g.remote.pwd === pwd) {
      this.resignal(g); // our answer was lost
      return;
    }
    this.clearTimer();
    const next = this.openGeneration(generation);
    next.setRemote({ ufrag, pwd });
    this.applyEarly(next);
  }

  // ---- both ----

  private onCandidate(generation: number, text: string | null): void {
    let c: Candidate | null = null;
    if (text !== null) {
      c = parseRemoteCandidate(text, this.cfg);
      if (c === null) {
        this.signalsIgnored++;
        return;
      }
    }
    const g = this.gen;
    if (g !== null && g.generation === generation && g.remote !== null) {
      // Candidates name the credentials they belong to; a leftover from an answer we replaced is dropped.
      if (c !== null && c.ufrag !== undefined && c.ufrag !== g.remote.ufrag) {
        this.signalsIgnored++;
        return;
      }
      g.addRemote(c);
      return;
    }
    if (g !== null && generation < g.generation) {
      this.signalsIgnored++;
      return;
    }
    // Ahead of the credentials it belongs to: hold a few.
    if (this.early === null || this.early.generation !== generation) this.early = { generation, candidates: [], end: false };
    if (c === null) this.early.end = true;
    else if (this.early.candidates.length < MAX_EARLY_CANDIDATES) this.early.candidates.push(c);
  }

  private applyEarly(g: IceGeneration): void {
    const e = this.early;
    this.early = null;
    if (e === null || e.generation !== g.generation) return;
    for (const c of e.candidates) if (c.ufrag === undefined || c.ufrag === g.remote?.ufrag) g.addRemote(c);
    if (e.end) g.addRemote(null);
  }

  /**
   * Opens generation `generation`. The current one, if it has a path, is kept as `prev` until the
   * new one has one (make before break); otherwise it is closed.
   */
  private openGeneration(generation: number): IceGeneration {
    const old = this.gen;
    this.gen = null;
    if (old !== null) {
      if (old.connectedLanes().length > 0) {
        if (this.prev !== null) this.retire(this.prev, 0);
        this.prev = old;
      } else {
        void old.close();
      }
    }
    this.generation = generation;
    this.sessionsStarted++;
    this.repeats = 0;
    let hosts: string[] = [];
    try {
      hosts = currentHostAddresses(this.cfg);
    } catch (e) {
      this.log.warn(`listing host addresses: ${e instanceof Error ? e.message : String(e)}`);
    }
    const g: IceGeneration = new IceGeneration(generation, this.controlling, hosts, this.cfg, this.stunIndex, {
      candidate: (sdp) => this.signal({ type: "candidate", generation, candidate: sdp }),
      gathered: () => {
        this.signal({ type: "candidate", generation, candidate: null });
        const direct = g.direct();
        const answered = direct?.stunAnsweredBy ?? null;
        const at = answered === null ? -1 : this.cfg.stunServers.indexOf(answered);
        if (answered !== null && at >= 0 && at !== this.stunIndex % this.cfg.stunServers.length) {
          // A fall-back answered: the next generation asks it first.
          this.log.info(`STUN server ${answered.host}:${answered.port} answered in place of the first; asked first from now on`);
          this.stunIndex = at;
        } else if (direct?.serverSilent === true && this.cfg.stunServers.length > 1) {
          this.stunIndex++;
          this.log.info("the STUN server did not answer; the next generation asks the next one");
        }
      },
      checking: () => {
        if (this.gen === g && this.active === null) this.setState("checking");
      },
      connected: (lane) => this.laneConnected(g, lane),
      laneFailed: (lane, reason, remaining) => this.laneFailed(g, lane, reason, remaining),
      data: (lane, buf) => this.deliver(g, lane, buf),
      pathChanged: (lane) => {
        // The library re-nominated within the lane, or its relay channel got bound.
        if (lane === this.active) this.announcePath();
      },
    }, this.log, this.sharedUse());
    this.gen = g;
    this.early = this.early?.generation === generation ? this.early : null;
    this.log.debug(`generation ${generation}: ${g.lanes.map((l) => l.lane).join(" + ")} on ${hosts.length} host address(es)`);
    if (this.active === null) this.setState("new");
    // Credentials first: the peer needs them to make sense of the candidates that follow.
    this.signal({ type: "credentials", generation, ufrag: g.ufrag, pwd: g.pwd });
    g.start();
    if (this.controlling) this.scheduleRepeat();
    return g;
  }

  private laneConnected(g: IceGeneration, lane: IceSession): void {
    if (this.closedFlag || (g !== this.gen && g !== this.prev)) return;
    if (g === this.gen) {
      this.failures = 0;
      if (lane.lane === "direct") this.directRetries = 0;
      this.lastError = null;
      if (this.connectedAt === null || this.active === null || this.active.generation !== g.generation) {
        this.lastConnectMs = Date.now() - g.createdAt;
      }
      this.clearTimer();
    }
    if (lane.lane === "relay") g.direct()?.shortenDeadline(DIRECT_DEADLINE_WITH_RELAY_MS);
    const pair = lane.selectedPair();
    this.log.info(
      `${lane.lane} lane connected (generation ${g.generation}, ${Date.now() - g.createdAt} ms): ` +
        (pair ? `${pair.local.type} ${pair.local.address}:${pair.local.port} -> ${pair.remote.type} ${pair.remote.address}:${pair.remote.port}` : "?"),
    );
    this.choosePath();
  }

  private laneFailed(g: IceGeneration, lane: IceSession, reason: string, remaining: number): void {
    if (this.closedFlag) return;
    const wasActive = this.active === lane;
    if (this.suspect === lane) this.suspect = null;
    if (this.standIn === lane) {
      this.standIn = null;
      this.announcePath();
    }
    if (g !== this.gen) {
      // A lane of a replaced generation: traffic may have to move.
      if (g === this.prev && g.connectedLanes().length === 0) {
        this.prev = null;
        this.retire(g, 0);
      }
      if (wasActive) this.choosePath();
      if (wasActive && this.active === null && this.gen !== null) this.lastError = reason;
      return;
    }
    this.log.info(`generation ${g.generation}: ${lane.lane} lane ended: ${reason}`);
    this.lastError = reason;
    this.choosePath();
    if (remaining === 0) {
      // Nothing of this generation is left.
      this.gen = null;
      void g.close();
      this.failures++;
      if (this.active === null) this.setState("failed");
      this.clearTimer();
      if (this.controlling) {
        const delay = wasActive ? 0 : this.delay(this.failures - 1);
        this.timer = setTimeout(() => {
          this.timer = null;
          if (!this.closedFlag && this.gen === null) this.openGeneration(this.generation + 1);
        }, delay);
      } else {
        this.requestRestart();
      }
      return;
    }
    if (wasActive) {
      // The path was lost: the warm lane has taken over; look for a new direct path now.
      this.restartNow(`the ${lane.lane} path stopped answering`);
    } else if (lane.lane === "direct" && this.controlling && g.connectedLanes().length > 0) {
      // A relay works but no direct path was found: try again later, less often each time.
      const delay = this.delay(this.directRetries++);
      this.log.debug(`no direct path; trying again in ${delay} ms`);
      this.clearTimer();
      this.timer = setTimeout(() => {
        this.timer = null;
        if (!this.closedFlag && this.gen === g) this.openGeneration(this.generation + 1);
      }, delay);
    }
  }

  /**
   * A new generation as soon as possible: at once from the controlling side (unless one was
   * opened very recently, then after the back-off), a restart request from the controlled side.
   */
  private restartNow(reason: string): void {
    if (this.closedFlag) return;
    this.log.info(`restarting ICE: ${reason}`);
    this.clearTimer();
    if (!this.controlling) {
      this.repeats = 0;
      this.requestRestart(true);
      return;
    }
    const g = this.gen;
    const young = g !== null && Date.now() - g.createdAt < 2000;
    const delay = young ? this.delay(this.failures++) : 0;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (!this.closedFlag) this.openGeneration(this.generation + 1);
    }, delay);
  }

  /** Picks the best connected lane (current generation first) and moves traffic to it. */
  private choosePath(): void {
    if (this.closedFlag) return;
    const fromGen = this.gen?.connectedLanes()[0] ?? null;
    const best = fromGen ?? this.prev?.connectedLanes()[0] ?? null;
    if (fromGen !== null && this.prev !== null) {
      // The new generation has a path: the old one only receives for a little while longer.
      const old = this.prev;
      this.prev = null;
      this.retire(old, RETIRE_GRACE_MS);
    }
    if (best === this.active) return;
    const before = this.active;
    this.active = best;
    this.suspect = null;
    this.standIn = null;
    this.pathChanges++;
    const path = this.path();
    if (path !== null) {
      this.connectedAt = Date.now();
      this.log.info(
        `path ${before === null ? "selected" : "changed"}: ${path.lane} ${path.local.type} ${path.local.address}:${path.local.port} -> ` +
          `${path.remote.type} ${path.remote.address}:${path.remote.port}` +
          (path.relay ? ` (TURN ${path.relay.host}:${path.relay.port} over ${path.relay.transport})` : ""),
      );
      this.setState("connected");
      this.flushQueue();
    } else {
      this.log.info("no path left");
      this.setState(this.gen?.running().length ? "checking" : "failed");
    }
    this.announcePath();
  }

  /** The shared socket for a new generation's lanes, or null for sockets of their own. */
  private sharedUse(): SharedSocketUse | null {
    const router = this.sharedSocket();
    return router === null ? null : { router, peer: this.peer };
  }

  /** The one place a path event leaves the agent; a repeat of the last one is not sent. */
  private announcePath(): void {
    const path = this.closedFlag ? null : this.path();
    const key =
      path === null
        ? ""
        : `${path.generation} ${path.lane} ${path.shared} ${path.sharedRelay?.channel ?? 0} ` +
          `${path.local.address}:${path.local.port} ${path.remote.address}:${path.remote.port}`;
    if (key === this.pathKey) return;
    this.pathKey = key;
    for (const l of this.pathListeners) {
      try {
        l(path);
      } catch (e) {
        this.log.warn(`path listener threw: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  }

  /**
   * Traffic a data plane carried for this peer without passing through {@link send} (the pair
   * is on the shared socket): it counts for the path's liveness as if it had.
   */
  noteActivity(sent: boolean, received: boolean): void {
    const a = this.active;
    if (this.closedFlag || a === null) return;
    const now = Date.now();
    if (sent) {
      a.lastTxAt = now;
      this.carriedTxAt = now;
    }
    // What comes back cannot be told apart by lane here (a peer may already have moved to
    // another one), so it only says the peer is alive; the path itself is verified by probes.
    if (received) this.lastRxAt = now;
  }

  private flushQueue(): void {
    const q = this.queue;
    this.queue = [];
    const now = Date.now();
    for (const { data, at } of q) {
      if (now - at > QUEUE_MAX_AGE_MS || this.active === null || !this.active.send(data)) {
        this.counters.txDropped++;
        continue;
      }
      this.counters.txQueued++;
      this.counters.txPackets++;
      this.counters.txBytes += data.byteLength;
    }
  }

  /**
   * The lane to mirror traffic to while `a` is suspect: the one the peer was last heard on (it
   * evidently works), else the next-best connected lane.
   */
  private backupLane(a: IceSession): IceSession | null {
    const heard = this.lastRxLane;
    if (heard !== null && heard !== a && heard.connected) return heard;
    for (const g of [this.gen, this.prev]) {
      for (const l of g?.connectedLanes() ?? []) if (l !== a) return l;
    }
    return null;
  }

  /** Liveness of the path, queue expiry, address changes. */
  private onTick(): void {
    if (this.closedFlag) return;
    const now = Date.now();
    const a = this.active;
    if (a !== null && this.suspect === null && a.connected) {
      const heard = a.lastRxAt;
      const sentSince = a.lastTxAt > heard && now - a.lastTxAt < SUSPECT_AFTER_MS;
      // Each side picks its own best pair, so replies may come back on another lane: a path the
      // probe confirmed lately is not suspected again while the peer is heard elsewhere.
      // Traffic a data plane carries itself is not seen per lane: such a path is verified by
      // a probe whenever it has been sending for SUSPECT_AFTER_MS since the last answer.
      const carried = now - this.carriedTxAt < SUSPECT_AFTER_MS;
      if (carried && now - this.lastCarriedProbeAt >= CARRIED_PROBE_MS) {
        this.lastCarriedProbeAt = now;
        void a.probe(PROBE_TIMEOUT_MS, 1);
      }
      const heardElsewhere = !carried && now - this.lastRxAt < SUSPECT_AFTER_MS && now - a.lastProbeOkAt < VERIFIED_FOR_MS;
      if (sentSince && now - heard >= SUSPECT_AFTER_MS && !heardElsewhere) {
        this.suspect = a;
        this.log.debug(`${a.lane} path: sent for ${now - heard} ms with nothing back on it; probing`);
        if (carried) {
          // The data plane cannot send copies over a second lane: point it at that lane instead
          // until the probe decides (back to this path if it answers).
          this.standIn = this.backupLane(a);
          if (this.standIn !== null) this.announcePath();
        }
        // Look for a new path meanwhile (make before break): when every lane died at once (a NAT
        // that rebound its mappings, a new uplink) this saves the probe's second; when the probe
        // answers after all, the new generation's path is merely as good as this one.
        if (this.gen !== null && a.generation === this.gen.generation) this.restartNow(`the ${a.lane} path is not answering`);
        void a.probe(PROBE_TIMEOUT_MS).then((ok) => {
          if (this.suspect === a) this.suspect = null;
          if (this.standIn !== null && this.active === a) {
            this.standIn = null;
            if (ok) this.announcePath();
          }
          if (!ok && !a.closed && !this.closedFlag) a.abandon(`no answer on the selected pair for ${Date.now() - a.lastRxAt} ms`);
        });
      }
    }
    if (this.queue.length > 0 && now - this.queue[0]!.at > QUEUE_MAX_AGE_MS) {
      const keep = this.queue.filter((e) => now - e.at <= QUEUE_MAX_AGE_MS);
      this.counters.txDropped += this.queue.length - keep.length;
      this.queue = keep;
    }
    if (this.watchAddresses && now - this.lastAddressCheck >= ADDRESS_CHECK_MS) {
      this.lastAddressCheck = now;
      const addrs = safeWatched(this.cfg);
      if (addrs !== null && this.addresses !== null && !sameList(addrs, this.addresses)) {
        this.log.info(`local addresses changed (${this.addresses.join(", ") || "none"} -> ${addrs.join(", ") || "none"})`);
        this.addresses = addrs;
        this.networkChanged();
      } else if (addrs !== null) {
        this.addresses = addrs;
      }
    }
  }

  /**
   * The signaling connection is back after a break: what was sent while it was breaking may be
   * lost, so what is still waiting for an answer goes again now instead of at its next repeat
   * (unanswered credentials, a restart request not yet followed).
   */
  signalingReconnected(): void {
    if (this.closedFlag || !this.started) return;
    const g = this.gen;
    if (this.controlling) {
      if (g !== null && g.remote === null) this.resignal(g);
    } else if (g === null || g.generation === this.askedFor) {
      this.requestRestart(true);
    }
  }

  /**
   * This machine's addresses changed: paths from a gone address are dead, and a new address may
   * allow a better one, so a new generation starts at once (the current path carries on meanwhile
   * if it still works).
   */
  networkChanged(): void {
    if (this.closedFlag || !this.started) return;
    this.restartNow("local addresses changed");
  }

  /** Closes a replaced generation after `graceMs` (datagrams in flight on it still arrive meanwhile). */
  private retire(g: IceGeneration, graceMs: number): void {
    if (this.retiring.has(g)) return;
    this.retiring.add(g);
    const t = setTimeout(() => {
      this.retiring.delete(g);
      void g.close();
    }, graceMs);
    t.unref?.();
  }

  /**
   * Controlled side: ask for (new) credentials, with back-off, until a generation newer than
   * the one asked about arrives (or, without a generation, until one does).
   */
  private requestRestart(force = false): void {
    if (this.closedFlag) return;
    if (!force && this.gen !== null && this.gen.generation !== this.askedFor) return;
    this.askedFor = this.gen?.generation ?? -1;
    this.signal({ type: "restart", generation: this.generation });
    const delay = this.delay(this.repeats++);
    this.clearTimer();
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.gen === null || this.gen.generation === this.askedFor) this.requestRestart(true);
    }, delay);
  }

  private askedFor = -1;

  /** Controlling side: repeat unanswered credentials with back-off, for as long as it takes. */
  private scheduleRepeat(): void {
    this.clearTimer();
    const g = this.gen;
    if (g === null) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.closedFlag || this.gen !== g || g.remote !== null) return;
      // Addresses changed while waiting (a new network): old candidates are useless.
      const hosts = safeHosts(this.cfg);
      if (hosts !== null && !sameList(hosts, g.hostAddresses)) {
        this.openGeneration(this.generation + 1);
        return;
      }
      this.resignal(g);
      this.scheduleRepeat();
    }, this.delay(this.repeats++));
  }

  /** Sends the generation's credentials and candidates again. */
  private resignal(g: IceGeneration): void {
    const now = Date.now();
    if (now - this.lastResignalAt < RESIGNAL_MIN_INTERVAL_MS) return;
    this.lastResignalAt = now;
    this.signal({ type: "credentials", generation: g.generation, ufrag: g.ufrag, pwd: g.pwd });
    for (const sdp of g.localSdp) this.signal({ type: "candidate", generation: g.generation, candidate: sdp });
    if (g.gathered) this.signal({ type: "candidate", generation: g.generation, candidate: null });
  }

  private deliver(g: IceGeneration, lane: IceSession, buf: Buffer): void {
    if (g !== this.gen && g !== this.prev && !this.retiring.has(g)) return;
    this.lastRxAt = Date.now();
    this.lastRxLane = lane;
    this.counters.rxPackets++;
    this.counters.rxBytes += buf.byteLength;
    for (const l of this.dataListeners) l(buf);
  }

  /** Messages go out one after another, in order. Failures are counted, not thrown. */
  private signal(msg: SignalingMessage): void {
    if (this.closedFlag) return;
    this.outbox = this.outbox
      .then(() => this.channel.send(this.peerKey, msg))
      .catch((e: unknown) => {
        this.signalErrors++;
        this.log.debug(`signaling ${msg.type} failed: ${e instanceof Error ? e.message : String(e)}`);
      });
  }

  private delay(attempt: number): number {
    return backoffDelay(attempt, this.cfg.backoff);
  }

  private setState(state: IceAgentState): void {
    if (this.stateValue === state) return;
    this.stateValue = state;
    for (const l of this.stateListeners) {
      try {
        l(state);
      } catch (e) {
        this.log.warn(`state listener threw: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  }

  private clearTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}

function safeHosts(cfg: ResolvedIceConfig): string[] | null {
  try {
    return currentHostAddresses(cfg);
  } catch {
    return null;
  }
}

function safeWatched(cfg: ResolvedIceConfig): string[] | null {
  try {
    return watchedAddresses(cfg);
  } catch {
    return null;
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
