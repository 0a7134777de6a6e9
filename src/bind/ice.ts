/**
 * The ICE transport: WireGuard datagrams go straight to a peer's ICE connection, with no local UDP
 * hop. Peers are named by endpoints "ice:<base64 public key>"; an IceManager finds and keeps a
 * path to each (see src/ice/).
 *
 * `open(port)` starts the manager's agents and `close()` stops them (peers stay configured, so a
 * close and open, as the device does when the listen port changes, restarts ICE). The port is
 * not used: candidate sockets take ports from the ICE settings' port range.
 *
 * Where the device has a UDP Bind, ICE rides its socket (`rideSocket`): host and
 * server-reflexive candidates are the WireGuard port, and while a peer's selected pair is on
 * that socket its endpoint names the UDP endpoint that carries it (`carrier()`), so the data
 * plane sends to the peer directly; every change of pair is announced to `onCarrierChange`.
 *
 * Sending to a peer that has no path yet hands the datagram to its agent, which holds a few in a
 * small queue and sends them the moment a pair is selected (so the first handshake initiation is
 * not lost); which pair carries them, and when that changes, is the agent's business (see
 * src/ice/agent.ts and IceManager.onPathChange). Datagrams are not checked
 * here: the ICE library accepts non-STUN datagrams from any sender on a candidate socket, and
 * WireGuard authenticates every packet.
 */
import type { IcePath } from "../ice/agent.js";
import type { IceManager } from "../ice/manager.js";
import { keyToBase64, parseKey } from "../crypto/keys.js";
import type { Endpoint, OpenResult, Received } from "./bind.js";
import { BindClosedError } from "./errors.js";
import { EndpointParseError, formatAddrPort } from "./addr-port.js";
import type { ActivityObservingBind, PathMtuProbingBind, SocketRidingBind, SocketSharingBind } from "./capabilities.js";
import { IceEndpoint } from "./ice-endpoint.js";
import { ReceiveQueue } from "./receive-queue.js";

export interface IceBindOptions {
  /** Most datagrams per receive batch and per `send`. Default 128. */
  batchSize?: number;
  /** Datagrams held for the receiver before new ones are dropped. Default 1024. */
  queueCapacity?: number;
}

export interface IceBindStats {
  /** Datagrams handed to a peer's agent (sent over its path, or held until it has one). */
  sent: number;
  /** Datagrams dropped because the peer is not a configured peer or its agent is stopped. */
  sendDropped: number;
  /** Datagrams queued for the receiver. */
  received: number;
  /** Datagrams dropped because the receiver fell behind. */
  receiveDropped: number;
}

const PREFIX = "ice:";

export class IceBind implements SocketRidingBind, ActivityObservingBind, PathMtuProbingBind {
  readonly kind = "ice";
  private readonly batch: number;
  private readonly queueCapacity: number;
  private readonly endpoints = new Map<string, IceEndpoint>();
  private queue: ReceiveQueue<Received> | null = null;
  private unsubscribe: (() => void) | null = null;
  private markValue = 0;
  private readonly counters = { sent: 0, sendDropped: 0, received: 0, receiveDropped: 0 };
  private owner: SocketSharingBind | null = null;
  /** Peers whose selected pair is on the shared socket, with the endpoint of that socket. */
  private readonly carriers = new Map<string, Endpoint>();
  private readonly carrierListeners = new Set<(endpoint: Endpoint) => void>();

  constructor(
    /** The agents this Bind sends through. Peers are added and removed on the manager. */
    readonly manager: IceManager,
    opts: IceBindOptions = {},
  ) {
    this.batch = opts.batchSize ?? 128;
    this.queueCapacity = opts.queueCapacity ?? 1024;
    if (!Number.isInteger(this.batch) || this.batch < 1) throw new RangeError(`batchSize must be a positive integer, got ${this.batch}`);
    if (!Number.isInteger(this.queueCapacity) || this.queueCapacity < 1) {
      throw new RangeError(`queueCapacity must be a positive integer, got ${this.queueCapacity}`);
    }
    manager.onPathChange((peer, path) => this.pathChanged(peer, path));
  }

  /** Rides `owner`'s socket from the next ICE session on (null: sockets of its own). */
  rideSocket(owner: SocketSharingBind | null): void {
    if (this.owner === owner) return;
    this.owner?.setSourceMapper(null);
    this.owner = owner;
    this.manager.useSocket(owner);
    owner?.setSourceMapper((address, port) => this.sourceEndpoint(address, port));
  }

  sourceEndpoint(address: string, port: number): Endpoint | null {
    const peer = this.manager.peerAt(address, port);
    return peer === null ? null : this.endpointFor(peer);
  }

  /** The data plane carried datagrams for a peer of ours: its ICE agent checks that path's liveness. */
  noteActivity(endpoint: Endpoint, sent: boolean, received: boolean): void {
    if (endpoint.bind !== this || !(endpoint instanceof IceEndpoint)) return;
    this.manager.noteActivity(endpoint.peer, sent, received);
  }

  /** Path MTU probing of the paths on the shared socket (src/ice/pmtu-probe.ts). */
  probePathMtu(limit: (target: Endpoint) => number, report: (carrier: Endpoint, mtu: number) => void): void {
    this.manager.probePathMtu({
      limit: (family, address, port) => {
        try {
          return this.owner === null ? 0 : limit(this.owner.parseEndpoint(formatAddrPort(family, address, "", port)));
        } catch {
          return 0;
        }
      },
      report: (peer, mtu) => {
        const carrier = this.carriers.get(peer);
        if (carrier !== undefined) report(carrier, mtu);
      },
    });
  }

  onCarrierChange(listener: (endpoint: Endpoint) => void): () => void {
    this.carrierListeners.add(listener);
    return () => this.carrierListeners.delete(listener);
  }

  /** The hook every change of a peer's path goes through. */
  private pathChanged(peer: string, path: IcePath | null): void {
    const owner = this.owner;
    let carrier: Endpoint | null = null;
    try {
      if (owner !== null && path !== null && path.sharedRelay !== null) {
        // Relayed by the shared socket's allocation: ChannelData to the TURN server.
        const { server, channel } = path.sharedRelay;
        carrier = owner.channelEndpoint(server.address, server.port, channel);
      } else if (owner !== null && path !== null && path.shared) {
        const r = path.remote;
        carrier = owner.parseEndpoint(formatAddrPort(r.address.includes(":") ? 6 : 4, r.address, "", r.port));
      }
    } catch {
      carrier = null;
    }
    const had = this.carriers.get(peer);
    if (carrier === null && had === undefined) return;
    if (carrier !== null && had !== undefined && carrier.key === had.key) return;
    if (carrier === null) this.carriers.delete(peer);
    else this.carriers.set(peer, carrier);
    const ep = this.endpointFor(peer);
    for (const l of this.carrierListeners) l(ep);
  }

  batchSize(): number {
    return this.batch;
  }

  get isOpen(): boolean {
    return this.queue !== null;
  }

  /** The mark last given to {@link setMark}. The ICE library's sockets cannot carry it (see docs/ice.md). */
  get mark(): number {
    return this.markValue;
  }

  stats(): IceBindStats {
    const q = this.queue;
    return {
      ...this.counters,
      received: this.counters.received + (q?.accepted ?? 0),
      receiveDropped: this.counters.receiveDropped + (q?.dropped ?? 0),
    };
  }

  async open(port: number): Promise<OpenResult> {
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`port must be an integer from 0 to 65535, got ${port}`);
    if (this.queue !== null) throw new Error("IceBind is already open");
    const queue = new ReceiveQueue<Received>(this.queueCapacity, this.batch);
    this.queue = queue;
    this.unsubscribe = this.manager.onData((peer, data) => {
      queue.push({ data, endpoint: this.endpointFor(peer) });
    });
    this.manager.start();
    return { receivers: [() => queue.next()], port };
  }

  async close(): Promise<void> {
    const q = this.queue;
    if (q === null) return;
    this.queue = null;
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.counters.received += q.accepted;
    this.counters.receiveDropped += q.dropped;
    q.close();
    await this.manager.stop();
  }

  async setMark(mark: number): Promise<void> {
    if (!Number.isInteger(mark) || mark < 0 || mark > 0xffffffff) throw new RangeError(`mark must be an integer from 0 to 4294967295, got ${mark}`);
    this.markValue = mark;
  }

  /** Parses "ice:<base64 public key>"; throws {@link EndpointParseError} otherwise. */
  parseEndpoint(s: string): IceEndpoint {
    if (typeof s !== "string") throw new EndpointParseError(`endpoint must be a string, got ${typeof s}`);
    const t = s.trim();
    if (!t.toLowerCase().startsWith(PREFIX)) throw new EndpointParseError(`invalid ICE endpoint "${s}": expected "ice:<base64 public key>"`);
    let key: Uint8Array;
    try {
      key = parseKey(t.slice(PREFIX.length));
    } catch (e) {
      throw new EndpointParseError(`invalid ICE endpoint "${s}": ${(e as Error).message}`);
    }
    return this.endpointFor(keyToBase64(key));
  }

  /**
   * Hands each datagram to the peer's agent. Resolves at once: the ICE library queues the
   * datagrams on its socket. Rejects only for a closed Bind, a non-ICE endpoint or an
   * oversized batch; a datagram for an unknown or stopped peer is dropped and counted.
   */
  send(bufs: Uint8Array[], endpoint: Endpoint): Promise<void> {
    if (!(endpoint instanceof IceEndpoint)) {
      return Promise.reject(new TypeError(`IceBind can only send to an IceEndpoint, not to ${String(endpoint?.key)}`));
    }
    if (bufs.length > this.batch) return Promise.reject(new RangeError(`send: ${bufs.length} buffers exceed the batch size ${this.batch}`));
    if (this.queue === null) return Promise.reject(new BindClosedError(this.kind));
    const carrier = this.carriers.get(endpoint.peer);
    if (carrier !== undefined) {
      // The pair is on the shared socket: straight out of it, as the native plane does.
      this.counters.sent += bufs.length;
      this.manager.noteActivity(endpoint.peer, true, false);
      return carrier.bind.send(bufs, carrier);
    }
    for (const buf of bufs) {
      if (this.manager.send(endpoint.peer, buf)) this.counters.sent++;
      else this.counters.sendDropped++;
    }
    return Promise.resolve();
  }

  /** The one endpoint object of a peer (base64 key). */
  endpointFor(peer: string): IceEndpoint {
    let ep = this.endpoints.get(peer);
    if (ep === undefined) {
      const bytes = new Uint8Array(Buffer.from(peer, "base64"));
      ep = new IceEndpoint(
        this,
        bytes,
        peer,
        () => this.manager.selectedRemote(peer),
        () => this.carriers.get(peer) ?? null,
      );
      this.endpoints.set(peer, ep);
    }
    return ep;
  }
}
