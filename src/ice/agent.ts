/**
 * The ICE agent for one remote peer: finds a path to it with the help of a signaling channel and
 * keeps one, restarting when the path fails.
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
import { parseRemoteCandidate, type CandidateInfo, type CandidateType } from "./candidates.js";
import { currentHostAddresses, resolveIceConfig, type IceAgentConfig, type ResolvedIceConfig } from "./config.js";
import { iceRole, type IceRole } from "./role.js";
import { IceSession } from "./session.js";
import type { SharedSocketRouter } from "./shared-socket.js";
import type { Candidate } from "werift-ice";

export type IceAgentState = "new" | "checking" | "connected" | "failed" | "closed";

export interface SelectedPair {
  local: CandidateInfo;
  remote: CandidateInfo;
}

/**
 * Where a peer's datagrams go now. `shared`: the selected pair sends from the interface's own
 * socket, so a data plane on that socket can carry the peer's datagrams to `remote` itself.
 */
export interface IcePath extends SelectedPair {
  shared: boolean;
  /** The pair is relayed by the shared socket's TURN allocation: the server and the channel to the remote. */
  relay: { server: { address: string; port: number }; channel: number } | null;
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
  /** Datagrams not sent because no pair was selected. */
  txDropped: number;
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
   * The interface's shared socket, if any, read when each session starts: host and
   * server-reflexive candidates then live on it instead of sockets of their own.
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
/** Do not answer repeated credentials or restart requests more often than this. */
const RESIGNAL_MIN_INTERVAL_MS = 250;

export class PeerAgent {
  readonly role: IceRole;
  readonly peerKey: Uint8Array;
  /** The peer's public key, base64. */
  readonly peer: string;
  private readonly cfg: ResolvedIceConfig;
  private readonly channel: Pick<SignalingChannel, "send">;
  private readonly sharedSocket: () => SharedSocketRouter | null;
  private readonly log: Logger;
  private session: IceSession | null = null;
  private generation = 0;
  private stateValue: IceAgentState = "new";
  private sessionsStarted = 0;
  /** Consecutive failed sessions, for the restart back-off; reset on connect. */
  private failures = 0;
  /** Repeats of the current signal (credentials or restart request), for their back-off. */
  private repeats = 0;
  private timer: NodeJS.Timeout | null = null;
  private started = false;
  private closedFlag = false;
  private lastResignalAt = 0;
  private early: EarlyCandidates | null = null;
  private outbox: Promise<void> = Promise.resolve();
  private connectedAt: number | null = null;
  private lastConnectMs: number | null = null;
  private lastError: string | null = null;
  private readonly counters = { txPackets: 0, txBytes: 0, rxPackets: 0, rxBytes: 0, txDropped: 0 };
  /** Signaling messages that could not be handed to the channel. */
  signalErrors = 0;
  /** Signaling messages ignored (stale generation, malformed candidate, ...). */
  signalsIgnored = 0;
  private readonly dataListeners = new Set<DataListener>();
  private readonly stateListeners = new Set<StateListener>();
  private readonly pathListeners = new Set<PathListener>();
  private pathKey = "";

  constructor(opts: PeerAgentOptions) {
    this.cfg = opts.resolved ?? resolveIceConfig(opts);
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

  /** Begins: the controlling side opens a session, the controlled side asks for one. Idempotent. */
  start(): void {
    if (this.started || this.closedFlag) return;
    this.started = true;
    this.log.debug(`starting as ${this.role}`);
    if (this.controlling) this.openSession(this.generation);
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

  /** Sends one datagram over the selected pair; false (and counted) when there is none. */
  send(data: Uint8Array): boolean {
    const s = this.session;
    if (s !== null && s.send(data)) {
      this.counters.txPackets++;
      this.counters.txBytes += data.byteLength;
      return true;
    }
    this.counters.txDropped++;
    return false;
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
   * The one place a change of path is announced: a pair selected, replaced or lost (null).
   * A data plane that carries the peer itself follows this. Returns an unsubscribe function.
   */
  onPathChange(listener: PathListener): () => void {
    this.pathListeners.add(listener);
    return () => this.pathListeners.delete(listener);
  }

  /** The current path, or null. */
  path(): IcePath | null {
    const s = this.session;
    const pair = s?.selectedPair() ?? null;
    return s === null || pair === null ? null : { ...pair, shared: s.selectedOnSharedSocket(), relay: s.selectedRelay() };
  }

  /** The remote address of the selected pair, or null. */
  selectedRemote(): CandidateInfo | null {
    return this.session?.selectedPair()?.remote ?? null;
  }

  status(): PeerAgentStatus {
    const s = this.session;
    return {
      peer: this.peer,
      role: this.role,
      state: this.stateValue,
      generation: this.generation,
      restarts: Math.max(0, this.sessionsStarted - 1),
      selectedPair: s?.selectedPair() ?? null,
      rttMs: s?.rttMs() ?? null,
      localCandidates: s ? [...s.localCandidates] : [],
      remoteCandidates: s ? [...s.remoteCandidates] : [],
      connectedAt: this.stateValue === "connected" ? this.connectedAt : null,
      lastConnectMs: this.lastConnectMs,
      lastError: this.lastError,
      ...this.counters,
    };
  }

  /** Stops for good: closes the session and timers. Later messages and sends are dropped. */
  async close(): Promise<void> {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.clearTimer();
    const s = this.session;
    this.session = null;
    this.setState("closed");
    this.announcePath();
    this.dataListeners.clear();
    if (s !== null) await s.close();
    this.stateListeners.clear();
    this.pathListeners.clear();
  }

  // ---- controlling side ----

  /** Peer's answer to our credentials. */
  private onAnswer(generation: number, ufrag: string, pwd: string): void {
    const s = this.session;
    if (s === null || generation !== s.generation) {
      this.signalsIgnored++;
      return;
    }
    const r = s.remote;
    if (r === null) {
      this.clearTimer();
      s.setRemote({ ufrag, pwd });
      this.applyEarly(s);
      return;
    }
    if (r.ufrag === ufrag && r.pwd === pwd) return; // a repeat: the peer answered our repeat
    // The peer answered this generation twice (it restarted in between): start afresh.
    this.sessionFailed(s, "the peer answered again with new credentials");
  }

  private onRestartRequest(generation: number): void {
    if (!this.controlling) {
      // Only the controlling side leads restarts; the controlled one follows its credentials.
      this.signalsIgnored++;
      return;
    }
    const s = this.session;
    if (s === null) return; // a restart is already scheduled
    if (s.remote === null || generation < s.generation) {
      // The peer lacks our current credentials (lost, or it has just started): repeat them.
      this.resignal(s);
      return;
    }
    this.sessionFailed(s, `the peer asked for an ICE restart of generation ${generation}`);
  }

  // ---- controlled side ----

  /** Credentials from the controlling side. */
  private onOffer(generation: number, ufrag: string, pwd: string): void {
    const s = this.session;
    if (s !== null && s.generation === generation && s.remote?.ufrag === ufrag && s.remote.pwd === pwd) {
      this.resignal(s); // our answer was lost
      return;
    }
    this.clearTimer();
    if (s !== null) {
      this.session = null;
      void s.close();
    }
    const next = this.openSession(generation);
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
    const s = this.session;
    if (s !== null && s.generation === generation && s.remote !== null) {
      // Candidates name the credentials they belong to; a leftover from an answer we replaced is dropped.
      if (c !== null && c.ufrag !== undefined && c.ufrag !== s.remote.ufrag) {
        this.signalsIgnored++;
        return;
      }
      s.addRemote(c);
      return;
    }
    if (s !== null && generation < s.generation) {
      this.signalsIgnored++;
      return;
    }
    // Ahead of the credentials it belongs to: hold a few.
    if (this.early === null || this.early.generation !== generation) this.early = { generation, candidates: [], end: false };
    if (c === null) this.early.end = true;
    else if (this.early.candidates.length < MAX_EARLY_CANDIDATES) this.early.candidates.push(c);
  }

  private applyEarly(s: IceSession): void {
    const e = this.early;
    this.early = null;
    if (e === null || e.generation !== s.generation) return;
    for (const c of e.candidates) if (c.ufrag === undefined || c.ufrag === s.remote?.ufrag) s.addRemote(c);
    if (e.end) s.addRemote(null);
  }

  /**
   * The settings for the next session. After a failed attempt with direct candidates, and a TURN
   * server at hand, the next attempt is relay-only: the library checks relay pairs reliably only
   * when it is told to use nothing else, and a relayed path beats none. Attempts alternate, so a
   * direct path that becomes possible again is found on the next failure after.
   */
  private sessionConfig(): ResolvedIceConfig {
    const fallback = this.failures % 2 === 1 && this.cfg.turn !== null && this.cfg.types.has("relay") && !this.cfg.relayOnly;
    if (!fallback) return this.cfg;
    this.log.info("trying a relay-only path after a failed attempt");
    return { ...this.cfg, types: new Set<CandidateType>(["relay"]), relayOnly: true };
  }

  private openSession(generation: number): IceSession {
    this.generation = generation;
    this.sessionsStarted++;
    this.repeats = 0;
    let hosts: string[] = [];
    try {
      hosts = currentHostAddresses(this.cfg);
    } catch (e) {
      this.log.warn(`listing host addresses: ${e instanceof Error ? e.message : String(e)}`);
    }
    const s: IceSession = new IceSession(generation, this.controlling, hosts, this.sessionConfig(), {
      candidate: (sdp) => this.signal({ type: "candidate", generation, candidate: sdp }),
      gathered: () => this.signal({ type: "candidate", generation, candidate: null }),
      checking: () => {
        if (this.session === s) this.setState("checking");
      },
      connected: () => this.sessionConnected(s),
      failed: (reason) => this.sessionFailed(s, reason),
      data: (buf) => this.deliver(s, buf),
      pathChanged: () => {
        if (this.session === s) this.announcePath();
      },
    }, this.log, this.sharedUse());
    this.session = s;
    this.early = this.early?.generation === generation ? this.early : null;
    this.log.debug(`session ${generation} on ${hosts.length} host address(es)`);
    this.setState("new");
    // Credentials first: the peer needs them to make sense of the candidates that follow.
    this.signal({ type: "credentials", generation, ufrag: s.ufrag, pwd: s.pwd });
    s.start();
    if (this.controlling) this.scheduleRepeat();
    return s;
  }

  private sessionConnected(s: IceSession): void {
    if (this.session !== s || this.closedFlag) return;
    this.failures = 0;
    this.clearTimer();
    this.connectedAt = Date.now();
    this.lastConnectMs = this.connectedAt - s.createdAt;
    this.lastError = null;
    const pair = s.selectedPair();
    this.log.info(
      `connected (generation ${s.generation}, ${this.lastConnectMs} ms): ` +
        (pair ? `${pair.local.type} ${pair.local.address}:${pair.local.port} -> ${pair.remote.type} ${pair.remote.address}:${pair.remote.port}` : "?"),
    );
    this.setState("connected");
    this.announcePath();
  }

  private sessionFailed(s: IceSession, reason: string): void {
    if (this.session !== s || this.closedFlag) return;
    this.session = null;
    void s.close();
    this.lastError = reason;
    this.failures++;
    this.log.info(`generation ${s.generation} failed: ${reason}`);
    this.setState("failed");
    this.announcePath();
    this.clearTimer();
    if (this.controlling) {
      const delay = this.delay(this.failures - 1);
      this.timer = setTimeout(() => {
        this.timer = null;
        if (!this.closedFlag && this.session === null) this.openSession(this.generation + 1);
      }, delay);
    } else {
      this.requestRestart();
    }
  }

  /** Controlled side without a working session: ask for (new) credentials, with back-off. */
  private requestRestart(): void {
    if (this.closedFlag || this.session !== null) return;
    this.signal({ type: "restart", generation: this.generation });
    const delay = this.delay(this.repeats++);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.requestRestart();
    }, delay);
  }

  /** Controlling side: repeat unanswered credentials with back-off, for as long as it takes. */
  private scheduleRepeat(): void {
    this.clearTimer();
    const s = this.session;
    if (s === null) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.closedFlag || this.session !== s || s.remote !== null) return;
      // Addresses changed while waiting (a new network): old candidates are useless.
      const hosts = safeHosts(this.cfg);
      if (hosts !== null && !sameList(hosts, s.hostAddresses)) {
        this.session = null;
        void s.close();
        this.openSession(this.generation + 1);
        return;
      }
      this.resignal(s);
      this.scheduleRepeat();
    }, this.delay(this.repeats++));
  }

  /** Sends the session's credentials and candidates again. */
  private resignal(s: IceSession): void {
    const now = Date.now();
    if (now - this.lastResignalAt < RESIGNAL_MIN_INTERVAL_MS) return;
    this.lastResignalAt = now;
    this.signal({ type: "credentials", generation: s.generation, ufrag: s.ufrag, pwd: s.pwd });
    for (const sdp of s.localSdp) this.signal({ type: "candidate", generation: s.generation, candidate: sdp });
    if (s.gathered) this.signal({ type: "candidate", generation: s.generation, candidate: null });
  }

  private deliver(s: IceSession, buf: Buffer): void {
    if (this.session !== s) return;
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

  private sharedUse(): { router: SharedSocketRouter; peer: string } | null {
    const router = this.sharedSocket();
    return router === null ? null : { router, peer: this.peer };
  }

  /** Tells the path listeners when the path differs from the one last announced. */
  private announcePath(): void {
    const path = this.closedFlag ? null : this.path();
    const key =
      path === null
        ? ""
        : `${path.shared} ${path.relay?.channel ?? 0} ${path.local.address}:${path.local.port} ${path.remote.address}:${path.remote.port}`;
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
}

function safeHosts(cfg: ResolvedIceConfig): string[] | null {
  try {
    return currentHostAddresses(cfg);
  } catch {
    return null;
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
