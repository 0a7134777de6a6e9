import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Peer } from "../../src/noise/peer.js";
import { Net, eq, ipPacket } from "./harness.js";

function setup() {
  const net = new Net();
  const a = net.addNode("a");
  const b = net.addNode("b");
  net.connect(a, b);
  net.send(a, b, [ipPacket(40)]);
  net.flush();
  net.send(b, a, [ipPacket(40)]);
  net.flush();
  const pa = a.peers.get("b") as Peer;
  const pb = b.peers.get("a") as Peer;
  // Valid messages of every type, all already consumed.
  const samples = [...a.sent, ...b.sent].map((s) => s.data);
  b.engine.setUnderLoad(true);
  net.clock.advance(5_000);
  const init = a.initiateHandshake(pa).transmit[0]!.data; // answered with a cookie reply
  const cookieReply = b.receive(init, a.addr).transmit[0]!.data;
  b.engine.setUnderLoad(null);
  // Let that initiation complete too, so every sample is one the engines have already consumed.
  net.collect(b, b.receive(init, a.addr));
  net.flush();
  net.send(b, a, [ipPacket(40)]);
  net.flush();
  samples.push(init, cookieReply);
  return { net, a, b, pa, pb, samples };
}

describe("Engine.receive under random input (property)", () => {
  it("never throws and leaves an established session alone", () => {
    const { net, a, b, pa, pb, samples } = setup();
    expect(new Set(samples.map((s) => s[0]))).toEqual(new Set([1, 2, 3, 4]));
    const slots = { a: pa.keypairs.all(), b: pb.keypairs.all() };

    const mutation = fc.record({
      sample: fc.integer({ min: 0, max: samples.length - 1 }),
      flips: fc.array(fc.record({ at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }), { maxLength: 4 }),
      cut: fc.option(fc.nat(), { nil: undefined }),
      extra: fc.uint8Array({ maxLength: 8 }),
    });
    const input = fc.oneof(
      fc.uint8Array({ maxLength: 400 }).map((raw) => ({ data: raw })),
      fc.tuple(fc.integer({ min: 1, max: 4 }), fc.uint8Array({ maxLength: 200 })).map(([t, raw]) => ({
        data: new Uint8Array([t, 0, 0, 0, ...raw]),
      })),
      mutation.map(({ sample, flips, cut, extra }) => {
        const d = samples[sample]!.slice();
        for (const f of flips) d[f.at % d.length]! ^= f.xor;
        const cutAt = cut === undefined ? d.length : cut % (d.length + 1);
        return { data: new Uint8Array([...d.subarray(0, cutAt), ...(cut === undefined ? extra : [])]) };
      }),
    );

    fc.assert(
      fc.property(input, fc.boolean(), fc.boolean(), ({ data }, toB, underLoad) => {
        const node = toB ? b : a;
        const from = toB ? a : b;
        node.engine.setUnderLoad(underLoad);
        const out = node.receive(data, from.addr);
        node.engine.setUnderLoad(null);
        expect(out.dropped.map((d) => d.reason)).not.toContain("internal-error");
        expect(out.deliver).toEqual([]);
        expect(pa.keypairs.all()).toEqual(slots.a);
        expect(pb.keypairs.all()).toEqual(slots.b);
        // Only a cookie reply may ever be sent in answer to garbage.
        for (const t of out.transmit) expect(t.data[0]).toBe(3);
      }),
      { numRuns: 3000 },
    );

    const p = ipPacket(300);
    const q = ipPacket(300, 6);
    net.send(a, b, [p]);
    net.send(b, a, [q]);
    net.flush();
    expect(eq(b.delivered.at(-1)!.packet, p)).toBe(true);
    expect(eq(a.delivered.at(-1)!.packet, q)).toBe(true);
  });

  it("never throws for random bytes without any peers or keys", () => {
    const net = new Net();
    const lone = net.addNode("lone");
    lone.engine.setPrivateKey(null);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.integer({ min: 0, max: 5 }), (raw, t) => {
        const data = raw.length >= 4 ? raw : new Uint8Array([t, 0, 0, 0, ...raw]);
        const out = lone.receive(data, lone.addr);
        expect(out.dropped).toHaveLength(1);
        expect(out.dropped[0]!.reason).not.toBe("internal-error");
        expect(out.transmit).toEqual([]);
      }),
      { numRuns: 1000 },
    );
  });
});
