import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { REPLAY_WINDOW_SIZE } from "../../src/replay/index.js";
import { Peer } from "../../src/noise/peer.js";
import { Net, eq, initiationsOf, ipPacket, transportsOf, type Node } from "./harness.js";

function established() {
  const net = new Net();
  const a = net.addNode("a");
  const b = net.addNode("b");
  net.connect(a, b);
  net.send(a, b, [ipPacket(40)]);
  net.flush();
  return { net, a, b, pa: a.peers.get("b") as Peer, pb: b.peers.get("a") as Peer };
}

/** The session still carries data both ways, and the keypairs did not change. */
function expectSessionIntact(net: Net, a: Node, b: Node, before: { pa: unknown[]; pb: unknown[] }): void {
  const pa = a.peers.get(b.name) as Peer;
  const pb = b.peers.get(a.name) as Peer;
  expect(pa.keypairs.all()).toEqual(before.pa);
  expect(pb.keypairs.all()).toEqual(before.pb);
  const p = ipPacket(100);
  const q = ipPacket(100);
  net.send(a, b, [p]);
  net.send(b, a, [q]);
  net.flush();
  expect(eq(b.delivered.at(-1)!.packet, p)).toBe(true);
  expect(eq(a.delivered.at(-1)!.packet, q)).toBe(true);
}

const snapshot = (pa: Peer, pb: Peer) => ({ pa: pa.keypairs.all(), pb: pb.keypairs.all() });

describe("Engine drops bad input without throwing or disturbing the session", () => {
  it("drops an initiation with a wrong mac1", () => {
    const { net, a, b, pa, pb } = established();
    net.clock.advance(6_000);
    const init = a.initiateHandshake(pa).transmit[0]!.data;
    const before = snapshot(pa, pb);
    init[120]! ^= 0x01; // inside mac1
    const out = b.receive(init, a.addr);
    expect(out.dropped.map((d) => d.reason)).toEqual(["bad-mac1"]);
    expect(out.transmit).toEqual([]);
    expect(out.authenticated).toEqual([]);
    expect(pb.keypairs.all()).toEqual(before.pb);
  });

  it("drops a replayed initiation (same timestamp) and keeps the session", () => {
    const { net, a, b, pa, pb } = established();
    const init = initiationsOf(a)[0]!.data;
    net.clock.advance(2_000);
    const before = snapshot(pa, pb);
    const out = b.receive(init, a.addr);
    expect(out.dropped.map((d) => d.reason)).toEqual(["replayed-initiation"]);
    expect(out.transmit).toEqual([]);
    expectSessionIntact(net, a, b, before);
  });

  it("drops initiations that come faster than 50 per second from one peer", () => {
    const { net, a, b, pa } = established();
    net.clock.advance(5_000);
    const first = a.initiateHandshake(pa).transmit[0]!.data;
    net.clock.advance(5_000);
    const second = a.initiateHandshake(pa).transmit[0]!.data;
    expect(b.receive(first, a.addr).transmit).toHaveLength(1);
    expect(b.receive(second, a.addr).dropped.map((d) => d.reason)).toEqual(["initiation-flood"]);
  });

  it("drops a replayed transport counter and one that fell out of the window", () => {
    const { net, a, b, pa, pb } = established();
    const first = transportsOf(a)[0]!.data;
    const before = snapshot(pa, pb);
    expect(b.receive(first, a.addr).dropped.map((d) => d.reason)).toEqual(["replayed-counter"]);

    // Seal one packet and hold it back, then push the window past it.
    const held = a.send(pa, [ipPacket(20)]).transmit[0]!.data;
    const flood = a.send(pa, Array.from({ length: REPLAY_WINDOW_SIZE + 64 }, () => ipPacket(20)));
    for (const t of flood.transmit) b.receive(t.data, a.addr);
    const delivered = b.delivered.length;
    const out = b.receive(held, a.addr);
    expect(out.dropped.map((d) => d.reason)).toEqual(["replayed-counter"]);
    expect(out.deliver).toEqual([]);
    expect(b.delivered.length).toBe(delivered);
    expectSessionIntact(net, a, b, before);
  });

  it("drops a flipped bit in a transport message", () => {
    const { net, a, b, pa, pb } = established();
    const before = snapshot(pa, pb);
    const t = a.send(pa, [ipPacket(80)]).transmit[0]!.data;
    for (const at of [8, 20, t.length - 1]) {
      const bad = t.slice();
      bad[at]! ^= 0x80;
      expect(b.receive(bad, a.addr).dropped.map((d) => d.reason)).toEqual(["decryption-failed"]);
    }
    // The untouched original is still accepted: failed attempts did not consume its counter.
    expect(b.receive(t, a.addr).deliver).toHaveLength(1);
    expectSessionIntact(net, a, b, before);
  });

  it("drops an initiation from an unknown peer, and one meant for another key", () => {
    const { net, a, b, pa, pb } = established();
    const c = net.addNode("c");
    c.peers.set("b", c.engine.addPeer(b.publicKey)); // c knows b, b does not know c
    b.peers.set("c", b.engine.addPeer(net.backend.publicKey(net.backend.generatePrivateKey())));
    const before = snapshot(pa, pb);
    const fromC = c.initiateHandshake(c.peers.get("b")!).transmit[0]!.data;
    expect(b.receive(fromC, c.addr).dropped.map((d) => d.reason)).toEqual(["handshake-failed"]);
    // a configured with a wrong key for b: mac1 does not match b's key.
    const wrong = net.backend.publicKey(net.backend.generatePrivateKey());
    const pw = a.engine.addPeer(wrong);
    const toWrong = a.initiateHandshake(pw).transmit[0]!.data;
    expect(b.receive(toWrong, a.addr).dropped.map((d) => d.reason)).toEqual(["bad-mac1"]);
    expectSessionIntact(net, a, b, before);
  });

  it("drops truncated, oversized, reserved-bit and random datagrams", () => {
    const { net, a, b, pa, pb } = established();
    net.clock.advance(6_000);
    const init = a.initiateHandshake(pa).transmit[0]!.data;
    const before = snapshot(pa, pb);
    const transport = a.send(pa, [ipPacket(40)]).transmit[0]!.data;
    const reserved = init.slice();
    reserved[1] = 1;
    const cases: Uint8Array[] = [
      new Uint8Array(0),
      new Uint8Array([1]),
      new Uint8Array([4, 0, 0]),
      init.subarray(0, 147),
      new Uint8Array([...init, 0]),
      reserved,
      transport.subarray(0, 31),
      new Uint8Array(92).fill(2),
      new Uint8Array(64).fill(3),
      new Uint8Array([5, 0, 0, 0, ...randomBytes(100)]),
      new Uint8Array(randomBytes(148)),
      new Uint8Array(randomBytes(1500)),
    ];
    for (const c of cases) {
      const out = b.receive(c, a.addr);
      expect(out.transmit).toEqual([]);
      expect(out.deliver).toEqual([]);
      expect(out.dropped).toHaveLength(1);
      expect(out.dropped[0]!.reason).not.toBe("internal-error");
    }
    expectSessionIntact(net, a, b, before);
  });

  it("drops a response nobody asked for and a second copy of a valid one", () => {
    const { net, a, b, pa, pb } = established();
    const response = b.sent.find((s) => s.data[0] === 2)!.data;
    const before = snapshot(pa, pb);
    expect(a.receive(response, b.addr).dropped.map((d) => d.reason)).toEqual(["unknown-index"]);
    expectSessionIntact(net, a, b, before);
  });

  it("ignores handshakes when the device has no private key", () => {
    const { net, a, b, pa } = established();
    b.engine.setPrivateKey(null);
    expect(b.engine.publicKey).toBeNull();
    net.clock.advance(6_000);
    const init = a.initiateHandshake(pa).transmit[0]!.data;
    expect(b.receive(init, a.addr).dropped.map((d) => d.reason)).toEqual(["no-private-key"]);
    // and cannot initiate
    expect(b.initiateHandshake(b.peers.get("a")!).transmit).toEqual([]);
  });
});

describe("cookies under load", () => {
  it("answers with a cookie reply; the initiator retries with mac2 and completes", () => {
    const net = new Net();
    const a = net.addNode("a", { random: () => 0 });
    const b = net.addNode("b");
    net.connect(a, b);
    b.engine.setUnderLoad(true);
    const t0 = net.clock.t;
    net.send(a, b, [ipPacket(40)]);
    net.flush();
    expect(b.dropped.map((d) => d.reason)).toEqual(["cookie-sent"]);
    const reply = b.sent.find((s) => s.data[0] === 3)!;
    expect(reply.data).toHaveLength(64);
    expect(reply.to).toBe("a");
    expect(a.dropped).toEqual([]); // the cookie was accepted
    expect(b.delivered).toEqual([]);
    // The retransmission 5 s later carries mac2 and gets through.
    net.runFor(6_000);
    const inits = initiationsOf(a);
    expect(inits.map((s) => s.t - t0)).toEqual([0, 5_000]);
    expect(inits[0]!.data.subarray(132).every((x) => x === 0)).toBe(true);
    expect(inits[1]!.data.subarray(132).some((x) => x !== 0)).toBe(true);
    expect(b.delivered).toHaveLength(1);
    expect(a.events.some((e) => e.type === "handshake-complete")).toBe(true);
    // Both initiations count as received; the first was answered with a cookie.
    expect(b.engine.handshakeCounters()).toEqual({ initiationsReceived: 2, responsesReceived: 0, cookieRepliesSent: 1 });
    expect(a.engine.handshakeCounters()).toEqual({ initiationsReceived: 0, responsesReceived: 1, cookieRepliesSent: 0 });
    expect(b.engine.isUnderLoad()).toBe(true);
  });

  it("binds the cookie to the source address", () => {
    const net = new Net();
    const a = net.addNode("a", { random: () => 0 });
    const b = net.addNode("b");
    net.connect(a, b);
    b.engine.setUnderLoad(true);
    net.send(a, b, [ipPacket(40)]);
    net.flush();
    net.clock.advance(5_400);
    const retry = a.tick().transmit[0]!.data;
    const elsewhere = new (a.addr.constructor as typeof import("./harness.js").Addr)("a", "10.9.9.9");
    const out = b.receive(retry, elsewhere);
    expect(out.dropped.map((d) => d.reason)).toEqual(["cookie-sent"]);
  });

  it("rejects a cookie reply not sealed for the last mac1, and rate-limits valid sources", () => {
    const net = new Net();
    const a = net.addNode("a");
    const b = net.addNode("b", { rateLimiter: { allow: () => false } });
    net.connect(a, b);
    b.engine.setUnderLoad(true);
    const init1 = a.send(a.peers.get("b")!, [ipPacket(40)]).transmit[0]!.data;
    const reply = b.receive(init1, a.addr).transmit[0]!.data;
    net.clock.advance(5_400);
    const init2 = a.tick().transmit[0]!.data; // a new initiation: a different mac1 and index
    expect(a.receive(reply, b.addr).dropped.map((d) => d.reason)).toEqual(["unknown-index"]);
    // The receiver field is not authenticated: aim the old reply at the live index. The AEAD's
    // associated data (the old mac1) no longer matches, so it is still refused.
    const retargeted = reply.slice();
    retargeted.set(init2.subarray(4, 8), 4);
    expect(a.receive(retargeted, b.addr).dropped.map((d) => d.reason)).toEqual(["bad-cookie-reply"]);
    // A fresh reply for the current initiation is accepted; with mac2 the rate limiter decides.
    net.clock.advance(5_400);
    const init3 = a.tick().transmit[0]!.data;
    const reply3 = b.receive(init3, a.addr).transmit[0]!.data;
    expect(a.receive(reply3, b.addr).dropped).toEqual([]);
    net.clock.advance(5_400);
    const init4 = a.tick().transmit[0]!.data;
    expect(b.receive(init4, a.addr).dropped.map((d) => d.reason)).toEqual(["rate-limited"]);
  });

  it("goes under load by itself when handshakes arrive faster than the threshold", () => {
    const net = new Net();
    const b = net.addNode("b", { underLoadThreshold: 3 });
    const others = Array.from({ length: 5 }, (_, i) => net.addNode(`n${i}`));
    for (const n of others) net.connect(n, b);
    const reasons = others.map((n) => {
      const init = n.initiateHandshake(n.peers.get("b")!).transmit[0]!.data;
      const out = b.receive(init, n.addr);
      return out.dropped[0]?.reason ?? out.transmit[0]!.data[0];
    });
    expect(reasons).toEqual([2, 2, 2, "cookie-sent", "cookie-sent"]);
    expect(b.engine.isUnderLoad()).toBe(true);
    net.clock.advance(1_001);
    expect(b.engine.isUnderLoad()).toBe(false);
  });
});
