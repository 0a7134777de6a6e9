/**
 * The engine's side of an external data path (the native one), on the in-memory network of
 * the protocol tests: the keypair observer, a substituted send counter, confirmation of the
 * responder's keypair by the data path, and activity reports driving the timers.
 */
import { describe, expect, it } from "vitest";
import type { PeerHandle, SessionKeypairs } from "../../src/noise/engine.js";
import type { Keypair, SendCounter } from "../../src/noise/keypair.js";
import { REKEY_AFTER_TIME } from "../../src/noise/constants.js";
import { initiationsOf, ipPacket, Net, transportsOf, type Node } from "../noise/harness.js";

const counterOf = (datagram: Uint8Array): number => Number(Buffer.from(datagram).readBigUInt64LE(8));

/** A and B with a session that A initiated; B's keypair is confirmed unless `confirm` is false. */
function session(confirm = true): { net: Net; a: Node; b: Node; seen: Map<string, SessionKeypairs[]> } {
  const net = new Net();
  const a = net.addNode("a");
  const b = net.addNode("b");
  net.connect(a, b);
  const seen = new Map<string, SessionKeypairs[]>();
  for (const n of [a, b]) n.onKeypairs = ((_peer, k) => seen.set(n.name, [...(seen.get(n.name) ?? []), k]));
  net.collect(a, a.initiateHandshake(a.peers.get("b")!));
  const step = (): void => {
    const w = net.inFlight.shift()!;
    net.collect(w.to, w.to.receive(w.data, w.from.addr));
  };
  step(); // the initiation reaches B; its response is in flight
  step(); // the response reaches A, which answers with a keepalive
  // That keepalive is what confirms B's keypair; without it B waits.
  if (confirm) net.flush();
  else net.inFlight = [];
  return { net, a, b, seen };
}

const peerOf = (n: Node, other: string): PeerHandle => n.peers.get(other)!;

describe("the engine with an external data path", () => {
  it("tells the observer of every keypair change: installed, confirmed, cleared", () => {
    const { a, b, seen } = session(false);
    const atA = seen.get("a")!;
    const atB = seen.get("b")!;
    expect(atA.at(-1)!.current).not.toBeNull();
    expect(atB.at(-1)!.next).not.toBeNull();
    expect(atB.at(-1)!.current).toBeNull();
    // The first data under B's keypair confirms it.
    const next = atB.at(-1)!.next!;
    const out = b.receive(transportFrom(a, "b"), a.addr);
    expect(out.deliver).toHaveLength(1);
    expect(seen.get("b")!.at(-1)).toMatchObject({ current: next, next: null });
    b.engine.removePeer(peerOf(b, "a"));
    expect(seen.get("b")!.at(-1)).toEqual({ current: null, previous: null, next: null });
  });

  it("seals with a substituted send counter, and starts a handshake when it is used up", () => {
    const { net, a } = session();
    const keypair = a.engine.keypairsOf(peerOf(a, "b")).current!;
    let value = 1000;
    let limitReached = false;
    const cell: SendCounter = {
      peek: () => value,
      take: () => (limitReached ? Number.MAX_SAFE_INTEGER : value++),
      set: (v) => (value = v),
    };
    keypair.counter = cell;
    const before = transportsOf(a).length;
    net.send(a, net.nodes.get("b")!, [ipPacket(60), ipPacket(70)]);
    const sent = transportsOf(a).slice(before);
    expect(sent.map((s) => counterOf(s.data))).toEqual([1000, 1001]);
    expect(keypair.sendCounter).toBe(1002);
    limitReached = true;
    const initiations = initiationsOf(a).length;
    net.clock.advance(6000); // beyond REKEY_TIMEOUT since the last initiation
    net.send(a, net.nodes.get("b")!, [ipPacket(60)]);
    expect(transportsOf(a).length).toBe(before + 2);
    expect(initiationsOf(a).length).toBe(initiations + 1);
  });

  it("confirmKeypair completes the responder's handshake and sends what was queued", () => {
    const { net, a, b } = session(false);
    const pa = peerOf(b, "a");
    // B has only the unconfirmed keypair: its packet waits.
    net.send(b, a, [ipPacket(80)]);
    expect(transportsOf(b)).toHaveLength(0);
    const next: Keypair = b.engine.keypairsOf(pa).next!;
    expect(net.collect(b, b.control((e) => e.confirmKeypair(pa, next.localIndex ^ 1))).events).toEqual([]);
    const out = net.collect(b, b.control((e) => e.confirmKeypair(pa, next.localIndex)));
    expect(out.events).toContainEqual({ type: "handshake-complete", peer: pa, role: "responder" });
    expect(b.engine.keypairsOf(pa)).toMatchObject({ current: next, next: null });
    expect(transportsOf(b)).toHaveLength(1);
    net.flush();
    expect(a.delivered).toHaveLength(1);
  });

  it("activity reports add to the byte counters and start a handshake when sent data gets no answer", () => {
    const { net, a } = session();
    const pb = peerOf(a, "b");
    const tx = pb.stats.txBytes;
    net.collect(a, a.control((e) => e.recordActivity(pb, { txBytes: 5000, rxBytes: 700, sentAgoMs: 0, dataSentAgoMs: 0 })));
    expect(pb.stats.txBytes).toBe(tx + 5000);
    const initiations = initiationsOf(a).length;
    net.linkUp = false;
    net.runFor(15_000 + 333 + 1);
    expect(initiationsOf(a).length).toBeGreaterThan(initiations);
  });

  it("an answer reported after the data cancels the new handshake", () => {
    const { net, a } = session();
    const pb = peerOf(a, "b");
    net.collect(a, a.control((e) => e.recordActivity(pb, { txBytes: 100, rxBytes: 0, sentAgoMs: 50, dataSentAgoMs: 50 })));
    net.collect(a, a.control((e) => e.recordActivity(pb, { txBytes: 0, rxBytes: 100, receivedAgoMs: 10, dataReceivedAgoMs: 10 })));
    const initiations = initiationsOf(a).length;
    net.linkUp = false;
    // Past the 15 s (plus jitter) at which unanswered data would have started a handshake.
    net.runFor(16_000);
    expect(initiationsOf(a).length).toBe(initiations);
  });

  it("data received and not answered brings a keepalive after 10 s; sending after it does not", () => {
    const { net, b } = session();
    const pa = peerOf(b, "a");
    // Received 20 ms ago, nothing sent since: a keepalive is due in 10 s.
    net.collect(b, b.control((e) => e.recordActivity(pa, { txBytes: 0, rxBytes: 200, receivedAgoMs: 20, dataReceivedAgoMs: 20 })));
    const before = transportsOf(b).length;
    net.runFor(10_000);
    const keepalives = transportsOf(b).slice(before).filter((s) => s.data.length === 32);
    expect(keepalives).toHaveLength(1);
    // Received, then sent: the answer went out, no keepalive.
    const { net: net2, b: b2 } = session();
    const pa2 = peerOf(b2, "a");
    net2.collect(b2, b2.control((e) => e.recordActivity(pa2, { txBytes: 300, rxBytes: 200, receivedAgoMs: 30, dataReceivedAgoMs: 30, sentAgoMs: 5, dataSentAgoMs: 5 })));
    const before2 = transportsOf(b2).length;
    net2.runFor(10_500);
    expect(transportsOf(b2).slice(before2).filter((s) => s.data.length === 32)).toHaveLength(0);
  });

  it("the initiator rekeys an old session when the data path reports sending", () => {
    const { net, a } = session();
    const pb = peerOf(a, "b");
    net.clock.advance(REKEY_AFTER_TIME + 1000);
    const initiations = initiationsOf(a).length;
    net.collect(a, a.control((e) => e.recordActivity(pb, { txBytes: 100, rxBytes: 0, sentAgoMs: 0, dataSentAgoMs: 0 })));
    expect(initiationsOf(a).length).toBe(initiations + 1);
  });
});

/** A transport message from `from` to its peer `to`, sealed by `from`'s engine. */
function transportFrom(from: Node, to: string): Uint8Array {
  const out = from.send(from.peers.get(to)!, [ipPacket(64)]);
  const t = out.transmit.find((x) => x.data[0] === 4);
  if (t === undefined) throw new Error("no transport message");
  return t.data;
}
