/**
 * An in-process signaling channel pair for ICE tests: delivers messages between keys in order,
 * asynchronously, and lets a test drop or inspect them. Messages are copied through JSON, as a
 * real transport would.
 */
import type { SignalingChannel, SignalingMessage } from "../../src/signaling/types.js";

type Listener = (from: Uint8Array, msg: SignalingMessage) => void;

const b64 = (k: Uint8Array): string => Buffer.from(k).toString("base64");

export interface HubRecord {
  from: string;
  to: string;
  msg: SignalingMessage;
  delivered: boolean;
}

export class MemoryHub {
  private readonly nodes = new Map<string, MemoryChannel>();
  /** Return false to drop a message (the sender is not told, as with a lossy service). */
  filter: (from: string, to: string, msg: SignalingMessage) => boolean = () => true;
  readonly log: HubRecord[] = [];

  channel(self: Uint8Array): MemoryChannel {
    const ch = new MemoryChannel(this, Uint8Array.from(self));
    this.nodes.set(b64(self), ch);
    return ch;
  }

  /** @internal */
  route(from: Uint8Array, to: Uint8Array, msg: SignalingMessage): void {
    const f = b64(from);
    const t = b64(to);
    const copy = JSON.parse(JSON.stringify(msg)) as SignalingMessage;
    const node = this.nodes.get(t);
    const delivered = node !== undefined && node.online && !node.isClosed && this.filter(f, t, copy);
    this.log.push({ from: f, to: t, msg: copy, delivered });
    if (delivered) setImmediate(() => node.deliver(from, copy));
  }
}

export class MemoryChannel implements SignalingChannel {
  private readonly listeners: Listener[] = [];
  private peers = new Set<string>();
  /** While false, messages to this channel are lost (the peer is offline). */
  online = true;
  isClosed = false;
  /** Messages from keys that are not peers, dropped as the sealed channel would. */
  rejected = 0;

  constructor(
    private readonly hub: MemoryHub,
    readonly self: Uint8Array,
  ) {}

  async send(to: Uint8Array, msg: SignalingMessage): Promise<void> {
    if (this.isClosed) throw new Error("channel closed");
    if (!this.peers.has(b64(to))) throw new Error(`not a configured peer: ${b64(to)}`);
    this.hub.route(this.self, to, msg);
  }

  on(event: "message", listener: Listener): this;
  on(event: "connected", listener: () => void): this;
  on(event: "message" | "connected", listener: Listener | (() => void)): this {
    // Always connected: a "connected" listener never runs.
    if (event === "message") this.listeners.push(listener as Listener);
    return this;
  }

  setPeers(publicKeys: Uint8Array[]): void {
    this.peers = new Set(publicKeys.map(b64));
  }

  async close(): Promise<void> {
    this.isClosed = true;
  }

  /** @internal */
  deliver(from: Uint8Array, msg: SignalingMessage): void {
    if (this.isClosed) return;
    if (!this.peers.has(b64(from))) {
      this.rejected++;
      return;
    }
    for (const l of this.listeners) l(Uint8Array.from(from), msg);
  }
}
