/**
 * The TypeScript data plane: seals and opens transport messages on the JavaScript thread.
 * It runs alone on the portable path, and inside the native plane for what reaches JavaScript
 * there (packets queued before a session, keepalives, peers on Binds the native side cannot
 * send on, such as TCP).
 *
 * 1. send: the peer's current keypair, if it may still seal (counter below the limit, younger
 *    than REJECT_AFTER_TIME), takes a counter per packet and seals it (transport.ts); what
 *    cannot be sealed goes back to the control plane as "handshake needed".
 * 2. receive: the receiver index names a keypair installed here; open (expiry, AEAD, replay
 *    window, inner length), roam, confirm a `next` keypair on its first packet, then the
 *    inner source must belong to the same peer (cryptokey routing).
 * 3. flush: the activity of the burst goes to the control plane, once per peer.
 */
import type { Bind, Endpoint } from "../bind/bind.js";
import type { CryptoBackend } from "../crypto/backend.js";
import { REJECT_AFTER_TIME } from "../noise/constants.js";
import type { DataPathActivity, SessionKeypairs } from "../noise/engine.js";
import type { Keypair } from "../noise/keypair.js";
import type { NativeDataPathStats } from "../native/datapath.js";
import type { DataPlane, DataPlaneOptions, Delivery, PlanePeer, SourceKey } from "./data-plane.js";
import { openTransport, parseTransport, sealTransport } from "./transport.js";

interface Installed<P> {
  peer: P;
  keypair: Keypair;
}

interface Burst {
  txBytes: number;
  rxBytes: number;
  sent: boolean;
  dataSent: boolean;
  received: boolean;
  dataReceived: boolean;
}

const NO_KEYPAIRS: SessionKeypairs = { current: null, previous: null, next: null };

export class PortablePlane<P extends PlanePeer<E>, E extends SourceKey = Endpoint> implements DataPlane<P, E> {
  readonly kind: "native" | "portable" = "portable";
  readonly description = "TypeScript";
  private readonly byIndex = new Map<number, Installed<P>>();
  private readonly slots = new Map<P, SessionKeypairs>();
  private readonly bursts = new Map<P, Burst>();
  private readonly dropped = new Map<string, number>();
  private readonly nonce = new Uint8Array(12);
  private mtu: number;
  private closed = false;

  constructor(
    private readonly backend: CryptoBackend,
    private readonly opts: DataPlaneOptions<P, E>,
  ) {
    this.mtu = opts.mtu;
  }

  addPeer(peer: P): void {
    if (!this.slots.has(peer)) this.slots.set(peer, NO_KEYPAIRS);
  }

  removePeer(peer: P): void {
    this.setKeypairs(peer, NO_KEYPAIRS);
    this.slots.delete(peer);
    this.bursts.delete(peer);
  }

  setKeypairs(peer: P, keypairs: SessionKeypairs): void {
    if (this.closed) return;
    const was = this.slots.get(peer);
    if (was !== undefined) {
      for (const k of [was.current, was.previous, was.next]) {
        if (k !== null && this.byIndex.get(k.localIndex)?.keypair === k) this.byIndex.delete(k.localIndex);
      }
    }
    const now = { current: keypairs.current, previous: keypairs.previous, next: keypairs.next };
    this.slots.set(peer, now);
    for (const k of [now.current, now.previous, now.next]) if (k !== null) this.byIndex.set(k.localIndex, { peer, keypair: k });
  }

  setEndpoint(): void {
    // Reads the peer's endpoint when it sends; nothing to copy.
  }

  routesChanged(): void {
    // Asks the device's table on every packet; nothing to copy.
  }

  setMtu(mtu: number): void {
    this.mtu = mtu;
  }

  rebind(_binds: readonly Bind[]): void {
    // Sends through the peer's endpoint, whatever socket it is on.
  }

  send(peer: P, packets: Uint8Array[], out: Uint8Array[]): void {
    if (packets.length === 0) return;
    const k = this.slots.get(peer)?.current ?? null;
    const now = this.opts.now();
    const limit = this.opts.rejectAfterMessages;
    if (k === null || now - k.created >= REJECT_AFTER_TIME || k.sendCounter >= limit) {
      const why = k === null ? "no-keypair" : k.sendCounter >= limit ? "keypair-exhausted" : "keypair-expired";
      this.opts.events.handshakeNeeded(peer, why, packets);
      return;
    }
    let bytes = 0;
    let data = false;
    let i = 0;
    for (; i < packets.length; i++) {
      const counter = k.counter.take();
      if (counter >= limit) break;
      const packet = packets[i]!;
      const datagram = sealTransport(this.backend, k, counter, packet, this.mtu, this.nonce);
      out.push(datagram);
      bytes += datagram.length;
      if (packet.length > 0) data = true;
    }
    if (i > 0) {
      const b = this.burst(peer);
      b.txBytes += bytes;
      b.sent = true;
      b.dataSent ||= data;
    }
    // Exhausted mid-batch: the rest waits for the new session.
    if (i < packets.length) this.opts.events.handshakeNeeded(peer, "keypair-exhausted", packets.slice(i));
  }

  receive(datagram: Uint8Array, src: E, out: Delivery<P>[]): void {
    const msg = parseTransport(datagram);
    if (msg === null) return this.drop("malformed");
    const entry = this.byIndex.get(msg.receiver);
    if (entry === undefined) return this.drop("unknown-index");
    const { peer, keypair } = entry;
    const opened = openTransport(this.backend, keypair, msg, this.opts.now(), this.opts.rejectAfterMessages, this.nonce);
    if (typeof opened === "string" && opened !== "bad-inner-packet") return this.drop(opened);
    // Authentic from here on: roam, confirm, count.
    if (peer.endpoint?.key !== src.key) this.opts.events.roamed(peer, src);
    if (this.slots.get(peer)?.next === keypair) this.opts.events.confirmed(peer, keypair.localIndex);
    const b = this.burst(peer);
    b.rxBytes += datagram.length;
    b.received = true;
    if (typeof opened !== "string" && opened.length === 0) return; // keepalive
    b.dataReceived = true;
    if (typeof opened === "string") return this.drop(opened);
    // Cryptokey routing, inbound: the inner source must be one of the sender's AllowedIPs.
    if (!this.opts.sourceAllowed(peer, opened)) return this.drop("source-not-allowed");
    out.push({ peer, packet: opened });
  }

  flush(): void {
    if (this.bursts.size === 0) return;
    const bursts = [...this.bursts];
    this.bursts.clear();
    for (const [peer, b] of bursts) {
      if (!this.slots.has(peer)) continue;
      const activity: DataPathActivity = {
        txBytes: b.txBytes,
        rxBytes: b.rxBytes,
        sentAgoMs: b.sent ? 0 : undefined,
        dataSentAgoMs: b.dataSent ? 0 : undefined,
        receivedAgoMs: b.received ? 0 : undefined,
        dataReceivedAgoMs: b.dataReceived ? 0 : undefined,
      };
      this.opts.events.activity(peer, activity);
    }
  }

  report(): void {
    this.flush();
  }

  carries(): boolean {
    return false;
  }

  drops(): Record<string, number> {
    return Object.fromEntries(this.dropped);
  }

  stats(): NativeDataPathStats | null {
    return null;
  }

  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    this.byIndex.clear();
    this.slots.clear();
  }

  private burst(peer: P): Burst {
    let b = this.bursts.get(peer);
    if (b === undefined) {
      b = { txBytes: 0, rxBytes: 0, sent: false, dataSent: false, received: false, dataReceived: false };
      this.bursts.set(peer, b);
    }
    return b;
  }

  private drop(reason: string): void {
    this.dropped.set(reason, (this.dropped.get(reason) ?? 0) + 1);
  }
}
