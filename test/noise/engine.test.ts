import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { generatePresharedKey } from "../../src/crypto/index.js";
import { Peer } from "../../src/noise/peer.js";
import { Net, eq, ipPacket, transportsOf } from "./harness.js";

function establish(psk?: Uint8Array) {
  const net = new Net();
  const a = net.addNode("a");
  const b = net.addNode("b");
  net.connect(a, b, psk);
  return { net, a, b };
}

describe("Engine: handshake and data between two in-memory engines", () => {
  for (const withPsk of [false, true]) {
    for (const initiator of ["a", "b"] as const) {
      it(`completes a handshake started by ${initiator} ${withPsk ? "with" : "without"} PSK and exchanges data`, () => {
        const { net, a, b } = establish(withPsk ? generatePresharedKey() : undefined);
        const [x, y] = initiator === "a" ? [a, b] : [b, a];
        const first = ipPacket(60);
        const out = net.send(x, y, [first]);
        // No session yet: the packet waits and an initiation goes out.
        expect(out.transmit).toHaveLength(1);
        expect(out.transmit[0]!.data).toHaveLength(148);
        expect(out.events.map((e) => e.type)).toEqual(["handshake-initiated"]);
        net.flush();
        expect(x.events.some((e) => e.type === "handshake-complete" && e.role === "initiator")).toBe(true);
        expect(y.events.some((e) => e.type === "handshake-complete" && e.role === "responder")).toBe(true);
        // The queued packet went out once the response arrived, and confirmed the session.
        expect(y.delivered).toHaveLength(1);
        expect(eq(y.delivered[0]!.packet, first)).toBe(true);
        expect(y.delivered[0]!.from).toBe(x.name);

        const sizes = [20, 21, 40, 63, 64, 65, 576, 1279, 1280, 1420, 1500, 9000];
        for (const size of sizes) {
          for (const version of [4, 6] as const) {
            if (version === 6 && size < 40) continue;
            const p = ipPacket(size, version);
            const q = ipPacket(size, version);
            net.send(x, y, [p]);
            net.send(y, x, [q]);
            net.flush();
            expect(eq(y.delivered.at(-1)!.packet, p)).toBe(true);
            expect(eq(x.delivered.at(-1)!.packet, q)).toBe(true);
          }
        }
        // Padding: every transport datagram carries a multiple of 16 plaintext bytes.
        for (const s of [...transportsOf(x), ...transportsOf(y)]) {
          expect((s.data.length - 32) % 16).toBe(0);
        }
        expect(x.dropped).toEqual([]);
        expect(y.dropped).toEqual([]);
        expect(x.peers.get(y.name)!.stats.lastHandshakeMs).toBe(net.clock.wallNow());
        expect(y.peers.get(x.name)!.stats.rxBytes).toBeGreaterThan(0);
      });
    }
  }

  it("pads to 16 bytes, but not past the MTU", () => {
    const net = new Net();
    const a = net.addNode("a", { mtu: 1420 });
    const b = net.addNode("b");
    net.connect(a, b);
    net.send(a, b, [ipPacket(100)]);
    net.flush();
    const before = transportsOf(a).length;
    const cases: [number, number][] = [
      [20, 32],
      [33, 48],
      [1410, 1420],
      [1420, 1420],
      [1419, 1420],
    ];
    for (const [size] of cases) net.send(a, b, [ipPacket(size)]);
    net.flush();
    const sent = transportsOf(a).slice(before);
    expect(sent.map((s) => s.data.length - 32)).toEqual(cases.map(([, padded]) => padded));
    expect(b.delivered.slice(1).map((d) => d.packet.length)).toEqual(cases.map(([size]) => size));
  });

  it("does not complete a handshake when the PSKs differ", () => {
    const net = new Net();
    const a = net.addNode("a");
    const b = net.addNode("b");
    a.peers.set("b", a.engine.addPeer(b.publicKey, { presharedKey: generatePresharedKey() }));
    b.peers.set("a", b.engine.addPeer(a.publicKey, { presharedKey: generatePresharedKey() }));
    net.send(a, b, [ipPacket(40)]);
    net.flush();
    expect(a.dropped.map((d) => d.reason)).toEqual(["handshake-failed"]);
    expect(a.events.filter((e) => e.type === "handshake-complete")).toEqual([]);
    expect(b.delivered).toEqual([]);
  });

  it("reports the source of authenticated messages so the device can roam the endpoint", () => {
    const { net, a, b } = establish();
    const out = b.receive(a.initiateHandshake(a.peers.get("b")!).transmit[0]!.data, a.addr);
    expect(out.authenticated).toEqual([{ peer: b.peers.get("a"), src: a.addr }]);
    expect(out.transmit).toHaveLength(1);
    expect(out.transmit[0]!.peer).toBe(b.peers.get("a"));
    expect(out.transmit[0]!.data).toHaveLength(92);
    void net;
  });

  it("drops inner packets that are neither IPv4 nor IPv6 or whose length field lies", () => {
    const { net, a, b } = establish();
    net.send(a, b, [ipPacket(40)]);
    net.flush();
    const bogus = new Uint8Array(randomBytes(48));
    bogus[0] = 0x10;
    const lying = ipPacket(40);
    lying[3] = 200; // claims 200 bytes
    net.send(a, b, [bogus, lying]);
    net.flush();
    expect(b.dropped.map((d) => d.reason)).toEqual(["bad-inner-packet", "bad-inner-packet"]);
    expect(b.delivered).toHaveLength(1);
  });

  it("queues at most maxStagedPackets while waiting for a session, dropping the oldest", () => {
    const net = new Net();
    const a = net.addNode("a", { maxStagedPackets: 4 });
    const b = net.addNode("b");
    net.connect(a, b);
    net.linkUp = false;
    const packets = Array.from({ length: 6 }, (_, i) => ipPacket(20 + i));
    const out = net.send(a, b, packets);
    expect(out.events.find((e) => e.type === "queue-overflow")).toMatchObject({ droppedPackets: 2 });
    net.linkUp = true;
    net.clock.advance(5_000);
    net.collect(a, a.initiateHandshake(a.peers.get("b")!));
    net.flush();
    expect(b.delivered.map((d) => d.packet.length)).toEqual([22, 23, 24, 25]);
  });

  it("manages peers: lookup, removal, own key refused, private key change expires sessions", () => {
    const { net, a, b } = establish();
    expect(a.engine.peer(b.publicKey)).toBe(a.peers.get("b"));
    expect(a.engine.peers()).toHaveLength(1);
    expect(() => a.engine.addPeer(b.publicKey)).toThrow(/already exists/);
    expect(() => a.engine.addPeer(a.publicKey)).toThrow(/own public key/);
    expect(() => a.engine.addPeer(new Uint8Array(31))).toThrow(RangeError);
    net.send(a, b, [ipPacket(40)]);
    net.flush();
    const firstIndex = (a.peers.get("b") as Peer).keypairs.current!.localIndex;

    // New private key on b: a's sessions with b are useless; b must start over.
    const newKey = net.backend.generatePrivateKey();
    b.engine.setPrivateKey(newKey);
    expect(eq(b.engine.publicKey!, net.backend.publicKey(newKey))).toBe(true);
    const out = b.send(b.peers.get("a")!, [ipPacket(40)]);
    expect(out.transmit.map((t) => t.data[0])).toEqual([1]);

    a.engine.removePeer(b.publicKey);
    expect(a.engine.peer(b.publicKey)).toBeUndefined();
    expect(a.engine.peers()).toEqual([]);
    expect(firstIndex).toBeGreaterThan(0);
    // A removed peer's handle is refused.
    expect(() => a.send(a.peers.get("b")!, [ipPacket(40)])).toThrow(/does not belong/);
  });

  it("validates peer settings", () => {
    const { a } = establish();
    const p = a.peers.get("b")!;
    expect(() => (p.persistentKeepalive = -1)).toThrow(RangeError);
    expect(() => (p.persistentKeepalive = 1.5)).toThrow(RangeError);
    expect(() => (p.presharedKey = new Uint8Array(16))).toThrow(RangeError);
    p.presharedKey = new Uint8Array(32).fill(7);
    expect(p.presharedKey).toEqual(new Uint8Array(32).fill(7));
    p.presharedKey = null;
    expect(p.presharedKey).toBeNull();
  });
  it("rekeys after rekeyAfterMessages and stops sending at rejectAfterMessages", () => {
    const net = new Net();
    const a = net.addNode("a", { rekeyAfterMessages: 5, rejectAfterMessages: 10 });
    const b = net.addNode("b", { rejectAfterMessages: 10 });
    net.connect(a, b);
    net.send(a, b, [ipPacket(40)]); // counter 0
    net.flush();
    net.linkUp = false; // the rekey cannot complete
    net.clock.advance(5_000);
    const types: number[][] = [];
    for (let i = 1; i <= 11; i++) types.push(net.send(a, b, [ipPacket(40)]).transmit.map((t) => t.data[0]!));
    // Counters 1..4 plain; once the next counter (6) exceeds 5 an initiation follows counter 5;
    // 6..9 still go out; from 10 on packets are held back.
    expect(types.slice(0, 4)).toEqual([[4], [4], [4], [4]]);
    expect(types[4]).toEqual([4, 1]);
    expect(types.slice(5, 9)).toEqual([[4], [4], [4], [4]]);
    expect(types.slice(9)).toEqual([[], []]);
    expect((a.peers.get("b") as Peer).staged).toHaveLength(2);
    // When the link returns, the next handshake carries the held packets on a new keypair.
    net.linkUp = true;
    net.clock.advance(5_000);
    net.collect(a, a.initiateHandshake(a.peers.get("b")!));
    net.flush();
    expect(b.delivered).toHaveLength(3);
  });
  it("computes a peer's static-static DH at its first handshake, not when it is configured", () => {
    const base = new Net().backend;
    let dhCalls = 0;
    const counting = Object.create(base) as typeof base;
    counting.dh = (priv, pub) => {
      dhCalls++;
      return base.dh(priv, pub);
    };
    const net = new Net(counting);
    const a = net.addNode("a");
    const b = net.addNode("b");
    net.connect(a, b);
    for (let i = 0; i < 50; i++) a.engine.addPeer(counting.publicKey(counting.generatePrivateKey()));
    a.engine.setPrivateKey(counting.generatePrivateKey()); // a new key: nothing recomputed either
    a.engine.setPrivateKey(a.privateKey);
    expect(dhCalls).toBe(0);
    const out = net.send(a, b, [ipPacket(60)]);
    expect(out.transmit.length + net.inFlight.length).toBeGreaterThan(0);
    net.flush();
    expect(b.delivered).toHaveLength(1);
    // Static-static once on each side, plus the handshake's ephemeral DHs; none for the 50 others.
    expect(dhCalls).toBeGreaterThanOrEqual(2);
    expect(dhCalls).toBeLessThanOrEqual(8);
  });

  it("keeps a peer with a low-order public key but never handshakes with it", () => {
    const { a } = establish();
    const bad = a.engine.addPeer(new Uint8Array(32)); // the all-zero point has order 1
    const out = a.send(bad, [ipPacket(40)]);
    expect(out.transmit).toEqual([]);
    expect(a.engine.peers()).toContain(bad);
  });
});
