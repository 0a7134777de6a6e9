/**
 * An in-memory network of nodes (engine + TypeScript data plane) on one fake clock, for the
 * protocol tests: no sockets, and time moves only when a test says so.
 */
import { randomBytes } from "node:crypto";
import type { CryptoBackend } from "../../src/crypto/backend.js";
import { getBackend } from "../../src/crypto/index.js";
import type { Delivery, PlanePeer } from "../../src/dataplane/data-plane.js";
import { PortablePlane } from "../../src/dataplane/portable.js";
import {
  type AddPeerOptions,
  type Clock,
  Engine,
  type EngineEvent,
  type EngineOptions,
  type KeypairObserver,
  type Output,
  type PeerHandle,
  type Source,
  type Transmit,
} from "../../src/noise/engine.js";

export class FakeClock implements Clock {
  t = 1_000_000;
  readonly wallBase = 1_700_000_000_000;
  now(): number {
    return this.t;
  }
  wallNow(): number {
    return this.wallBase + this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

export class Addr implements Source {
  get key(): string {
    return `${this.ip}:${this.port}`;
  }
  constructor(
    readonly name: string,
    readonly ip: string,
    readonly port = 51820,
  ) {}
  dstIP(): string {
    return this.ip;
  }
  dstToBytes(): Uint8Array {
    const b = new Uint8Array(6);
    this.ip.split(".").forEach((o, i) => (b[i] = Number(o)));
    b[4] = this.port >> 8;
    b[5] = this.port & 0xff;
    return b;
  }
}

/** A peer as the data plane sees it in these tests (no AllowedIPs, endpoints by address). */
interface TestPeer extends PlanePeer<Addr> {
  readonly handle: PeerHandle;
}

/**
 * What one call on a node produced, the control plane's and the data plane's output joined:
 * datagrams (handshakes and sealed transport data), opened packets, events and drops.
 */
export interface Step {
  transmit: Transmit<Addr>[];
  deliver: { peer: PeerHandle; packet: Uint8Array }[];
  authenticated: { peer: PeerHandle; src: Addr }[];
  events: EngineEvent[];
  dropped: { reason: string; peer?: PeerHandle }[];
}

function emptyStep(): Step {
  return { transmit: [], deliver: [], authenticated: [], events: [], dropped: [] };
}

/**
 * One device's protocol in memory: the engine (control plane) and the TypeScript data plane,
 * joined as a device joins them: keypairs installed as they change, transport messages to the
 * plane, the plane's events back into the engine.
 */
export class Node {
  readonly engine: Engine<Addr>;
  readonly plane: PortablePlane<TestPeer, Addr>;
  readonly addr: Addr;
  readonly publicKey: Uint8Array;
  /** Handles of this node's peers by the peer node's name. */
  readonly peers = new Map<string, PeerHandle>();
  readonly delivered: { from: string; packet: Uint8Array }[] = [];
  readonly events: EngineEvent[] = [];
  readonly dropped: Step["dropped"] = [];
  /** Every datagram this node sent, with the time. */
  readonly sent: { t: number; to: string; data: Uint8Array }[] = [];
  /** Told of every keypair change after the data plane (the engine has one observer: the node's). */
  onKeypairs: KeypairObserver | null = null;
  private readonly planePeers = new Map<PeerHandle, TestPeer>();
  /** The step that plane events (which come back during a call) add to. */
  private current: Step | null = null;

  constructor(
    readonly name: string,
    backend: CryptoBackend,
    clock: Clock,
    readonly privateKey: Uint8Array,
    ip: string,
    opts: Partial<EngineOptions> & { mtu?: number },
  ) {
    const { mtu, ...engineOpts } = opts;
    this.engine = new Engine<Addr>({ backend, clock, privateKey, ...engineOpts });
    this.addr = new Addr(name, ip);
    this.publicKey = backend.publicKey(privateKey);
    this.plane = new PortablePlane<TestPeer, Addr>(backend, {
      events: {
        activity: (p, a) => this.merge(this.engine.recordActivity(p.handle, a)),
        confirmed: (p, localIndex) => this.merge(this.engine.confirmKeypair(p.handle, localIndex)),
        handshakeNeeded: (p, _why, waiting) => this.merge(this.engine.queue(p.handle, waiting)),
        roamed: (p, src) => {
          p.endpoint = src;
          this.current?.authenticated.push({ peer: p.handle, src });
        },
      },
      // These tests have no AllowedIPs: every inner source belongs to its sender.
      sourceAllowed: () => true,
      allowedIps: () => [],
      rejectAfterMessages: this.engine.messageLimit,
      mtu: mtu ?? 0,
      now: () => clock.now(),
    });
    this.engine.observeKeypairs((handle, keypairs) => {
      if (this.engine.peer(handle.id) === handle) this.plane.setKeypairs(this.planePeer(handle), keypairs);
      this.onKeypairs?.(handle, keypairs);
    });
  }

  addPeer(publicKey: Uint8Array, opts: AddPeerOptions = {}): PeerHandle {
    const handle = this.engine.addPeer(publicKey, opts);
    this.planePeer(handle);
    return handle;
  }

  /** A datagram arrives: transport data to the data plane, the rest to the engine. */
  receive(data: Uint8Array, from: Addr): Step {
    return this.run(() => {
      if (data[0] !== 4) return this.engine.receive(data, from);
      const opened: Delivery<TestPeer>[] = [];
      this.plane.receive(data, from, opened);
      for (const d of opened) this.current!.deliver.push({ peer: d.peer.handle, packet: d.packet });
      return null;
    });
  }

  /** Packets from the TUN for a peer: sealed by the data plane, or queued for a handshake. */
  send(peer: PeerHandle, packets: Uint8Array[]): Step {
    return this.run(() => {
      const sealed: Uint8Array[] = [];
      this.plane.send(this.planePeer(peer), packets, sealed);
      for (const data of sealed) this.current!.transmit.push({ peer, data });
      return null;
    });
  }

  sendKeepalive(peer: PeerHandle): Step {
    return this.run(() => this.engine.sendKeepalive(peer));
  }

  initiateHandshake(peer: PeerHandle): Step {
    return this.run(() => this.engine.initiateHandshake(peer));
  }

  tick(): Step {
    return this.run(() => this.engine.tick());
  }

  /** The data plane's peer for a handle (peers a test added to the engine directly join here). */
  private planePeer(handle: PeerHandle): TestPeer {
    let p = this.planePeers.get(handle);
    if (p === undefined) {
      if (this.engine.peer(handle.id) !== handle) throw new Error("peer does not belong to this engine");
      p = { handle, nativeId: this.planePeers.size + 1, endpoint: null };
      this.planePeers.set(handle, p);
      this.plane.addPeer(p);
      this.plane.setKeypairs(p, this.engine.keypairsOf(handle));
    }
    return p;
  }

  /** Runs one call of the engine's (an external data plane's reports) and what it leads to. */
  control(f: (engine: Engine<Addr>) => Output<Addr>): Step {
    return this.run(() => f(this.engine));
  }

  private run(f: () => Output<Addr> | null): Step {
    const outer = this.current;
    const step = emptyStep();
    this.current = step;
    const before = this.plane.drops();
    try {
      const out = f();
      if (out !== null) this.merge(out);
      this.plane.flush();
    } finally {
      this.current = outer;
    }
    for (const [reason, n] of Object.entries(this.plane.drops())) {
      for (let i = before[reason] ?? 0; i < n; i++) step.dropped.push({ reason });
    }
    return step;
  }

  /** Adds an engine output to the current step; what it asks to seal goes through the data plane. */
  private merge(out: Output<Addr>): void {
    const step = this.current!;
    step.transmit.push(...out.transmit);
    step.authenticated.push(...out.authenticated);
    step.events.push(...out.events);
    step.dropped.push(...out.dropped);
    for (const { peer, packets } of out.seal) {
      const sealed: Uint8Array[] = [];
      this.plane.send(this.planePeer(peer), packets, sealed);
      for (const data of sealed) step.transmit.push({ peer, data });
    }
  }
}

export interface Wire {
  t: number;
  from: Node;
  to: Node;
  data: Uint8Array;
}

export class Net {
  readonly clock = new FakeClock();
  readonly nodes = new Map<string, Node>();
  /** Datagrams sent but not yet delivered. */
  inFlight: Wire[] = [];
  /** When false, datagrams are recorded in `sent` and then lost. */
  linkUp = true;
  /** Decides per datagram whether it is lost (after linkUp). */
  lose: (w: Wire) => boolean = () => false;
  private nextIp = 1;

  constructor(readonly backend: CryptoBackend = getBackend()) {}

  addNode(name: string, opts: Partial<EngineOptions> & { mtu?: number } = {}): Node {
    const node = new Node(name, this.backend, this.clock, this.backend.generatePrivateKey(), `10.0.0.${this.nextIp++}`, opts);
    this.nodes.set(name, node);
    return node;
  }

  /** Makes a and b peers of each other (optionally with a shared PSK). */
  connect(a: Node, b: Node, psk?: Uint8Array): void {
    a.peers.set(b.name, a.addPeer(b.publicKey, { presharedKey: psk ?? null }));
    b.peers.set(a.name, b.addPeer(a.publicKey, { presharedKey: psk ?? null }));
  }

  peerNode(of: Node, handle: PeerHandle): Node {
    for (const [name, h] of of.peers) if (h === handle) return this.nodes.get(name)!;
    throw new Error("unknown peer handle");
  }

  /** Files a node's step: deliveries and events recorded, datagrams put in flight. */
  collect(node: Node, out: Step): Step {
    for (const d of out.deliver) node.delivered.push({ from: this.peerNode(node, d.peer).name, packet: d.packet });
    node.events.push(...out.events);
    node.dropped.push(...out.dropped);
    for (const t of out.transmit) {
      const to = t.peer !== undefined ? this.peerNode(node, t.peer) : this.nodes.get(t.to.name)!;
      node.sent.push({ t: this.clock.t, to: to.name, data: t.data });
      const w = { t: this.clock.t, from: node, to, data: t.data };
      if (this.linkUp && !this.lose(w)) this.inFlight.push(w);
    }
    return out;
  }

  /** Delivers everything in flight, and what that produces, until the network is quiet. */
  flush(limit = 10_000): void {
    for (let i = 0; this.inFlight.length > 0; i++) {
      if (i > limit) throw new Error("network did not settle");
      const w = this.inFlight.shift()!;
      this.collect(w.to, w.to.receive(w.data, w.from.addr));
    }
  }

  send(from: Node, to: Node, packets: Uint8Array[]): Step {
    return this.collect(from, from.send(from.peers.get(to.name)!, packets));
  }

  tickAll(): void {
    for (const n of this.nodes.values()) this.collect(n, n.tick());
  }

  /** Runs every timer of every node in order until `until` (absolute), flushing after each. */
  runUntil(until: number): void {
    for (;;) {
      let next: number | undefined;
      for (const n of this.nodes.values()) {
        const d = n.engine.nextDeadline();
        if (d !== undefined && (next === undefined || d < next)) next = d;
      }
      if (next === undefined || next > until) break;
      if (next > this.clock.t) this.clock.t = next;
      this.tickAll();
      this.flush();
    }
    if (this.clock.t < until) this.clock.t = until;
  }

  runFor(ms: number): void {
    this.runUntil(this.clock.t + ms);
  }
}

/** A random IPv4 (or IPv6) packet of exactly `length` bytes with a consistent length field. */
export function ipPacket(length: number, version: 4 | 6 = 4): Uint8Array {
  const min = version === 4 ? 20 : 40;
  if (length < min) throw new RangeError("too short for an IP header");
  const p = new Uint8Array(randomBytes(length));
  if (version === 4) {
    p[0] = 0x45;
    p[2] = length >> 8;
    p[3] = length & 0xff;
  } else {
    p[0] = 0x60;
    p[4] = (length - 40) >> 8;
    p[5] = (length - 40) & 0xff;
  }
  return p;
}

export function transportsOf(node: Node, to?: string): { t: number; to: string; data: Uint8Array }[] {
  return node.sent.filter((s) => s.data[0] === 4 && (to === undefined || s.to === to));
}

export function initiationsOf(node: Node): { t: number; to: string; data: Uint8Array }[] {
  return node.sent.filter((s) => s.data[0] === 1);
}

export const eq = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(Buffer.from(b));
