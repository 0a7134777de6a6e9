/**
 * One ICE generation with one peer: a fresh werift-ice Connection, the candidates it offers and
 * learns, its connectivity checks, and the watch over the selected pair's consent.
 *
 * A restart makes a new session rather than calling the library's restart(): that keeps the
 * sockets but gathers no new server-reflexive candidates, re-offers the old relay next to a new
 * allocation, and bumps the library's own generation so that candidates from a peer that did
 * not restart the same way are never nominated. A fresh Connection has none of these problems,
 * and a path that failed because of a dead socket or a changed address gets new ones.
 *
 * The session never throws at its owner: whatever goes wrong ends in exactly one `failed` event.
 */
import dgram from "node:dgram";
import { isIPv4 } from "node:net";
import {
  Candidate,
  candidateFoundation,
  candidatePriority,
  classes,
  Connection,
  Message,
  methods,
  serverReflexiveCandidate,
  StunProtocol,
  type CandidatePair,
} from "werift-ice";
import type { Logger } from "../log/logger.js";
import { candidateInfo, formatCandidate, type CandidateInfo, type CandidateType } from "./candidates.js";
import { libraryOptions, type ResolvedIceConfig } from "./config.js";
import { RelayFacade, type SharedRelay } from "./shared-relay.js";
import { SharedTransport, type SharedSession, type SharedSocketRouter } from "./shared-socket.js";
import type { IceServer } from "./servers.js";

export interface SessionEvents {
  /** A local candidate to signal, in SDP attribute form. */
  candidate(sdp: string): void;
  /** Gathering finished; no more local candidates. */
  gathered(): void;
  /** Connectivity checks began. */
  checking(): void;
  /** A pair was selected; data may flow. */
  connected(): void;
  /** The session is unusable. Called at most once, never after close(). */
  failed(reason: string): void;
  /** A datagram arrived on one of the session's sockets. */
  data(buf: Buffer): void;
  /** The selected pair changed while connected (the library re-nominated). */
  pathChanged?(): void;
}

/** Where a session's host and server-reflexive candidates live: the interface's own socket. */
export interface SharedSocketUse {
  router: SharedSocketRouter;
  /** The peer's key, so the router can say whose checks come from an address. */
  peer: string;
}

/** The parts of the library's Connection that candidate gathering on a shared socket replaces. */
interface GatheringInternals {
  getCandidatePromises(addresses: string[], timeout?: number): Promise<Candidate | undefined>[];
  ensureProtocol(protocol: unknown): void;
  pairLocalProtocol(protocol: StunProtocol): void;
  appendLocalCandidate(candidate: Candidate): void;
  protocols: unknown[];
  generation: number;
}

export interface RemoteCredentials {
  ufrag: string;
  pwd: string;
}

/**
 * What a session is for: "direct" checks host and server-reflexive pairs from the host sockets;
 * "relay" checks only through one TURN allocation (the library checks relay pairs reliably only
 * when told to use nothing else, so relays get sessions of their own, run beside the direct one).
 */
export type LaneKind = "direct" | "relay";

/** How long closing waits for the TURN server to confirm an allocation's release. */
const RELEASE_TIMEOUT_MS = 500;

/**
 * A STUN server that has not answered within this long is joined by the next one in the list
 * (then the next, ...); the first answer is used. A real STUN round trip is well under it.
 */
export const STUN_FALLBACK_MS = 400;

/** How many remote candidates one session accepts; more is not a real peer. */
const MAX_REMOTE_CANDIDATES = 64;

export class IceSession {
  readonly conn: Connection;
  readonly createdAt = Date.now();
  /** Candidates offered to the peer, in SDP attribute form, in the order they were signalled. */
  readonly localSdp: string[] = [];
  readonly localCandidates: CandidateInfo[] = [];
  readonly remoteCandidates: CandidateInfo[] = [];
  private remoteCreds: RemoteCredentials | null = null;
  private gatheredFlag = false;
  private connectStarted = false;
  private connectedFlag = false;
  private done = false;
  private pending: Candidate[] = [];
  private remoteEnd = false;
  private readonly remoteSeen = new Set<string>();
  private readonly localSeen = new Set<string>();
  private connectTimer: NodeJS.Timeout | null = null;
  /** When the peer's credentials arrived (ms since the epoch), 0 before. */
  private remoteAt = 0;
  private gatherTimer: NodeJS.Timeout | null = null;
  private gatherDeadlinePassed = false;
  private watchdog: NodeJS.Timeout | null = null;
  /** Send failures inside the library (socket closed under it, ...). */
  sendErrors = 0;
  private readonly sharedSession: SharedSession | null = null;
  /** The shared socket's relay, once this session offers a candidate on it. */
  private sharedRelay: SharedRelay | null = null;
  /** When a datagram or a check response last came back on the selected pair (ms, Date.now()). */
  lastRxAt = 0;
  /** When a datagram was last sent on the selected pair. */
  lastTxAt = 0;
  /** When a probe of the selected pair was last answered. */
  lastProbeOkAt = 0;
  /** TURN allocations the server confirmed released on close. */
  allocationsReleased = 0;
  private gatherSawServerCandidate = false;
  /** The STUN server whose answer gave the srflx candidate (shared socket only), or null. */
  stunAnsweredBy: IceServer | null = null;

  constructor(
    readonly generation: number,
    readonly controlling: boolean,
    readonly hostAddresses: readonly string[],
    private readonly cfg: ResolvedIceConfig,
    private readonly events: SessionEvents,
    private readonly log: Logger,
    readonly lane: LaneKind = cfg.relayOnly ? "relay" : "direct",
    /** Credentials to use instead of fresh ones: the lanes of one generation share theirs. */
    credentials?: RemoteCredentials,
    shared: SharedSocketUse | null = null,
  ) {
    this.conn = new Connection(controlling, libraryOptions(cfg, hostAddresses));
    if (credentials !== undefined) {
      this.conn.localUsername = credentials.ufrag;
      this.conn.localPassword = credentials.pwd;
      // Incoming checks are answered with the password recorded for their username.
      (this.conn as unknown as { userHistory: Record<string, string> }).userHistory[credentials.ufrag] = credentials.pwd;
    }
    // The library falls back to a public STUN server when none is given; set it explicitly.
    this.conn.stunServer = cfg.stun === null ? undefined : [cfg.stun.host, cfg.stun.port];
    if (shared !== null) {
      // The lanes of a generation share a ufrag; only the direct lane's checks reach the socket
      // itself, so only it is routed by ufrag there (a relay lane's come through its relay).
      if (!cfg.relayOnly) this.sharedSession = shared.router.register(shared.peer, this.conn.localUsername);
      this.gatherOnSharedSocket(shared.router, this.sharedSession);
    }
    this.conn.onIceCandidate.subscribe((c) => this.onLocalCandidate(c));
    this.conn.onData.subscribe((buf) => {
      if (this.done) return;
      this.lastRxAt = Date.now();
      this.events.data(buf);
    });
    this.conn.stateChanged.subscribe((state) => {
      if (state === "failed") this.fail("consent to send expired");
    });
  }

  get ufrag(): string {
    return this.conn.localUsername;
  }

  get pwd(): string {
    return this.conn.localPassword;
  }

  get remote(): RemoteCredentials | null {
    return this.remoteCreds;
  }

  get gathered(): boolean {
    return this.gatheredFlag;
  }

  get checking(): boolean {
    return this.connectStarted && !this.connectedFlag;
  }

  get connected(): boolean {
    return this.connectedFlag && !this.done;
  }

  get closed(): boolean {
    return this.done;
  }

  /** The TURN server of a relay lane, or null. */
  get turnServer(): ResolvedIceConfig["turn"] {
    return this.lane === "relay" ? this.cfg.turn : null;
  }

  /** Gathering ended without any candidate from a server this session was given (STUN or TURN). */
  get serverSilent(): boolean {
    return this.gatheredFlag && !this.gatherSawServerCandidate && (this.lane === "relay" ? this.cfg.turn !== null : this.cfg.stun !== null);
  }

  /**
   * Starts gathering; candidates are reported as they come. The library waits for every server
   * before it calls gathering done, and has no deadline for a TURN server over TCP that never
   * answers; after `gatherTimeoutMs` checks start with the candidates there are (later ones are
   * still signalled, and end-of-candidates only when gathering really ends).
   */
  start(): void {
    this.gatherTimer = setTimeout(() => {
      this.gatherTimer = null;
      if (this.done || this.gatheredFlag) return;
      this.log.debug(`generation ${this.generation}: gathering still running after ${this.cfg.gatherTimeoutMs} ms; checking what there is`);
      this.gatherDeadlinePassed = true;
      this.tuneSockets();
      this.maybeConnect();
    }, this.cfg.gatherTimeoutMs);
    this.conn.gatherCandidates().then(
      () => {
        if (this.done) return;
        if (this.gatherTimer !== null) clearTimeout(this.gatherTimer);
        this.gatherTimer = null;
        this.tuneSockets();
        this.gatheredFlag = true;
        this.events.gathered();
        this.maybeConnect();
      },
      (e: unknown) => this.fail(`gathering candidates failed: ${message(e)}`),
    );
  }

  /** The peer's credentials for this generation. Later calls are ignored. Starts the connect deadline. */
  setRemote(creds: RemoteCredentials): void {
    if (this.done || this.remoteCreds !== null) return;
    this.remoteCreds = { ...creds };
    this.remoteAt = Date.now();
    this.connectTimer = setTimeout(() => {
      this.connectTimer = null;
      if (!this.connectedFlag) this.fail(`no candidate pair worked within ${this.cfg.connectTimeoutMs} ms`);
    }, this.cfg.connectTimeoutMs);
    this.maybeConnect();
  }

  /**
   * Brings the connect deadline forward to at most `ms` from the peer's credentials (never later
   * than it was). Used for a direct lane once a relay carries traffic: a direct path that has not
   * shown up by then is looked for again by a new generation rather than waited for.
   */
  shortenDeadline(ms: number): void {
    if (this.done || this.connectedFlag || this.connectTimer === null || this.remoteAt === 0) return;
    if (ms >= this.cfg.connectTimeoutMs) return;
    clearTimeout(this.connectTimer);
    this.connectTimer = setTimeout(() => {
      this.connectTimer = null;
      if (!this.connectedFlag) this.fail(`no direct pair within ${ms} ms while a relay works`);
    }, Math.max(0, this.remoteAt + ms - Date.now()));
  }

  /** A remote candidate, or null for end-of-candidates. Duplicates are ignored. */
  addRemote(c: Candidate | null): void {
    if (this.done) return;
    if (c === null) {
      if (this.remoteEnd) return;
      this.remoteEnd = true;
      if (this.connectStarted) this.addToLibrary(undefined);
      return;
    }
    const key = `${c.type} ${c.host} ${c.port}`;
    if (this.remoteSeen.has(key) || this.remoteSeen.size >= MAX_REMOTE_CANDIDATES) return;
    this.remoteSeen.add(key);
    this.remoteCandidates.push(candidateInfo(c));
    if (this.connectStarted) this.addToLibrary(c);
    else this.pending.push(c);
  }

  /**
   * Hands a datagram to the selected pair; false (nothing sent) when there is none. The bytes
   * are copied: the library sends without a completion callback, so the caller could not know
   * when its buffer is free again.
   */
  send(buf: Uint8Array): boolean {
    if (!this.connectedFlag || this.done || this.conn.nominated === undefined) return false;
    this.lastTxAt = Date.now();
    this.conn.send(Buffer.from(buf)).catch(() => {
      this.sendErrors++;
    });
    return true;
  }

  /**
   * Asks the peer over the selected pair whether it still answers (a STUN binding request with
   * the session's credentials, as a consent check, sent `tries` times `timeoutMs` apart).
   * Resolves true on the first response; false when none came, or there is no pair.
   */
  async probe(timeoutMs: number, tries = 2): Promise<boolean> {
    const pair = this.conn.nominated;
    if (!this.connectedFlag || this.done || pair === undefined) return false;
    const conn = this.conn as unknown as {
      buildRequest(o: { nominate: boolean; localUsername: string; remoteUsername: string; iceControlling: boolean; localCandidate: Candidate }): Message;
      remotePassword: string;
      remoteUsername: string;
    };
    const attempts: Promise<boolean>[] = [];
    for (let i = 0; i < tries; i++) {
      if (i > 0) await sleep(timeoutMs / tries);
      if (this.done || this.conn.nominated !== pair) break;
      const request = conn.buildRequest({
        nominate: false,
        localUsername: this.conn.localUsername,
        remoteUsername: conn.remoteUsername,
        iceControlling: this.controlling,
        localCandidate: pair.localCandidate,
      });
      attempts.push(
        pair.protocol
          .request(request, pair.remoteAddr, Buffer.from(conn.remotePassword, "utf8"), { retransmissions: 0, responseTimeout: timeoutMs })
          .then(
            () => true,
            () => false,
          ),
      );
    }
    const ok = (await Promise.all(attempts)).some((x) => x);
    if (ok && !this.done) this.lastRxAt = this.lastProbeOkAt = Date.now();
    return ok;
  }

  /** Ends the session now as failed (e.g. its pair stopped answering). No-op once closed. */
  abandon(reason: string): void {
    this.fail(reason);
  }

  /** The selected pair, once connected. */
  selectedPair(): { local: CandidateInfo; remote: CandidateInfo } | null {
    const p = this.connectedFlag && !this.done ? this.conn.nominated : undefined;
    if (p === undefined) return null;
    return { local: candidateInfo(p.localCandidate), remote: candidateInfo(p.remoteCandidate) };
  }

  /** True when the selected pair sends from the interface's shared socket (not a relay or a socket of its own). */
  selectedOnSharedSocket(): boolean {
    const p = this.connectedFlag && !this.done ? this.conn.nominated : undefined;
    const transport = (p?.protocol as { transport?: unknown } | undefined)?.transport;
    return transport instanceof SharedTransport && !transport.closed;
  }

  /**
   * When the selected pair is relayed through the shared socket's TURN allocation: the server
   * and the channel bound to the pair's remote address, which a data plane can send
   * ChannelData on itself.
   */
  selectedRelay(): { server: { address: string; port: number }; channel: number } | null {
    const p = this.connectedFlag && !this.done ? this.conn.nominated : undefined;
    const relay = this.sharedRelay;
    if (p === undefined || relay === null) return null;
    if (!((p.protocol as { turn?: unknown }).turn instanceof RelayFacade)) return null;
    const channel = relay.channelFor(p.remoteCandidate.host, p.remoteCandidate.port);
    return channel === null ? null : { server: { ...relay.server }, channel };
  }

  /** Latest round-trip time of the selected pair's checks, in ms. */
  rttMs(): number | null {
    const rtt = this.connectedFlag && !this.done ? this.conn.nominated?.rtt : undefined;
    return rtt === undefined ? null : rtt * 1000;
  }

  async close(): Promise<void> {
    if (this.done) return;
    this.done = true;
    this.clearTimers();
    this.sharedSession?.close();
    await this.releaseAllocations();
    try {
      await this.conn.close();
    } catch (e) {
      this.log.debug(`closing ICE session ${this.generation}: ${message(e)}`);
    }
  }

  /**
   * Releases the session's TURN allocations (Refresh with LIFETIME 0, RFC 8656 §7): the library
   * only closes its socket, and the server would keep the relayed port for its whole lifetime.
   * Waits at most {@link RELEASE_TIMEOUT_MS}; a server that does not answer lets it expire.
   */
  private async releaseAllocations(): Promise<void> {
    const protocols = (this.conn as unknown as { protocols?: unknown }).protocols;
    if (!Array.isArray(protocols)) return;
    const releases: Promise<unknown>[] = [];
    for (const p of protocols as unknown[]) {
      const turn = pick(p, "turn") as { requestWithRetry?: (m: Message, addr: unknown) => Promise<unknown>; server?: unknown; relayedAddress?: unknown } | undefined;
      if (typeof turn?.requestWithRetry !== "function" || turn.relayedAddress === undefined) continue;
      const request = new Message(methods.REFRESH, classes.REQUEST);
      request.setAttribute("LIFETIME", 0);
      releases.push(
        turn.requestWithRetry(request, turn.server).then(
          () => this.allocationsReleased++,
          (e: unknown) => this.log.debug(`releasing the TURN allocation: ${message(e)}`),
        ),
      );
    }
    if (releases.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(releases), new Promise((r) => (timer = setTimeout(r, RELEASE_TIMEOUT_MS)))]);
    clearTimeout(timer);
  }

  private onLocalCandidate(c: Candidate): void {
    if (this.done) return;
    const type = c.type as CandidateType;
    // The server answered, even if what it told is not offered (a srflx equal to a host candidate).
    if (type !== "host") this.gatherSawServerCandidate = true;
    if (!this.cfg.types.has(type)) return;
    if (c.transport.toLowerCase() !== "udp") return;
    const addrKey = `${c.host} ${c.port}`;
    // A server-reflexive candidate equal to an offered host candidate adds nothing (RFC 8445 §5.1.3).
    if (type === "srflx" && this.localSeen.has(`host ${addrKey}`)) return;
    const key = `${type} ${addrKey}`;
    if (this.localSeen.has(key)) return;
    this.localSeen.add(key);
    const sdp = formatCandidate(c);
    this.localSdp.push(sdp);
    this.localCandidates.push(candidateInfo(c));
    this.events.candidate(sdp);
  }

  /**
   * Raises the buffers of the library's UDP sockets (host sockets and the TURN client's), which
   * it leaves at the system default: a burst of WireGuard packets would otherwise overflow them.
   * The library does not expose its sockets, so they are looked up by shape; if its internals
   * change this does nothing rather than fail.
   */
  private tuneSockets(): void {
    const bytes = this.cfg.socketBufferBytes;
    if (bytes <= 0) return;
    const protocols = (this.conn as unknown as { protocols?: unknown }).protocols;
    if (!Array.isArray(protocols)) return;
    for (const p of protocols as unknown[]) {
      for (const sock of [pick(p, "transport", "socket"), pick(p, "turn", "transport", "socket")]) {
        if (!(sock instanceof dgram.Socket)) continue;
        try {
          sock.setRecvBufferSize(bytes);
          sock.setSendBufferSize(bytes);
        } catch {
          // Capped or refused by the system: keep what it gave.
        }
      }
    }
  }

  /**
   * Host candidates on the shared socket instead of a socket per address: the library's
   * gathering is replaced on this Connection (its `getCandidatePromises`, private in its types
   * only) by one that gives each host address a StunProtocol over a {@link SharedTransport}
   * and asks the STUN server through it. A relay lane over UDP TURN takes the shared socket's
   * allocation for its server instead; TURN over TCP/TLS keeps the library's own client.
   */
  private gatherOnSharedSocket(router: SharedSocketRouter, session: SharedSession | null): void {
    const conn = this.conn as unknown as GatheringInternals;
    const libraryGathering = conn.getCandidatePromises.bind(conn);
    const stun = this.cfg.stun;
    conn.getCandidatePromises = (addresses: string[], timeout = 5): Promise<Candidate | undefined>[] => {
      // Relay-only sessions over UDP TURN use the shared socket's allocation. Others keep the
      // library's own TURN client (given no addresses, the library gathers nothing else): the
      // allocation is shared by every session, and the library serialises its permission and
      // channel requests, so one request that goes unanswered (a check to a host candidate the
      // server will not relay to) would hold up every peer's relay behind it.
      const turn = this.cfg.turn;
      const promises: Promise<Candidate | undefined>[] = [];
      if (turn !== null && turn.transport === "udp" && this.cfg.relayOnly) promises.push(this.relayOnSharedSocket(conn, router, turn));
      else if (turn !== null) promises.push(...libraryGathering([], timeout));
      if (this.cfg.relayOnly || session === null) return promises;
      const families = session.router.families();
      const port = session.router.socket.localPort;
      if (port === null) return promises;
      let srflxAsked = false;
      for (const address of addresses) {
        const family = isIPv4(address) ? 4 : 6;
        if (!(family === 4 ? families.ipv4 : families.ipv6)) continue;
        const protocol = new StunProtocol();
        conn.ensureProtocol(protocol);
        const transport = session.transport(address, family);
        protocol.transport = transport as unknown as StunProtocol["transport"];
        const received = (protocol as unknown as { datagramReceived(data: Buffer, addr: readonly [string, number]): void }).datagramReceived.bind(protocol);
        transport.onData = (data, addr) => received(data, addr);
        protocol.localIp = address;
        conn.protocols.push(protocol);
        const candidate = new Candidate(
          candidateFoundation("host", "udp", address),
          1,
          "udp",
          candidatePriority("host", { transport: "udp" }),
          address,
          port,
          "host",
          undefined,
          undefined,
          undefined,
          conn.generation,
          this.conn.localUsername,
        );
        protocol.localCandidate = candidate;
        conn.pairLocalProtocol(protocol);
        conn.appendLocalCandidate(candidate);
        promises.push(Promise.resolve(candidate));
        // One STUN query per family is enough: every host address shares the socket's mapping.
        if (stun !== null && family === 4 && !srflxAsked) {
          srflxAsked = true;
          promises.push(this.askReflexive(conn, protocol, stunFallbackOrder(stun, this.cfg.stunServers), timeout * 1000));
        }
      }
      return promises;
    };
  }

  private async relayOnSharedSocket(conn: GatheringInternals, router: SharedSocketRouter, turn: IceServer): Promise<Candidate | undefined> {
    let relay: SharedRelay;
    try {
      relay = await router.relay(turn);
    } catch (e) {
      this.log.debug(`TURN allocation at ${turn.host}:${turn.port} on the shared socket failed: ${message(e)}`);
      return undefined;
    }
    if (this.done) return undefined;
    const protocol = relay.protocolFor(this.conn.localUsername);
    conn.ensureProtocol(protocol);
    conn.protocols.push(protocol);
    const [host, port] = relay.turn.relayedAddress;
    const [mappedHost, mappedPort] = relay.turn.mappedAddress;
    const candidate = new Candidate(
      candidateFoundation("relay", "udp", host),
      1,
      "udp",
      candidatePriority("relay"),
      host,
      port,
      "relay",
      mappedHost,
      mappedPort,
      undefined,
      conn.generation,
      this.conn.localUsername,
    );
    protocol.localCandidate = candidate;
    this.sharedRelay = relay;
    conn.appendLocalCandidate(candidate);
    return candidate;
  }

  /**
   * The srflx candidate from the first of `servers` that answers: the first is asked at once,
   * each next one {@link STUN_FALLBACK_MS} later while none has answered, so a dead server costs
   * that long instead of the whole gathering deadline.
   */
  private askReflexive(conn: GatheringInternals, protocol: StunProtocol, servers: IceServer[], timeoutMs: number): Promise<Candidate | undefined> {
    const startedAt = Date.now();
    return new Promise((resolve) => {
      const timers: NodeJS.Timeout[] = [];
      let settled = false;
      let failed = 0;
      let asked = 0;
      const finish = (c: Candidate | undefined, by: IceServer | null): void => {
        if (settled) return;
        settled = true;
        for (const t of timers) clearTimeout(t);
        if (c !== undefined && by !== null && !this.done) {
          this.log.debug(`srflx ${c.host}:${c.port} from STUN server ${by.host}:${by.port} after ${Date.now() - startedAt} ms (${asked} of ${servers.length} asked)`);
          this.stunAnsweredBy = by;
          conn.appendLocalCandidate(c);
        }
        resolve(c);
      };
      // Asks the next server now; one that fails outright (unreachable) hands on at once.
      const askNext = (): void => {
        if (settled || asked >= servers.length) return;
        const server = servers[asked++]!;
        if (asked < servers.length) timers.push(setTimeout(askNext, STUN_FALLBACK_MS));
        const gaveUp = (): void => {
          if (++failed === servers.length) finish(undefined, null);
          else askNext();
        };
        serverReflexiveCandidate(protocol, [server.host, server.port]).then(
          (c) => (c !== undefined ? finish(c, server) : gaveUp()),
          (e: unknown) => {
            this.log.debug(`STUN query to ${server.host}:${server.port} failed: ${message(e)}`);
            gaveUp();
          },
        );
      };
      timers.push(setTimeout(() => finish(undefined, null), timeoutMs));
      askNext();
    });
  }

  private maybeConnect(): void {
    if (this.done || this.connectStarted || !(this.gatheredFlag || this.gatherDeadlinePassed) || this.remoteCreds === null) return;
    this.connectStarted = true;
    // Remote parameters before remote candidates: a check triggered by an incoming request
    // needs the peer's password. Candidates are added only after gathering because the library
    // pairs a relay socket only with candidates it learns after that socket exists (or at
    // connect()); a relay that comes after the gathering deadline is offered to the peer but
    // checked only from the peer's side.
    this.conn.setRemoteParams({ iceLite: false, usernameFragment: this.remoteCreds.ufrag, password: this.remoteCreds.pwd });
    for (const c of this.pending) this.addToLibrary(c);
    this.pending = [];
    if (this.remoteEnd) this.addToLibrary(undefined);
    this.events.checking();
    // connect() may never settle when every check fails after end-of-candidates; the connect
    // deadline covers that.
    this.conn.connect().then(
      () => this.onConnected(),
      (e: unknown) => this.fail(`connectivity checks failed: ${message(e)}`),
    );
  }

  private addToLibrary(c: Candidate | undefined): void {
    this.conn.addRemoteCandidate(c).catch((e: unknown) => this.log.debug(`remote candidate refused: ${message(e)}`));
  }

  private onConnected(): void {
    if (this.done || this.connectedFlag) return;
    if (this.conn.nominated === undefined) {
      this.fail("checks ended without a selected pair");
      return;
    }
    this.connectedFlag = true;
    if (this.connectTimer !== null) {
      clearTimeout(this.connectTimer);
      this.connectTimer = null;
    }
    this.lastRxAt = Date.now();
    this.startWatchdog();
    this.events.connected();
  }

  /**
   * Watches consent on our side as well: the library's own expiry is fixed at 30 s, and a
   * configurable deadline lets a device (and the tests) recover faster.
   */
  private startWatchdog(): void {
    let pair: CandidatePair | undefined = this.conn.nominated;
    let responses = pair?.responsesReceived ?? 0;
    let lastResponseAt = Date.now();
    const every = Math.min(1000, Math.floor(this.cfg.consentTimeoutMs / 4));
    this.watchdog = setInterval(() => {
      const p = this.conn.nominated;
      if (p === undefined) {
        this.fail("the selected pair was dropped");
        return;
      }
      const now = Date.now();
      if (p !== pair || p.responsesReceived !== responses) {
        if (p !== pair) this.events.pathChanged?.();
        pair = p;
        responses = p.responsesReceived;
        lastResponseAt = now;
        this.lastRxAt = Math.max(this.lastRxAt, now);
      } else if (now - lastResponseAt > this.cfg.consentTimeoutMs) {
        this.fail(`no consent response for ${Math.round((now - lastResponseAt) / 1000)} s`);
      }
    }, every);
  }

  private fail(reason: string): void {
    if (this.done) return;
    this.done = true;
    this.clearTimers();
    this.sharedSession?.close();
    void this.releaseAllocations().then(() => this.conn.close().catch(() => undefined));
    this.events.failed(reason);
  }

  private clearTimers(): void {
    if (this.gatherTimer !== null) clearTimeout(this.gatherTimer);
    this.gatherTimer = null;
    if (this.connectTimer !== null) clearTimeout(this.connectTimer);
    if (this.watchdog !== null) clearInterval(this.watchdog);
    this.connectTimer = null;
    this.watchdog = null;
  }
}

/** obj.a.b.c, or undefined where a step is missing. */
function pick(obj: unknown, ...path: string[]): unknown {
  let cur = obj;
  for (const k of path) {
    if (typeof cur !== "object" || cur === null) return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** `servers` starting at `first` (the lane's choice), then the rest in list order, wrapping round. */
function stunFallbackOrder(first: IceServer, servers: readonly IceServer[]): IceServer[] {
  const i = servers.indexOf(first);
  return i < 0 ? [first, ...servers] : [...servers.slice(i), ...servers.slice(0, i)];
}
