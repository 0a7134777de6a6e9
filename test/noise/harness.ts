/**
 * An in-memory network of engines on one fake clock, for the protocol tests: no sockets, and
 * time moves only when a test says so.
 */
import { randomBytes } from "node:crypto";
import type { CryptoBackend } from "../../src/crypto/backend.js";
import { getBackend } from "../../src/crypto/index.js";
import { type Clock, Engine, type EngineEvent, type EngineOptions, type Output, type PeerHandle, type Source } from "../../src/noise/engine.js";

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

export interface Node {
  name: string;
  engine: Engine<Addr>;
  addr: Addr;
  privateKey: Uint8Array;
  publicKey: Uint8Array;
  /** Handles of this node's peers by the peer node's name. */
  peers: Map<string, PeerHandle>;
  delivered: { from: string; packet: Uint8Array }[];
  events: EngineEvent[];
  dropped: Output<Addr>["dropped"];
  /** Every datagram this node sent, with the time. */
  sent: { t: number; to: string; data: Uint8Array }[];
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

  addNode(name: string, opts: Partial<EngineOptions> = {}): Node {
    const privateKey = this.backend.generatePrivateKey();
    const engine = new Engine<Addr>({ backend: this.backend, clock: this.clock, privateKey, ...opts });
    const node: Node = {
      name,
      engine,
      addr: new Addr(name, `10.0.0.${this.nextIp++}`),
      privateKey,
      publicKey: this.backend.publicKey(privateKey),
      peers: new Map(),
      delivered: [],
      events: [],
      dropped: [],
      sent: [],
    };
    this.nodes.set(name, node);
    return node;
  }

  /** Makes a and b peers of each other (optionally with a shared PSK). */
  connect(a: Node, b: Node, psk?: Uint8Array): void {
    a.peers.set(b.name, a.engine.addPeer(b.publicKey, { presharedKey: psk ?? null }));
    b.peers.set(a.name, b.engine.addPeer(a.publicKey, { presharedKey: psk ?? null }));
  }

  peerNode(of: Node, handle: PeerHandle): Node {
    for (const [name, h] of of.peers) if (h === handle) return this.nodes.get(name)!;
    throw new Error("unknown peer handle");
  }

  /** Files an engine's output: deliveries and events recorded, datagrams put in flight. */
  collect(node: Node, out: Output<Addr>): Output<Addr> {
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
      this.collect(w.to, w.to.engine.receive(w.data, w.from.addr));
    }
  }

  send(from: Node, to: Node, packets: Uint8Array[]): Output<Addr> {
    return this.collect(from, from.engine.send(from.peers.get(to.name)!, packets));
  }

  tickAll(): void {
    for (const n of this.nodes.values()) this.collect(n, n.engine.tick());
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
