/**
 * A TURN relay on the interface's shared socket (UDP TURN only): one allocation per socket and
 * server, used by every peer's ICE session, since an allocation belongs to the client's address
 * and port and the socket has just one.
 *
 * 1. The ICE library's TurnProtocol makes the allocation through a transport on the shared
 *    socket and keeps it (refresh, permissions, channel bindings).
 * 2. Each session gets a facade of it that the library's StunOverTurnProtocol drives as if it
 *    were a TurnProtocol of its own; what the session sends to a peer address binds a channel
 *    and marks that address as the session's.
 * 3. What the relay receives from a peer is dispatched: STUN requests by local ufrag, responses
 *    through the shared transaction table, anything else (WireGuard) by the peer's address.
 *
 * The channel bound to a peer address is what a data plane needs to send ChannelData itself.
 */
import { classes, Message, methods, StunOverTurnProtocol, StunProtocol, TurnProtocol } from "werift-ice";
import { isStunMessage, stunClass, stunUsername } from "../stun/classify.js";
import type { ProbeWaiters } from "./pmtu-probe.js";

type Address = readonly [string, number];

/** The library's Event class, taken from an instance: its module is not part of the public API. */
interface LibraryEvent<T extends unknown[]> {
  execute(...args: T): void;
  subscribe(fn: (...args: T) => void): { unSubscribe(): void };
}
const EventClass = new StunProtocol().onDataReceived.constructor as new () => LibraryEvent<[Buffer, Address]>;

/** Allocation lifetime asked for, in seconds (the library refreshes before it ends). */
const ALLOCATION_LIFETIME_S = 600;
/** How long a Refresh (to release or to check the allocation) may take. */
const REFRESH_TIMEOUT_MS = 2000;

/** The library's TurnProtocol request method, typed here (absent from its public types). */
interface TurnRequests {
  requestWithRetry(request: Message, addr: Address): Promise<unknown>;
}

/** The part of a transport the TURN client needs (the shared socket's transport to the server). */
export interface ServerTransport {
  readonly type: "udp";
  closed: boolean;
  onData: (data: Buffer, addr: Address) => void;
  send: (data: Buffer, addr?: Address) => Promise<void>;
  close: () => Promise<void>;
}

/** One session's view of the shared allocation, shaped as the library's TurnProtocol. */
export class RelayFacade {
  readonly onData = new EventClass();
  closed = false;

  constructor(
    readonly relay: SharedRelay,
    readonly ufrag: string,
  ) {}

  get transactions(): TurnProtocol["transactions"] {
    return this.relay.turn.transactions;
  }

  get relayedAddress(): Address {
    return this.relay.turn.relayedAddress;
  }

  get mappedAddress(): Address {
    return this.relay.turn.mappedAddress;
  }

  async sendData(data: Buffer, addr: Address): Promise<void> {
    if (this.closed) return;
    this.relay.claim(addr, this);
    await this.relay.bindChannel(addr);
    await this.relay.turn.sendData(data, addr);
  }

  /** The allocation stays: other sessions use it. */
  async close(): Promise<void> {
    this.closed = true;
    this.relay.detach(this);
  }
}

export class SharedRelay {
  readonly turn: TurnProtocol;
  /** Resolves once the allocation is made; rejects when the server refused or did not answer. */
  readonly ready: Promise<void>;
  private readonly sessions = new Map<string, RelayFacade>();
  private readonly byPeer = new Map<string, RelayFacade>();
  private readonly channels = new Map<string, number>();
  private unsubscribe: () => void = () => undefined;
  private closedFlag = false;
  /** The server confirmed the release on close. */
  released = false;

  constructor(
    /** The server's IP address and port, as datagrams from it show. */
    readonly server: { address: string; port: number },
    username: string,
    password: string,
    transport: ServerTransport,
    /** Answers to path MTU probes, taken before dispatch. */
    private readonly probes: ProbeWaiters | null = null,
  ) {
    this.turn = new TurnProtocol([server.address, server.port], username, password, ALLOCATION_LIFETIME_S, transport as unknown as TurnProtocol["transport"]);
    this.ready = this.turn.connectionMade().then(() => {
      this.unsubscribe = this.turn.onData.subscribe((data, addr) => this.dispatch(data, addr)).unSubscribe;
    });
  }

  /** A protocol for one session (by its local ufrag), to offer as its relay candidate's. */
  protocolFor(ufrag: string): StunOverTurnProtocol {
    const facade = new RelayFacade(this, ufrag);
    this.sessions.set(ufrag, facade);
    return new StunOverTurnProtocol(facade as unknown as TurnProtocol);
  }

  /** The channel bound to a peer address, or null (not bound, or bound only with Send indications). */
  channelFor(address: string, port: number): number | null {
    return this.channels.get(peerKey([address, port])) ?? null;
  }

  /** @internal a session sends to `addr`: what comes from there is the session's. */
  claim(addr: Address, facade: RelayFacade): void {
    this.byPeer.set(peerKey(addr), facade);
  }

  /** @internal binds (or refreshes) a channel before data goes to `addr`; Send indications otherwise. */
  async bindChannel(addr: Address): Promise<void> {
    try {
      const ch = await this.turn.getChannel(addr);
      this.channels.set(peerKey(addr), ch.number);
    } catch {
      this.channels.delete(peerKey(addr));
    }
  }

  /** @internal */
  detach(facade: RelayFacade): void {
    if (this.sessions.get(facade.ufrag) === facade) this.sessions.delete(facade.ufrag);
    for (const [k, f] of this.byPeer) if (f === facade) this.byPeer.delete(k);
  }

  /**
   * Released on the server (Refresh with lifetime 0) rather than left to expire, then closed.
   * Sessions still attached go quiet.
   */
  async close(): Promise<void> {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.unsubscribe();
    for (const f of this.sessions.values()) f.closed = true;
    this.sessions.clear();
    this.byPeer.clear();
    if (await this.refresh(0)) this.released = true;
    await this.turn.close().catch(() => undefined);
  }

  /** The allocation is still this socket's (after a network change): a Refresh it answers. */
  stillOurs(): Promise<boolean> {
    return this.closedFlag ? Promise.resolve(false) : this.refresh(ALLOCATION_LIFETIME_S);
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  private async refresh(lifetime: number): Promise<boolean> {
    const request = new Message(methods.REFRESH, classes.REQUEST);
    request.setAttribute("LIFETIME", lifetime);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), REFRESH_TIMEOUT_MS)));
    const answer = (this.turn as unknown as TurnRequests).requestWithRetry(request, [this.server.address, this.server.port]).then(
      () => true,
      () => false,
    );
    const ok = await Promise.race([answer, deadline]);
    clearTimeout(timer);
    return ok;
  }

  private dispatch(data: Buffer, addr: Address): void {
    let target: RelayFacade | undefined;
    if (this.probes?.claim(data) === true) return;
    if (isStunMessage(data)) {
      const cls = stunClass(data);
      if (cls === "request" || cls === "indication") {
        const username = stunUsername(data);
        target = username === null ? undefined : this.sessions.get(username.split(":")[0]!);
        if (target !== undefined && cls === "request") this.claim(addr, target);
      } else {
        // Transactions are shared: whichever session hands it on, the table finds its owner.
        target = this.byPeer.get(peerKey(addr)) ?? this.sessions.values().next().value;
      }
    } else {
      target = this.byPeer.get(peerKey(addr));
    }
    if (target !== undefined && !target.closed) target.onData.execute(data, addr);
  }
}

function peerKey(addr: Address): string {
  return `${addr[0]}|${addr[1]}`;
}
