/**
 * ICE on the interface's own UDP socket: every peer's agent sends and receives its STUN through
 * one PacketSocket (the one WireGuard uses), so host and server-reflexive candidates are that
 * socket's port, as in Tailscale's magicsock and NetBird's shared socket.
 *
 * 1. Each session registers its local ufrag; each of its library protocols gets a
 *    {@link SharedTransport} (the library's UdpTransport shape) instead of a socket of its own.
 * 2. Outgoing STUN requests are remembered by transaction ID, so their responses find the
 *    transport that sent them.
 * 3. Incoming requests are routed by the local ufrag, the first half of their USERNAME.
 * 4. The addresses that send us checks for a session are remembered, so the WireGuard side can
 *    tell that a datagram from such an address belongs to that session's peer ({@link peerAt}).
 *
 * 5. TURN over UDP is allocated on this socket too, once per server, and shared by every session
 *    (shared-relay.ts); what its server sends comes to that relay, not by ufrag. The lanes of an
 *    ICE generation share a ufrag, and only the direct lane registers it here (generation.ts).
 *
 * TURN over TCP/TLS keeps the library's own client and connection (see session.ts).
 */
import { lookup } from "node:dns/promises";
import type { AddressInfo } from "node:net";
import { isStunMessage, stunClass, stunTransactionId, stunUsername } from "../stun/classify.js";
import type { PacketSocket } from "../stun/packet-socket.js";
import { ProbeWaiters } from "./pmtu-probe.js";
import { SharedRelay } from "./shared-relay.js";
import type { IceServer } from "./servers.js";

type Address = readonly [string, number];

/** Transactions are forgotten after this long (the library gives up well before). */
const TRANSACTION_TTL_MS = 60_000;
const SWEEP_INTERVAL_MS = 10_000;

export interface SharedSocketStats {
  /** STUN datagrams routed to a session. */
  routed: number;
  /** STUN datagrams no session claimed (unknown ufrag or transaction, or a closed session). */
  unclaimed: number;
  /** ChannelData datagrams from an address that is not a TURN server of ours. */
  channelData: number;
}

/** One session's registration: its peer, ufrag and transports. */
export class SharedSession {
  readonly transports: SharedTransport[] = [];
  closed = false;
  constructor(
    readonly router: SharedSocketRouter,
    /** Who the session talks to (the peer's key), for {@link SharedSocketRouter.peerAt}. */
    readonly peer: string,
    readonly ufrag: string,
  ) {}

  /** A transport for one local host address of the session. */
  transport(localIp: string, family: 4 | 6): SharedTransport {
    const t = new SharedTransport(this, localIp, family);
    this.transports.push(t);
    return t;
  }

  /** Ends the session's routing; its transports stop sending and receiving. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.transports) t.closed = true;
    this.router.unregister(this);
  }
}

/** What the ICE library's StunProtocol expects of its transport, on the shared socket. */
export class SharedTransport {
  readonly type = "udp";
  /** Read by the library to pick the DNS family of a STUN server name. */
  readonly socketType: "udp4" | "udp6";
  closed = false;
  onData: (data: Buffer, addr: Address) => void = () => undefined;

  constructor(
    readonly session: SharedSession,
    readonly localIp: string,
    readonly family: 4 | 6,
  ) {
    this.socketType = family === 4 ? "udp4" : "udp6";
  }

  get address(): AddressInfo {
    return { address: this.localIp, port: this.session.router.socket.localPort ?? 0, family: this.family === 4 ? "IPv4" : "IPv6" };
  }

  get port(): number {
    return this.session.router.socket.localPort ?? 0;
  }

  send = async (data: Buffer, addr?: Address): Promise<void> => {
    if (this.closed || addr === undefined) return;
    this.session.router.send(this, data, addr);
  };

  close = async (): Promise<void> => {
    this.closed = true;
  };
}

interface Pending {
  transport: SharedTransport;
  at: number;
  /** A connectivity check (it carries USERNAME), not a query to a STUN server. */
  check: boolean;
}

export class SharedSocketRouter {
  private readonly sessions = new Map<string, SharedSession>();
  private readonly transactions = new Map<string, Pending>();
  private readonly sources = new Map<string, SharedSession>();
  /** TURN servers' transports by their address: what they send that no transaction claims. */
  private readonly servers = new Map<string, SharedTransport>();
  private readonly relays = new Map<string, Promise<SharedRelay>>();
  /** Relays made before a network change: checked before they are handed out again. */
  private readonly stale = new Set<string>();
  private lastSweep = Date.now();
  private readonly unsubscribe: () => void;
  private readonly counters: SharedSocketStats = { routed: 0, unclaimed: 0, channelData: 0 };
  /** Answers to path MTU probes (pmtu-probe.ts), taken before any routing. */
  readonly probes = new ProbeWaiters();

  constructor(readonly socket: PacketSocket) {
    this.unsubscribe = socket.onPacket((data, address, port) => this.receive(data, address, port));
  }

  /** Registers a session by its local ufrag (a ufrag already taken is an error). */
  register(peer: string, ufrag: string): SharedSession {
    if (this.sessions.has(ufrag)) throw new Error(`ICE ufrag ${ufrag} is already in use on the shared socket`);
    const s = new SharedSession(this, peer, ufrag);
    this.sessions.set(ufrag, s);
    return s;
  }

  unregister(s: SharedSession): void {
    if (this.sessions.get(s.ufrag) === s) this.sessions.delete(s.ufrag);
    for (const [k, v] of this.transactions) if (v.transport.session === s) this.transactions.delete(k);
    for (const [k, v] of this.sources) if (v === s) this.sources.delete(k);
  }

  /** The peer whose live session receives checks from this address, or null. */
  peerAt(address: string, port: number): string | null {
    const s = this.sources.get(sourceKey(address, port));
    return s === undefined || s.closed ? null : s.peer;
  }

  /** Which families the socket can reach now. */
  families(): { ipv4: boolean; ipv6: boolean } {
    return this.socket.reachableFamilies();
  }

  stats(): SharedSocketStats {
    return { ...this.counters };
  }

  /**
   * The relay on this socket for a TURN server (UDP), allocated on first use and shared by every
   * session; a failed allocation is tried again on the next call.
   */
  relay(turn: IceServer): Promise<SharedRelay> {
    const k = `${turn.host}|${turn.port}|${turn.username ?? ""}`;
    let r = this.relays.get(k);
    if (r !== undefined && this.stale.delete(k)) {
      // A server keeps one allocation per client address and port, so a second one from this
      // socket is refused while the first lives: keep it if the server still knows it as ours,
      // else release what is left of it and allocate from the address the socket has now.
      r = r.then(async (relay) => {
        if (await relay.stillOurs()) return relay;
        await this.forget(relay);
        return this.allocate(turn);
      });
      this.relays.set(k, r);
      r.catch(() => {
        if (this.relays.get(k) === r) this.relays.delete(k);
      });
    }
    if (r === undefined) {
      r = this.allocate(turn);
      this.relays.set(k, r);
      r.catch(() => {
        if (this.relays.get(k) === r) this.relays.delete(k);
      });
    }
    return r;
  }

  /**
   * This machine's addresses changed: each relay is checked with its server the next time a
   * session asks for it (see {@link relay}); lanes already on it carry on meanwhile.
   */
  recheckRelays(): void {
    for (const k of this.relays.keys()) this.stale.add(k);
  }

  /** Releases every relay (a Refresh with lifetime 0 each, bounded); sessions ask anew later. */
  async releaseRelays(): Promise<void> {
    const releases = [...this.relays.values()].map((r) => r.then((relay) => this.forget(relay), () => undefined));
    this.relays.clear();
    this.stale.clear();
    await Promise.all(releases);
  }

  /** Stops listening on the socket; sessions still registered go quiet, relays are released. */
  close(): void {
    for (const s of [...this.sessions.values()]) s.close();
    // The relays' releases (a Refresh each, bounded) go out and are answered on this socket
    // before the router stops listening.
    const releases = [...this.relays.values()].map((r) => r.then((relay) => relay.close(), () => undefined));
    this.relays.clear();
    const servers = [...this.servers.values()];
    this.servers.clear();
    void Promise.all(releases).finally(() => {
      this.unsubscribe();
      for (const t of servers) t.closed = true;
    });
  }

  private async forget(relay: SharedRelay): Promise<void> {
    const key = sourceKey(relay.server.address, relay.server.port);
    await relay.close();
    const t = this.servers.get(key);
    if (t !== undefined) {
      t.closed = true;
      this.servers.delete(key);
    }
  }

  private async allocate(turn: IceServer): Promise<SharedRelay> {
    const { address } = await lookup(turn.host, { family: 4 });
    const key = sourceKey(address, turn.port);
    const owner = new SharedSession(this, "", "");
    const transport = owner.transport("0.0.0.0", 4);
    this.servers.set(key, transport);
    const relay = new SharedRelay({ address, port: turn.port }, turn.username ?? "", turn.credential ?? "", transport, this.probes);
    try {
      await relay.ready;
    } catch (e) {
      if (this.servers.get(key) === transport) this.servers.delete(key);
      transport.closed = true;
      throw e;
    }
    return relay;
  }

  send(from: SharedTransport, data: Uint8Array, addr: Address): void {
    if (isStunMessage(data) && stunClass(data) === "request") {
      const now = Date.now();
      this.transactions.set(stunTransactionId(data), { transport: from, at: now, check: stunUsername(data) !== null });
      if (now - this.lastSweep > SWEEP_INTERVAL_MS) this.sweep(now);
    }
    this.socket.sendPacket(data, addr[0], addr[1]);
  }

  private receive(data: Uint8Array, address: string, port: number): void {
    const server = this.servers.get(sourceKey(address, port));
    if (!isStunMessage(data)) {
      // ChannelData: from a TURN server of ours, its relay unwraps it.
      if (server === undefined || server.closed) {
        this.counters.channelData++;
        return;
      }
      this.counters.routed++;
      server.onData(Buffer.from(data.buffer, data.byteOffset, data.byteLength), [address, port]);
      return;
    }
    if (this.probes.claim(data)) return;
    const cls = stunClass(data);
    let target: SharedTransport | undefined;
    if (server !== undefined && cls !== "success" && cls !== "error") {
      // Data indications and the like from a TURN server: its relay's.
      target = server.closed ? undefined : server;
    } else if (cls === "request" || cls === "indication") {
      const username = stunUsername(data);
      const s = username === null ? undefined : this.sessions.get(username.split(":")[0]!);
      if (s !== undefined) {
        const family = address.includes(":") ? 6 : 4;
        target = s.transports.find((t) => t.family === family && !t.closed);
        if (target !== undefined && cls === "request") this.sources.set(sourceKey(address, port), s);
      }
    } else {
      const id = stunTransactionId(data);
      const p = this.transactions.get(id);
      if (p !== undefined && !p.transport.closed) {
        target = p.transport;
        if (p.check && cls === "success") this.sources.set(sourceKey(address, port), p.transport.session);
      }
    }
    if (target === undefined) {
      this.counters.unclaimed++;
      return;
    }
    this.counters.routed++;
    target.onData(Buffer.from(data.buffer, data.byteOffset, data.byteLength), [address, port]);
  }

  private sweep(now: number): void {
    this.lastSweep = now;
    for (const [k, v] of this.transactions) if (now - v.at > TRANSACTION_TTL_MS) this.transactions.delete(k);
  }
}

function sourceKey(address: string, port: number): string {
  return `${address}|${port}`;
}
