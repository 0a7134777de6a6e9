/**
 * One ICE generation with one peer, run as parallel lanes that share one set of credentials:
 *
 * 1. a direct lane (host and server-reflexive pairs, from the host sockets), when host or srflx
 *    candidates are allowed;
 * 2. a relay lane per TURN server (checks through that allocation only), when relays are allowed.
 *
 * The library settles on the first pair that works and checks relay pairs reliably only when it
 * is told to use nothing else, so a single connection either never finds the relay (symmetric
 * NATs) or never leaves it. Lanes fix both: every lane runs its checks from the start, traffic
 * takes whichever connects first, and moves to a better one (direct before relay) when it
 * connects; a connected relay lane stays warm for a fail-over. The peer sees one generation:
 * one credentials message, candidates of every lane (routed back to lanes by type: relay
 * candidates to every relay lane, the others to the direct lane), and one end-of-candidates
 * once every lane has gathered.
 *
 * On the interface's shared socket (see shared-socket.ts) the lanes keep one ufrag between them
 * without clashing: only the direct lane registers it with the socket's router (checks that
 * reach the socket itself are direct-lane checks), while each relay lane's checks arrive through
 * its own TURN server's allocation and are routed by that relay (shared-relay.ts), where the
 * lane is the only one of its generation.
 */
import type { Candidate } from "werift-ice";
import type { Logger } from "../log/logger.js";
import type { CandidateInfo, CandidateType } from "./candidates.js";
import type { ResolvedIceConfig } from "./config.js";
import { IceSession, type LaneKind, type RemoteCredentials, type SharedSocketUse } from "./session.js";

export interface GenerationEvents {
  /** A local candidate of any lane, in SDP attribute form. */
  candidate(sdp: string): void;
  /** Every lane has finished gathering (or failed). */
  gathered(): void;
  /** A lane began its checks. */
  checking(lane: IceSession): void;
  /** A lane selected a pair. */
  connected(lane: IceSession): void;
  /** A lane ended; `remaining` lanes are still running (connected or checking). */
  laneFailed(lane: IceSession, reason: string, remaining: number): void;
  /** A datagram arrived on a lane. */
  data(lane: IceSession, buf: Buffer): void;
  /** A connected lane's selected pair changed (the library re-nominated, or a relay channel was bound). */
  pathChanged(lane: IceSession): void;
}

export class IceGeneration {
  readonly lanes: IceSession[] = [];
  readonly createdAt = Date.now();
  private remoteCreds: RemoteCredentials | null = null;
  private endSent = false;
  private closedFlag = false;

  constructor(
    readonly generation: number,
    readonly controlling: boolean,
    readonly hostAddresses: readonly string[],
    cfg: ResolvedIceConfig,
    /** Index into cfg.stunServers for the direct lane (fall-back rotation). */
    stunIndex: number,
    private readonly events: GenerationEvents,
    log: Logger,
    /**
     * The interface's shared socket: the direct lane's host and srflx candidates live on it, and
     * UDP relay lanes allocate from it (one allocation per server, shared with other peers).
     */
    shared: SharedSocketUse | null = null,
  ) {
    const directTypes = new Set<CandidateType>([...cfg.types].filter((t) => t !== "relay"));
    const stun = cfg.stunServers.length > 0 ? cfg.stunServers[stunIndex % cfg.stunServers.length]! : null;
    const specs: { lane: LaneKind; cfg: ResolvedIceConfig; hosts: readonly string[] }[] = [];
    if (directTypes.has("host") || (directTypes.has("srflx") && stun !== null)) {
      specs.push({ lane: "direct", cfg: { ...cfg, types: directTypes, stun, turn: null, relayOnly: false }, hosts: hostAddresses });
    }
    if (cfg.types.has("relay")) {
      for (const turn of cfg.turnServers) {
        specs.push({ lane: "relay", cfg: { ...cfg, types: new Set<CandidateType>(["relay"]), stun: null, turn, relayOnly: true }, hosts: [] });
      }
    }
    let creds: RemoteCredentials | undefined;
    for (const spec of specs) {
      const s: IceSession = new IceSession(
        generation,
        controlling,
        spec.hosts,
        spec.cfg,
        {
          candidate: (sdp) => events.candidate(sdp),
          gathered: () => this.maybeEnd(),
          checking: () => events.checking(s),
          connected: () => events.connected(s),
          failed: (reason) => {
            this.maybeEnd();
            events.laneFailed(s, reason, this.running().length);
          },
          data: (buf) => events.data(s, buf),
          pathChanged: () => events.pathChanged(s),
        },
        spec.lane === "relay" ? log.child(`relay ${spec.cfg.turn?.host ?? ""}`) : log,
        spec.lane,
        creds,
        shared,
      );
      creds ??= { ufrag: s.ufrag, pwd: s.pwd };
      this.lanes.push(s);
    }
  }

  get ufrag(): string {
    return this.lanes[0]?.ufrag ?? "";
  }

  get pwd(): string {
    return this.lanes[0]?.pwd ?? "";
  }

  get remote(): RemoteCredentials | null {
    return this.remoteCreds;
  }

  /** Every lane has gathered or ended. */
  get gathered(): boolean {
    return this.lanes.every((l) => l.gathered || l.closed);
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** Candidates offered to the peer by every lane, in SDP attribute form. */
  get localSdp(): string[] {
    return this.lanes.flatMap((l) => l.localSdp);
  }

  get localCandidates(): CandidateInfo[] {
    return this.lanes.flatMap((l) => l.localCandidates);
  }

  get remoteCandidates(): CandidateInfo[] {
    const seen = new Set<string>();
    const out: CandidateInfo[] = [];
    for (const c of this.lanes.flatMap((l) => l.remoteCandidates)) {
      const k = `${c.type} ${c.address} ${c.port}`;
      if (seen.has(k)) continue;
      seen.add(k);
      out.push(c);
    }
    return out;
  }

  /** Lanes not ended. */
  running(): IceSession[] {
    return this.lanes.filter((l) => !l.closed);
  }

  /** Connected lanes, best first (see {@link pathRank}). */
  connectedLanes(): IceSession[] {
    return this.lanes.filter((l) => l.connected).sort((a, b) => pathRank(a) - pathRank(b));
  }

  /** The direct lane, if this generation has one. */
  direct(): IceSession | undefined {
    return this.lanes.find((l) => l.lane === "direct");
  }

  start(): void {
    for (const l of this.lanes) l.start();
  }

  setRemote(creds: RemoteCredentials): void {
    if (this.remoteCreds !== null) return;
    this.remoteCreds = { ...creds };
    for (const l of this.lanes) l.setRemote(creds);
  }

  /** A remote candidate (relay ones to the relay lanes, the rest to the direct lane), or null for the end. */
  addRemote(c: Candidate | null): void {
    for (const l of this.lanes) {
      if (c === null || (c.type === "relay") === (l.lane === "relay")) l.addRemote(c);
    }
  }

  async close(): Promise<void> {
    if (this.closedFlag) return;
    this.closedFlag = true;
    await Promise.all(this.lanes.map((l) => l.close()));
  }

  private maybeEnd(): void {
    if (this.endSent || this.closedFlag || !this.gathered) return;
    this.endSent = true;
    this.events.gathered();
  }
}

/**
 * Lower is better: a direct pair between host candidates, then one through a NAT (srflx or
 * prflx), then relays in the order their servers are listed (TURN over UDP before TCP/TLS at the
 * same position, since the list order is the user's).
 */
export function pathRank(s: IceSession): number {
  if (s.lane === "relay") return 10 + (s.turnServer?.transport === "udp" ? 0 : 1);
  const p = s.selectedPair();
  if (p === null) return 5;
  return p.local.type === "host" && p.remote.type === "host" ? 0 : 1;
}
