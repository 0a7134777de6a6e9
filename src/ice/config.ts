/**
 * Settings shared by every ICE agent of a device, checked once (so that a bad setting is an error
 * when the interface comes up, not a silent failure later) and turned into the ICE library's
 * options for each new session.
 */
import os from "node:os";
import type { ConnectionOptions } from "node:tls";
import type { IceOptions } from "werift-ice";
import { silentLogger, type Logger } from "../log/logger.js";
import { isIP } from "node:net";
import { CANDIDATE_TYPES, CandidateFilterError, parsePortRange, selectHostAddresses, type CandidateType, type NetworkInterfaceMap } from "./candidates.js";
import { selectIceServers, type IceServer } from "./servers.js";

export interface IceBackoffOptions {
  /** First delay, before jitter. Default 1000 ms. */
  minMs?: number;
  /** Largest delay. Default 30000 ms. */
  maxMs?: number;
  /** Randomness in [0, 1) for jitter; default Math.random. */
  random?: () => number;
}

export interface IceAgentConfig {
  /** STUN/TURN servers (see servers.ts). None: host candidates only, and no server is contacted. */
  servers?: readonly IceServer[];
  /** Candidate types to offer. Default all: host, srflx, relay. Only "relay" forces the relay path. */
  candidateTypes?: Iterable<CandidateType>;
  /** Local UDP ports for candidate sockets (and the TURN client socket), inclusive. Default: any. */
  portRange?: readonly [number, number];
  /** The tunnel's own interface (e.g. "tswg0"); never offered as a host candidate. */
  tunnelInterface?: string;
  /** Further interface names to leave out; a trailing "*" matches any suffix ("docker*"). */
  excludeInterfaces?: readonly string[];
  /** Offer IPv4 candidates. Default true. */
  ipv4?: boolean;
  /** Offer IPv6 host candidates. Default true. */
  ipv6?: boolean;
  /** Addresses to offer as host candidates besides the interfaces' (e.g. "127.0.0.1" on one machine). */
  hostAddresses?: readonly string[];
  /** Source of interfaces and addresses; default os.networkInterfaces (tests pass their own). */
  networkInterfaces?: () => NetworkInterfaceMap;
  /** TLS options for turns: servers (trust anchors, server name). */
  turnTls?: Omit<ConnectionOptions, "host" | "port" | "socket">;
  /** Start checks after this long even if a STUN or TURN server has not answered yet. Default 5000 ms. */
  gatherTimeoutMs?: number;
  /** A session whose checks have not selected a pair this long after both sides' credentials are known fails. Default 15000 ms. */
  connectTimeoutMs?: number;
  /**
   * A connected session with no consent response for this long fails (RFC 7675 uses 30 s).
   * Consent checks go out every 4-6 s, so values below about 12 s risk failing on one lost packet.
   * Default 30000 ms; at least 8000 ms.
   */
  consentTimeoutMs?: number;
  /** Receive and send buffer size asked for on the ICE sockets (0: leave the default). Default 4 MiB. */
  socketBufferBytes?: number;
  /** Restart and re-signal delays. */
  backoff?: IceBackoffOptions;
  logger?: Logger;
}

export class IceConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "IceConfigError";
  }
}

/** {@link IceAgentConfig} checked and with defaults applied. */
export interface ResolvedIceConfig {
  /** The STUN server this session asks (for a lane: the one chosen; the first of stunServers). */
  stun: IceServer | null;
  /** The TURN server of a relay lane (the first of turnServers in the shared settings). */
  turn: IceServer | null;
  /** Every usable STUN server, in order: the first that answers is used, the others are fall-backs. */
  stunServers: IceServer[];
  /** Every usable TURN server, in order (at most {@link MAX_TURN_SERVERS}); each gets a relay lane. */
  turnServers: IceServer[];
  unusedServers: IceServer[];
  types: ReadonlySet<CandidateType>;
  /** Only relay candidates: checks go through the TURN server alone. */
  relayOnly: boolean;
  portRange: [number, number] | null;
  excludeInterfaces: string[];
  ipv4: boolean;
  ipv6: boolean;
  hostAddresses: string[];
  networkInterfaces: () => NetworkInterfaceMap;
  turnTls: Omit<ConnectionOptions, "host" | "port" | "socket"> | undefined;
  gatherTimeoutMs: number;
  connectTimeoutMs: number;
  consentTimeoutMs: number;
  socketBufferBytes: number;
  backoff: Required<Pick<IceBackoffOptions, "minMs" | "maxMs">> & Pick<IceBackoffOptions, "random">;
  logger: Logger;
}

/** Relay lanes per peer: each TURN server listed gets one, up to this many. */
export const MAX_TURN_SERVERS = 3;

// Consent checks go out every 4-6 s: a shorter deadline would fail healthy paths.
const MIN_CONSENT_TIMEOUT_MS = 8000;

export function resolveIceConfig(cfg: IceAgentConfig = {}): ResolvedIceConfig {
  const ipv4 = cfg.ipv4 ?? true;
  const ipv6 = cfg.ipv6 ?? true;
  if (!ipv4 && !ipv6) throw new IceConfigError("ICE needs IPv4 or IPv6 enabled");

  const types = new Set<CandidateType>();
  for (const t of cfg.candidateTypes ?? CANDIDATE_TYPES) {
    if (!(CANDIDATE_TYPES as readonly string[]).includes(t)) {
      throw new IceConfigError(`unknown candidate type "${String(t)}" (expected host, srflx or relay)`);
    }
    types.add(t);
  }
  if (types.size === 0) throw new IceConfigError("at least one candidate type must be allowed");

  const selected = selectIceServers(cfg.servers ?? []);
  // A server is only contacted when a candidate type that needs it is allowed.
  const stunServers = types.has("srflx") ? selected.stunServers : [];
  const allTurn = types.has("relay") ? selected.turnServers : [];
  const turnServers = allTurn.slice(0, MAX_TURN_SERVERS);
  const stun = stunServers[0] ?? null;
  const turn = turnServers[0] ?? null;
  const producible = types.has("host") || stun !== null || turn !== null;
  if (!producible) {
    const wanted = [...types].join(", ");
    throw new IceConfigError(`candidate types (${wanted}) need ${types.has("relay") ? "a TURN" : "a STUN"} server, but none is configured`);
  }

  let portRange: [number, number] | null = null;
  if (cfg.portRange !== undefined) {
    try {
      portRange = parsePortRange(cfg.portRange);
    } catch (e) {
      throw new IceConfigError((e as CandidateFilterError).message);
    }
  }

  const excludeInterfaces = [...(cfg.excludeInterfaces ?? [])];
  if (cfg.tunnelInterface !== undefined && cfg.tunnelInterface !== "") excludeInterfaces.unshift(cfg.tunnelInterface);
  for (const name of excludeInterfaces) {
    if (typeof name !== "string" || name === "" || name === "*") throw new IceConfigError(`interface exclusion "${String(name)}" is empty or matches everything`);
  }

  const hostAddresses = [...(cfg.hostAddresses ?? [])];
  for (const a of hostAddresses) {
    if (typeof a !== "string" || isIP(a) === 0) throw new IceConfigError(`host address "${String(a)}" is not an IP address`);
  }

  const gatherTimeoutMs = cfg.gatherTimeoutMs ?? 5000;
  if (!Number.isFinite(gatherTimeoutMs) || gatherTimeoutMs < 100) throw new IceConfigError(`gatherTimeoutMs must be at least 100, got ${gatherTimeoutMs}`);
  const connectTimeoutMs = cfg.connectTimeoutMs ?? 15_000;
  const consentTimeoutMs = cfg.consentTimeoutMs ?? 30_000;
  if (!Number.isFinite(connectTimeoutMs) || connectTimeoutMs < 500) throw new IceConfigError(`connectTimeoutMs must be at least 500, got ${connectTimeoutMs}`);
  if (!Number.isFinite(consentTimeoutMs) || consentTimeoutMs < MIN_CONSENT_TIMEOUT_MS) {
    throw new IceConfigError(`consentTimeoutMs must be at least ${MIN_CONSENT_TIMEOUT_MS}, got ${consentTimeoutMs}`);
  }
  const socketBufferBytes = cfg.socketBufferBytes ?? 4 << 20;
  if (!Number.isInteger(socketBufferBytes) || socketBufferBytes < 0) throw new IceConfigError(`socketBufferBytes must be a non-negative integer, got ${socketBufferBytes}`);
  const minMs = cfg.backoff?.minMs ?? 1000;
  const maxMs = cfg.backoff?.maxMs ?? 30_000;
  if (!(minMs > 0) || !(maxMs >= minMs)) throw new IceConfigError(`backoff needs 0 < minMs <= maxMs, got ${minMs} and ${maxMs}`);

  return {
    stun,
    turn,
    stunServers,
    turnServers,
    unusedServers: allTurn.slice(MAX_TURN_SERVERS),
    types,
    relayOnly: !types.has("host") && !types.has("srflx"),
    portRange,
    excludeInterfaces,
    ipv4,
    ipv6,
    hostAddresses,
    networkInterfaces: cfg.networkInterfaces ?? (() => os.networkInterfaces()),
    turnTls: cfg.turnTls,
    gatherTimeoutMs,
    connectTimeoutMs,
    consentTimeoutMs,
    socketBufferBytes,
    backoff: { minMs, maxMs, random: cfg.backoff?.random },
    logger: cfg.logger ?? silentLogger,
  };
}

/**
 * The addresses to offer host candidates on right now (none when only relays are allowed: then
 * the library opens no host sockets at all). Throws if the interface listing does.
 */
export function currentHostAddresses(cfg: ResolvedIceConfig): string[] {
  if (cfg.relayOnly) return [];
  return selectHostAddresses(cfg.networkInterfaces(), {
    ipv4: cfg.ipv4,
    ipv6: cfg.ipv6,
    excludeInterfaces: cfg.excludeInterfaces,
    extraAddresses: cfg.hostAddresses,
  });
}

/**
 * The addresses whose change means "a new network": the host addresses ICE would offer, also
 * when only relays are offered (a relay's allocation is tied to the address it was made from).
 */
export function watchedAddresses(cfg: ResolvedIceConfig): string[] {
  return selectHostAddresses(cfg.networkInterfaces(), {
    ipv4: cfg.ipv4,
    ipv6: cfg.ipv6,
    excludeInterfaces: cfg.excludeInterfaces,
    extraAddresses: [],
  });
}

/**
 * The ICE library's options for one session. Its own host-address discovery is switched off
 * (both families false) and the addresses chosen by selectHostAddresses are passed instead; the
 * STUN server is set explicitly by the session, because the library falls back to a public one.
 */
export function libraryOptions(cfg: ResolvedIceConfig, hostAddresses: readonly string[]): Partial<IceOptions> {
  const o: Partial<IceOptions> = {
    useIpv4: false,
    useIpv6: false,
    additionalHostAddresses: [...hostAddresses],
    forceTurn: cfg.relayOnly,
  };
  if (cfg.portRange !== null) o.portRange = cfg.portRange;
  if (cfg.stun !== null) o.stunServer = [cfg.stun.host, cfg.stun.port];
  if (cfg.turn !== null) {
    o.turnServer = [cfg.turn.host, cfg.turn.port];
    o.turnUsername = cfg.turn.username;
    o.turnPassword = cfg.turn.credential;
    o.turnTransport = cfg.turn.transport;
    if (cfg.turnTls !== undefined) o.turnTlsOptions = cfg.turnTls;
  }
  return o;
}
