import { describe, expect, it } from "vitest";
import { Peer } from "../../src/noise/peer.js";
import { PeerTimers } from "../../src/noise/timers.js";
import { Net, initiationsOf, ipPacket, transportsOf } from "./harness.js";

const S = 1000;

function established(opts: { random?: () => number } = {}) {
  const net = new Net();
  const a = net.addNode("a", opts);
  const b = net.addNode("b", opts);
  net.connect(a, b);
  net.send(a, b, [ipPacket(40)]);
  net.flush();
  // Let the passive keepalive for that packet go out, so the walk starts quiet.
  net.runFor(11 * S);
  return { net, a, b, pa: a.peers.get("b") as Peer, pb: b.peers.get("a") as Peer };
}

describe("PeerTimers (pure)", () => {
  it("arms, reports and clears each timer", () => {
    const t = new PeerTimers(() => 0.5);
    expect(t.nextDeadline()).toBeUndefined();
    t.handshakeInitiated(0);
    expect(t.nextDeadline()).toBe(5_000 + 166);
    expect(t.expire(5_165)).toEqual([]);
    expect(t.expire(5_166)).toEqual(["retransmit-handshake"]);
    expect(t.handshakeRetries).toBe(1);
    t.handshakeComplete();
    expect(t.handshakeRetries).toBe(0);

    t.dataReceived(100);
    t.dataReceived(200); // while pending: remember that another keepalive is due
    expect(t.expire(10_100)).toEqual(["send-keepalive"]);
    t.keepaliveSent(10_100);
    expect(t.nextDeadline()).toBe(20_100);
    t.anyAuthenticatedPacketSent();
    expect(t.nextDeadline()).toBeUndefined();

    t.dataSent(0);
    t.dataSent(1_000); // does not push the deadline back
    expect(t.nextDeadline()).toBe(15_166);
    t.anyAuthenticatedPacketReceived();
    expect(t.nextDeadline()).toBeUndefined();

    t.sessionDerived(0);
    expect(t.expire(540_000)).toEqual(["zero-keys"]);

    t.setPersistentKeepalive(25_000, 0);
    t.anyAuthenticatedPacketTraversal(1_000);
    expect(t.expire(26_000)).toEqual(["persistent-keepalive"]);
    t.anyAuthenticatedPacketTraversal(30_000);
    t.setPersistentKeepalive(0, 31_000);
    expect(t.nextDeadline()).toBeUndefined();
  });

  it("gives up after MAX_HANDSHAKE_RETRIES retries and schedules key zeroing", () => {
    const t = new PeerTimers(() => 0);
    let now = 0;
    t.handshakeInitiated(now);
    let retries = 0;
    for (;;) {
      now = t.nextDeadline()!;
      const actions = t.expire(now);
      if (actions.includes("give-up-handshake")) break;
      expect(actions).toEqual(["retransmit-handshake"]);
      retries++;
      t.handshakeInitiated(now);
    }
    expect(retries).toBe(18);
    expect(now).toBe(95_000);
    expect(t.nextDeadline()).toBe(95_000 + 540_000);
  });
});

describe("Engine timers on a fake clock", () => {
  it("rekeys after REKEY_AFTER_TIME when the initiator sends", () => {
    const { net, a, b, pa } = established();
    const oldIndex = pa.keypairs.current!.remoteIndex;
    net.runUntil(pa.keypairs.current!.created + 119 * S);
    let out = net.send(a, b, [ipPacket(40)]);
    expect(out.transmit.map((t) => t.data[0])).toEqual([4]); // 119 s: no rekey yet
    net.flush();
    net.runUntil(pa.keypairs.current!.created + 121 * S);
    out = net.send(a, b, [ipPacket(40)]);
    // Past 120 s: the packet still goes out on the old keypair, then an initiation follows.
    expect(out.transmit.map((t) => t.data[0])).toEqual([4, 1]);
    net.flush();
    expect(pa.keypairs.current!.remoteIndex).not.toBe(oldIndex);
    expect(pa.keypairs.previous!.remoteIndex).toBe(oldIndex);
    net.send(a, b, [ipPacket(40)]);
    const last = transportsOf(a).at(-1)!.data;
    expect(last[4]! | (last[5]! << 8) | (last[6]! << 16) | (last[7]! << 24)).toBe(pa.keypairs.current!.remoteIndex | 0);
  });

  it("rejects the old keypair after REJECT_AFTER_TIME for sending and receiving", () => {
    const { net, a, b, pa } = established();
    net.linkUp = false; // rekeys cannot complete
    // 179 s after the handshake: still valid; seal a packet but hold it back.
    net.clock.t = pa.keypairs.current!.created + 179 * S;
    net.linkUp = true;
    const held = a.send(a.peers.get("b")!, [ipPacket(40)]).transmit.find((t) => t.data[0] === 4);
    expect(held).toBeDefined();
    net.clock.t = pa.keypairs.current!.created + 181 * S;
    const before = b.delivered.length;
    const rx = b.receive(held!.data, a.addr);
    expect(rx.dropped.map((d) => d.reason)).toEqual(["expired-keypair"]);
    expect(b.delivered.length).toBe(before);
    // Sending now queues and starts a handshake instead of using the old keypair.
    net.clock.advance(5 * S);
    const out = net.send(a, b, [ipPacket(40)]);
    expect(out.transmit.map((t) => t.data[0])).toEqual([1]);
    net.flush();
    expect(b.delivered.length).toBe(before + 1);
  });

  it("sends a passive keepalive KEEPALIVE_TIMEOUT after receiving data it did not answer", () => {
    const { net, a, b } = established();
    const t0 = net.clock.t;
    const sentBefore = b.sent.length;
    net.send(a, b, [ipPacket(100)]);
    net.flush();
    net.runFor(9_999);
    expect(b.sent.length).toBe(sentBefore);
    net.runFor(1);
    const ka = b.sent.slice(sentBefore);
    expect(ka.map((s) => [s.t - t0, s.data.length])).toEqual([[10 * S, 32]]);
    // Answering with data instead cancels the keepalive.
    net.send(a, b, [ipPacket(100)]);
    net.flush();
    net.send(b, a, [ipPacket(100)]);
    net.flush();
    const n = b.sent.length;
    net.runFor(30 * S);
    expect(b.sent.slice(n).filter((s) => s.data.length === 32)).toEqual([]);
  });

  it("starts a new handshake when sent data gets no answer for KEEPALIVE_TIMEOUT + REKEY_TIMEOUT", () => {
    const { net, a, b } = established({ random: () => 0 });
    net.lose = (w) => w.from === b; // b's answers are lost
    const t0 = net.clock.t;
    net.send(a, b, [ipPacket(100)]);
    net.flush();
    net.runFor(14_999);
    expect(initiationsOf(a).filter((s) => s.t > t0)).toEqual([]);
    net.runFor(1);
    expect(initiationsOf(a).filter((s) => s.t > t0).map((s) => s.t - t0)).toEqual([15 * S]);
  });

  it("retries the handshake every REKEY_TIMEOUT plus jitter, gives up after REKEY_ATTEMPT_TIME, zeroes later", () => {
    const net = new Net();
    let r = 0;
    const a = net.addNode("a", { random: () => (r = (r + 0.37) % 1) });
    const b = net.addNode("b");
    net.connect(a, b);
    net.linkUp = false;
    const t0 = net.clock.t;
    net.send(a, b, [ipPacket(40), ipPacket(50)]);
    net.runFor(200 * S);
    const times = initiationsOf(a).map((s) => s.t - t0);
    expect(times).toHaveLength(19); // the first and 18 retries
    expect(times[0]).toBe(0);
    for (let i = 1; i < times.length; i++) {
      const gap = times[i]! - times[i - 1]!;
      expect(gap).toBeGreaterThanOrEqual(5_000);
      expect(gap).toBeLessThan(5_333);
    }
    const gaveUp = a.events.find((e) => e.type === "handshake-gave-up");
    expect(gaveUp).toMatchObject({ droppedPackets: 2 });
    expect(times.at(-1)!).toBeLessThan(90 * S + 18 * 333);
    expect((a.peers.get("b") as Peer).staged).toEqual([]);
    // Nothing more until the leftover handshake state is wiped.
    net.runFor(600 * S);
    expect(initiationsOf(a)).toHaveLength(19);
    expect(a.events.filter((e) => e.type === "keys-zeroed")).toHaveLength(1);
    expect((a.peers.get("b") as Peer).handshake).toBeNull();
  });

  it("zeroes all keys 3 × REJECT_AFTER_TIME after the last handshake", () => {
    const { net, a, b, pa, pb } = established();
    const created = pa.keypairs.current!.created;
    const stale = transportsOf(a)[0]!.data;
    net.runUntil(created + 539_999);
    expect(pa.keypairs.current).not.toBeNull();
    net.runUntil(created + 540_000);
    expect(a.events.filter((e) => e.type === "keys-zeroed")).toHaveLength(1);
    expect(b.events.filter((e) => e.type === "keys-zeroed")).toHaveLength(1);
    expect(pa.keypairs.all()).toEqual([]);
    expect(pb.keypairs.all()).toEqual([]);
    expect(pa.handshake).toBeNull();
    expect(b.receive(stale, a.addr).dropped.map((d) => d.reason)).toEqual(["unknown-index"]);
    // A new handshake works afterwards.
    net.send(a, b, [ipPacket(40)]);
    net.flush();
    expect(b.delivered).toHaveLength(2);
  });

  it("sends persistent keepalives at the configured interval when idle", () => {
    const { net, a, b } = established();
    a.peers.get("b")!.persistentKeepalive = 25;
    net.collect(a, a.sendKeepalive(a.peers.get("b")!)); // as a device does when turning it on
    net.flush();
    const t0 = net.clock.t;
    const n = a.sent.length;
    net.runFor(100 * S);
    const kas = a.sent.slice(n).filter((s) => s.data.length === 32);
    expect(kas.map((s) => s.t - t0)).toEqual([25 * S, 50 * S, 75 * S, 100 * S]);
    // b never sends persistent keepalives (not configured) and only receives keepalives (no data).
    expect(transportsOf(b).filter((s) => s.t > t0)).toEqual([]);
    a.peers.get("b")!.persistentKeepalive = 0;
    const m = a.sent.length;
    net.runFor(100 * S);
    expect(a.sent.length).toBe(m);
  });

  it("sends at most one initiation per REKEY_TIMEOUT", () => {
    const net = new Net();
    const a = net.addNode("a");
    const b = net.addNode("b");
    net.connect(a, b);
    net.linkUp = false;
    for (let i = 0; i < 10; i++) {
      net.send(a, b, [ipPacket(40)]);
      net.collect(a, a.initiateHandshake(a.peers.get("b")!));
      net.clock.advance(400);
    }
    expect(initiationsOf(a)).toHaveLength(1);
    net.clock.advance(1_000); // 5 s after the first
    net.collect(a, a.initiateHandshake(a.peers.get("b")!));
    expect(initiationsOf(a)).toHaveLength(2);
  });
});

describe("Engine timers: receive-only initiator", () => {
  it("starts one handshake shortly before REJECT_AFTER_TIME when it only receives", () => {
    const { net, a, b, pa, pb } = established();
    const created = pa.keypairs.current!.created;
    const count = () => initiationsOf(a).filter((s) => s.t > created).length;
    // b sends keepalives every 5 s; a, which sends nothing at all, never rekeys on the send side.
    const tick = (t: number) => {
      net.runUntil(created + t);
      net.collect(b, b.sendKeepalive(pb));
      net.flush();
    };
    for (let t = 5 * S; t <= 165 * S; t += 5 * S) tick(t);
    expect(count()).toBe(0);
    tick(166 * S); // past REJECT_AFTER_TIME - KEEPALIVE_TIMEOUT - REKEY_TIMEOUT
    expect(count()).toBe(1);
    expect(pa.keypairs.current!.created).toBe(net.clock.t);
    tick(170 * S);
    expect(count()).toBe(1);
  });
});

describe("the engine's new-deadline report", () => {
  it("lets one timer set from a scan and moved only by new deadlines never fire later than the earliest deadline", () => {
    const net = new Net();
    const a = net.addNode("a");
    const b = net.addNode("b");
    net.connect(a, b);
    // The owner's view: a scan, then only what takeNewDeadline() reports.
    let armed = a.engine.nextDeadline() ?? Infinity;
    expect(a.engine.takeNewDeadline()).toBeUndefined();
    const follow = (): void => {
      const t = a.engine.takeNewDeadline();
      if (t !== undefined && t < armed) armed = t;
      const truth = a.engine.nextDeadline();
      // Deadlines that went away may leave the timer early, never late.
      if (truth !== undefined) expect(armed).toBeLessThanOrEqual(truth);
      // Rescan as the device does when its timer fires, so the walk covers both states.
      if (truth === undefined || armed < truth) armed = truth ?? Infinity;
    };
    net.send(a, b, [ipPacket(60)]);
    expect(a.engine.takeNewDeadline()).toBeGreaterThan(net.clock.t);
    expect(a.engine.takeNewDeadline()).toBeUndefined();
    armed = a.engine.nextDeadline() ?? Infinity;
    for (let step = 0; step < 40; step++) {
      if (step % 3 === 0) net.send(a, b, [ipPacket(80)]);
      if (step % 5 === 0) net.send(b, a, [ipPacket(80)]);
      net.flush();
      follow();
      net.runFor(700 * (step % 7));
      follow();
    }
  });
});
