/**
 * Path MTU of ICE paths between tswg peers, probed with padded STUN binding requests (DPLPMTUD,
 * RFC 8899, with STUN as the probe packet): the peer's ICE agent answers a binding request of any
 * size, so an answer to a request of size S says that S bytes got through, and only the
 * request's size is tested (the answer is small). A probe of S bytes takes the way a WireGuard
 * datagram of S bytes would.
 *
 * 1. On a path change (after a short settling delay) and every REPROBE_MS, a peer's path is
 *    searched: the base (an IP packet of 1280 bytes) is confirmed first, then a binary search
 *    between the largest size confirmed and the largest the first leg lets leave unfragmented.
 * 2. Each size is tried up to TRIES times; a size without an answer is only "too large" for the
 *    search: a lost probe never says anything about the path's liveness.
 * 3. A probe goes from the pair's own socket (the interface's shared socket): to the remote
 *    candidate, or, relayed by our allocation, as ChannelData on the pair's channel to the TURN
 *    server, as the data plane sends.
 * 4. Through a relay (ours or the peer's) only the base is confirmed: the server's leg to the far
 *    end adds ChannelData, and the server may fragment there (coturn does), so an answer to a
 *    larger probe would prove nothing. The base is sized for that leg (1280 with ChannelData).
 * 5. Answers are matched by transaction ID ({@link ProbeWaiters}, consulted by the shared socket
 *    and the shared relay before anything else sees a response).
 * 6. The result is reported in the path MTU table's unit: the outer IP packet towards where the
 *    peer's WireGuard datagrams go (for a relayed path, the ChannelData packet to the server).
 *
 * The shared socket asks for path MTU discovery "want" (see docs/mtu.md): a datagram that fits
 * the kernel's path MTU towards its destination leaves with DF, a larger one is fragmented
 * locally. The socket is the pair's own (a socket of the prober's would have another NAT
 * binding) and offers no per-send DF flag, so no probe is larger than the kernel's current path
 * MTU for its first leg (read before every probe): every probe then leaves with DF.
 */
import { createHmac, randomBytes } from "node:crypto";

/** The base every path must carry (IPv6's minimum link MTU), confirmed first. */
export const BASE_MTU = 1280;
/** Re-probe interval of a path that has not changed. */
export const REPROBE_MS = 10 * 60_000;
/** Delay after a path change before its first probe (the pair settles, channels get bound). */
export const SETTLE_MS = 1500;
/** How long a probe waits for its answer. */
export const PROBE_TIMEOUT_MS = 1000;
/** How often a size is tried before it counts as too large. */
export const TRIES = 3;

const BINDING_REQUEST = 0x0001;
const MAGIC_COOKIE = 0x2112a442;
const ATTR_USERNAME = 0x0006;
const ATTR_MESSAGE_INTEGRITY = 0x0008;
const ATTR_PRIORITY = 0x0024;
/** RFC 5780 PADDING: ignored by the peer's agent, which answers the request as any other. */
const ATTR_PADDING = 0x0026;
const ATTR_FINGERPRINT = 0x8028;
const HEADER = 20;

/** Outer IP + UDP header bytes. */
export function ipUdpHeader(family: 4 | 6): number {
  return family === 4 ? 28 : 48;
}

/** ChannelData header in front of a relayed WireGuard datagram (what the data plane sends). */
export const CHANNEL_DATA_OVERHEAD = 4;


// ---- STUN messages -------------------------------------------------------------------------

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of data) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function attribute(type: number, value: Uint8Array): Buffer {
  const padded = (value.length + 3) & ~3;
  const out = Buffer.alloc(4 + padded);
  out.writeUInt16BE(type, 0);
  out.writeUInt16BE(value.length, 2);
  out.set(value, 4);
  return out;
}

function header(type: number, bodyLength: number, transactionId: Uint8Array): Buffer {
  const h = Buffer.alloc(HEADER);
  h.writeUInt16BE(type, 0);
  h.writeUInt16BE(bodyLength, 2);
  h.writeUInt32BE(MAGIC_COOKIE, 4);
  h.set(transactionId, 8);
  return h;
}

export interface ProbeCredentials {
  /** Our ufrag and the peer's: USERNAME is "peer:ours". */
  localUfrag: string;
  remoteUfrag: string;
  /** The peer's password: MESSAGE-INTEGRITY of a check is keyed with it. */
  remotePwd: string;
}

/**
 * A connectivity-check binding request of exactly `size` bytes (a multiple of 4): USERNAME,
 * PRIORITY, PADDING, MESSAGE-INTEGRITY, FINGERPRINT. Null when `size` is too small for it.
 */
export function paddedBindingRequest(size: number, creds: ProbeCredentials, transactionId: Uint8Array = randomBytes(12)): Buffer | null {
  const username = attribute(ATTR_USERNAME, Buffer.from(`${creds.remoteUfrag}:${creds.localUfrag}`, "utf8"));
  const priority = attribute(ATTR_PRIORITY, Buffer.from([0x6e, 0x00, 0x01, 0xff]));
  const fixed = HEADER + username.length + priority.length + 4 + 24 + 8;
  if (size % 4 !== 0 || size < fixed) return null;
  const padding = attribute(ATTR_PADDING, Buffer.alloc(size - fixed));
  let body = Buffer.concat([username, priority, padding]);
  // MESSAGE-INTEGRITY covers the header with the length up to and including itself.
  const integrity = createHmac("sha1", Buffer.from(creds.remotePwd, "utf8"))
    .update(Buffer.concat([header(BINDING_REQUEST, body.length + 24, transactionId), body]))
    .digest();
  body = Buffer.concat([body, attribute(ATTR_MESSAGE_INTEGRITY, integrity)]);
  const fp = Buffer.alloc(4);
  fp.writeUInt32BE((crc32(Buffer.concat([header(BINDING_REQUEST, body.length + 8, transactionId), body])) ^ 0x5354554e) >>> 0);
  body = Buffer.concat([body, attribute(ATTR_FINGERPRINT, fp)]);
  return Buffer.concat([header(BINDING_REQUEST, body.length, transactionId), body]);
}

/** A TURN ChannelData message carrying `data` on `channel` (no padding: UDP, RFC 8656 12.5). */
export function channelData(channel: number, data: Uint8Array): Buffer {
  const out = Buffer.alloc(CHANNEL_DATA_OVERHEAD + data.length);
  out.writeUInt16BE(channel, 0);
  out.writeUInt16BE(data.length, 2);
  out.set(data, CHANNEL_DATA_OVERHEAD);
  return out;
}

// ---- answers -------------------------------------------------------------------------------

/** Outstanding probes by transaction ID; the shared socket and relay hand responses here first. */
export class ProbeWaiters {
  private readonly waiting = new Map<string, () => void>();

  get size(): number {
    return this.waiting.size;
  }

  expect(transactionId: Uint8Array, answered: () => void): () => void {
    const k = Buffer.from(transactionId).toString("hex");
    this.waiting.set(k, answered);
    return () => this.waiting.delete(k);
  }

  /** True when `data` is a STUN response to one of our probes (then it is consumed). */
  claim(data: Uint8Array): boolean {
    if (this.waiting.size === 0 || data.length < HEADER || (data[0]! & 0xc0) !== 0) return false;
    // Class bits: success (0x0100) or error (0x0110) responses only.
    if ((data[0]! & 0x01) === 0) return false;
    const k = Buffer.from(data.subarray(8, HEADER)).toString("hex");
    const f = this.waiting.get(k);
    if (f === undefined) return false;
    this.waiting.delete(k);
    f();
    return true;
  }
}

// ---- the search ----------------------------------------------------------------------------

export interface SearchOptions {
  /** The base to confirm first. */
  base: number;
  /** The largest size worth trying (the first leg's limit); below base, only base is tried. */
  max: number;
  /** Sizes are multiples of this (STUN messages are 4-byte aligned). */
  step: number;
  tries: number;
}

/**
 * The largest size in [base, max] that `probe` confirms, by binary search after the base; 0 when
 * the base is not confirmed. A size counts as too large only after `tries` unanswered probes.
 */
export async function searchPathMtu(probe: (size: number) => Promise<boolean>, opts: SearchOptions): Promise<number> {
  const attempt = async (size: number): Promise<boolean> => {
    for (let i = 0; i < opts.tries; i++) if (await probe(size)) return true;
    return false;
  };
  const align = (n: number): number => n - (((n - opts.base) % opts.step) + opts.step) % opts.step;
  if (opts.max < opts.base || !(await attempt(opts.base))) return 0;
  let lo = opts.base;
  let hi = align(opts.max);
  if (hi > lo && (await attempt(hi))) return hi;
  // Invariant: lo confirmed, hi not (or never tried above max).
  while (hi - lo > opts.step) {
    const mid = align(lo + Math.floor((hi - lo) / 2));
    if (mid <= lo) break;
    if (await attempt(mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}

// ---- per-peer prober -----------------------------------------------------------------------

/** What the prober needs of a peer's current path. */
export interface ProbeRoute {
  credentials: ProbeCredentials;
  /** The remote candidate of the selected pair. */
  remote: readonly [string, number];
  /** For a pair relayed by our allocation: the TURN server and the channel bound to the remote. */
  relay: { address: string; port: number; channel: number } | null;
  /** The remote candidate is a TURN relay (the peer's allocation). */
  remoteRelayed: boolean;
}

export interface ProberHooks {
  /** Sends one datagram from the pair's socket. */
  send(data: Uint8Array, address: string, port: number): void;
  /** The largest IP packet that leaves towards `address` unfragmented now (kernel), 0: unknown. */
  limit(family: 4 | 6, address: string, port: number): number;
  /** A confirmed path MTU for `peer`, in the table's unit (see the flow comment, 5). */
  report(peer: string, mtu: number): void;
}

interface PeerState {
  route: ProbeRoute | null;
  timer: NodeJS.Timeout | null;
  /** Bumped on every path change: a search of an older path reports nothing. */
  epoch: number;
}

function familyOf(address: string): 4 | 6 {
  return address.includes(":") ? 6 : 4;
}

export class PathMtuProber {
  private readonly peers = new Map<string, PeerState>();
  private closed = false;
  /** Probes sent and answered, for diagnostics. */
  readonly counters = { sent: 0, answered: 0, searches: 0 };

  constructor(
    /** Where the shared socket and relay hand the answers. */
    private readonly waiters: ProbeWaiters,
    private readonly hooks: ProberHooks,
    private readonly timing = { settleMs: SETTLE_MS, reprobeMs: REPROBE_MS, timeoutMs: PROBE_TIMEOUT_MS },
  ) {}

  /** A peer's path changed (null: it has none, or one not on the shared socket). */
  pathChanged(peer: string, route: ProbeRoute | null): void {
    if (this.closed) return;
    let s = this.peers.get(peer);
    if (s === undefined) {
      s = { route: null, timer: null, epoch: 0 };
      this.peers.set(peer, s);
    }
    s.epoch++;
    s.route = route;
    if (s.timer !== null) clearTimeout(s.timer);
    s.timer = null;
    if (route === null) {
      this.peers.delete(peer);
      return;
    }
    this.schedule(peer, s, this.timing.settleMs);
  }

  close(): void {
    this.closed = true;
    for (const s of this.peers.values()) if (s.timer !== null) clearTimeout(s.timer);
    this.peers.clear();
  }

  private schedule(peer: string, s: PeerState, ms: number): void {
    s.timer = setTimeout(() => {
      s.timer = null;
      void this.run(peer, s);
    }, ms);
    s.timer.unref?.();
  }

  private async run(peer: string, s: PeerState): Promise<void> {
    const route = s.route;
    const epoch = s.epoch;
    if (route === null || this.closed) return;
    this.counters.searches++;
    const peerFamily = familyOf(route.remote[0]);
    const first = route.relay === null ? route.remote : ([route.relay.address, route.relay.port] as const);
    const firstFamily = familyOf(first[0]);
    // Sizes are those of the probe (the STUN message, the size of a WireGuard datagram that
    // takes the same way); the table's unit adds the first leg's headers (and ChannelData).
    const firstLegAdds = ipUdpHeader(firstFamily) + (route.relay === null ? 0 : CHANNEL_DATA_OVERHEAD);
    const firstLimit = (): number => this.hooks.limit(firstFamily, first[0], first[1]);
    // Through a relay, the TURN server's leg to the far end adds ChannelData, and whether the
    // server fragments there is its own policy (coturn does): an answer above the base proves
    // nothing, so only the base is confirmed, sized for that leg.
    const relayed = route.relay !== null || route.remoteRelayed;
    const base = BASE_MTU - ipUdpHeader(peerFamily) - (relayed ? CHANNEL_DATA_OVERHEAD : 0);
    const probe = (size: number): Promise<boolean> => {
      if (this.closed || s.epoch !== epoch) return Promise.resolve(false);
      const lim = firstLimit();
      // Larger than the first leg's known limit: the kernel would fragment it, a false answer.
      if (lim > 0 && size + firstLegAdds > lim) return Promise.resolve(false);
      const id = randomBytes(12);
      const request = paddedBindingRequest(size, route.credentials, id);
      if (request === null) return Promise.resolve(false);
      const datagram = route.relay === null ? request : channelData(route.relay.channel, request);
      return new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => {
          cancel();
          resolve(false);
        }, this.timing.timeoutMs);
        const cancel = this.waiters.expect(id, () => {
          clearTimeout(timer);
          this.counters.answered++;
          resolve(true);
        });
        this.counters.sent++;
        this.hooks.send(datagram, first[0], first[1]);
      });
    };
    const lim = firstLimit();
    // Unknown limit: the base only.
    const max = relayed || lim <= 0 ? base : lim - firstLegAdds;
    let found = 0;
    try {
      found = await searchPathMtu(probe, { base, max, step: 4, tries: TRIES });
    } catch {
      found = 0;
    }
    if (this.closed || s.epoch !== epoch) return;
    if (found > 0) this.hooks.report(peer, found + firstLegAdds);
    this.schedule(peer, s, this.timing.reprobeMs);
  }
}
