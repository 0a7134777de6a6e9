/**
 * A device's sessions: the receiver-index table (handshakes in progress and keypairs) and each
 * peer's keypair slots as the control plane changes them — installed after a handshake,
 * confirmed, retired, cleared — with the one observer through which a data plane installs them.
 */
import type { RandomBytes } from "./cookie.js";
import { IndexTable } from "./indextable.js";
import type { Keypair } from "./keypair.js";
import type { Peer, PeerHandle } from "./peer.js";

/** What a receiver index names: a peer's handshake in progress (keypair null) or one of its keypairs. */
export interface IndexEntry {
  peer: Peer;
  keypair: Keypair | null;
}

/** A peer's session keypairs, as a data plane installs them. */
export interface SessionKeypairs {
  /** The keypair to send with. */
  readonly current: Keypair | null;
  /** The one it replaced, kept to decrypt packets still in flight. */
  readonly previous: Keypair | null;
  /** The responder's newest keypair, unconfirmed until a packet arrives under it. */
  readonly next: Keypair | null;
}

/** Told whenever a peer's keypairs change: installed, promoted, retired (and wiped) or cleared. */
export type KeypairObserver = (peer: PeerHandle, keypairs: SessionKeypairs) => void;

export class Sessions {
  readonly index: IndexTable<IndexEntry>;
  /** The one observer (a data plane's installer), or null. */
  observer: KeypairObserver | null = null;

  constructor(randomBytes: RandomBytes) {
    this.index = new IndexTable<IndexEntry>(randomBytes);
  }

  slots(peer: Peer): SessionKeypairs {
    const k = peer.keypairs;
    return { current: k.current, previous: k.previous, next: k.next };
  }

  /** A fresh receiver index for a handshake in progress. */
  allocate(peer: Peer): number {
    return this.index.allocate({ peer, keypair: null });
  }

  release(localIndex: number): void {
    this.index.delete(localIndex);
  }

  /** A freshly derived keypair takes its slot (its index now names it); those that fall out are retired. */
  install(peer: Peer, keypair: Keypair): void {
    this.index.replace(keypair.localIndex, { peer, keypair });
    for (const old of peer.keypairs.install(keypair)) this.retire(old);
    this.changed(peer);
  }

  /**
   * The first packet under the keypair with `localIndex` arrived. True when that was the
   * unconfirmed `next`, which is current now; false for stale news (the observer is told the
   * slots again, so a data plane resynchronises).
   */
  confirm(peer: Peer, localIndex: number): boolean {
    const next = peer.keypairs.next;
    if (next === null || next.localIndex !== localIndex) {
      this.changed(peer);
      return false;
    }
    const { dropped } = peer.keypairs.received(next);
    if (dropped !== null) this.retire(dropped);
    this.changed(peer);
    return true;
  }

  /** Retires every keypair of a peer. */
  clear(peer: Peer): void {
    const had = peer.keypairs.clear();
    for (const k of had) this.retire(k);
    if (had.length > 0) this.changed(peer);
  }

  /** No more sending with the peer's sessions (a new identity): their counters go to the limit. */
  expireForSending(peer: Peer, limit: number): void {
    for (const k of [peer.keypairs.current, peer.keypairs.next]) {
      if (k !== null) k.sendCounter = limit;
    }
  }

  private changed(peer: Peer): void {
    this.observer?.(peer, this.slots(peer));
  }

  private retire(keypair: Keypair): void {
    this.index.delete(keypair.localIndex);
    keypair.wipe();
  }
}
