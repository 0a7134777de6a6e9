/**
 * SealedChannel over the in-process hub: messages between configured peers arrive intact;
 * strangers, forgeries, replays, misaddressed and oversized blobs are dropped and counted.
 */
import { afterEach, describe, expect, it } from "vitest";
import { getBackend } from "../../src/crypto/index.js";
import { MAX_BLOB_BYTES, SealedChannel, type ChannelDropReason } from "../../src/signaling/channel.js";
import { EnvelopeCodec } from "../../src/signaling/envelope.js";
import { MemoryHub, type MemoryTransport } from "../../src/signaling/memory.js";
import type { SignalingMessage } from "../../src/signaling/types.js";
import { sleep, waitFor } from "../helpers/wait.js";

const backend = getBackend("node");

interface Node {
  priv: Uint8Array;
  pub: Uint8Array;
  channel: SealedChannel;
  transport: MemoryTransport;
  got: { from: Uint8Array; msg: SignalingMessage }[];
  drops: ChannelDropReason[];
}

const open: SealedChannel[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
});

async function node(hub: MemoryHub, peers: Uint8Array[] = [], extra: { reorderWindowMs?: number } = {}): Promise<Node> {
  const priv = backend.generatePrivateKey();
  const transport = hub.transport();
  const channel = new SealedChannel({ privateKey: priv, transport, peers, ...extra });
  open.push(channel);
  const n: Node = { priv, pub: channel.publicKey, channel, transport, got: [], drops: [] };
  channel.on("message", (from, msg) => n.got.push({ from, msg }));
  channel.on("drop", (reason) => n.drops.push(reason));
  await channel.start();
  return n;
}

async function pairOn(hub: MemoryHub, extra: { reorderWindowMs?: number } = {}): Promise<[Node, Node]> {
  const a = await node(hub, [], extra);
  const b = await node(hub, [a.pub], extra);
  a.channel.setPeers([b.pub]);
  return [a, b];
}

const cred = (generation = 0): SignalingMessage => ({ type: "credentials", generation, ufrag: "uf01", pwd: "0123456789abcdef012345" });

describe("SealedChannel", () => {
  it("carries every message type both ways, naming the sender", async () => {
    const hub = new MemoryHub();
    const [a, b] = await pairOn(hub);
    const msgs: SignalingMessage[] = [
      cred(1),
      { type: "candidate", generation: 1, candidate: "1 1 udp 2130706431 10.0.0.1 5000 typ host" },
      { type: "candidate", generation: 1, candidate: null },
      { type: "restart", generation: 2 },
    ];
    for (const m of msgs) await a.channel.send(b.pub, m);
    await b.channel.send(a.pub, cred(9));
    await waitFor(() => b.got.length === 4 && a.got.length === 1, { what: "all messages" });
    expect(b.got.map((g) => g.msg)).toEqual(msgs);
    expect(b.got.every((g) => Buffer.from(g.from).equals(Buffer.from(a.pub)))).toBe(true);
    expect(a.got[0]!.msg).toEqual(cred(9));
    expect(b.channel.stats).toMatchObject({ received: 4, delivered: 4 });
    expect(a.channel.stats.sent).toBe(4);
  });

  it("refuses to send to a key that is not a configured peer", async () => {
    const hub = new MemoryHub();
    const [a] = await pairOn(hub);
    const stranger = backend.publicKey(backend.generatePrivateKey());
    await expect(a.channel.send(stranger, cred())).rejects.toThrow(/not a configured peer/);
    expect(() => a.channel.setPeers([new Uint8Array(5)])).toThrow(/32 bytes/);
  });

  it("drops messages from keys that are not configured peers", async () => {
    const hub = new MemoryHub();
    const [a, b] = await pairOn(hub);
    const mallory = await node(hub, [b.pub]); // mallory knows b; b does not know mallory
    await mallory.channel.send(b.pub, cred());
    await waitFor(() => b.drops.length === 1, { what: "the drop" });
    expect(b.drops).toEqual(["unknown-sender"]);
    expect(b.got).toHaveLength(0);
    // after b adds mallory, mallory's messages are accepted; removing a stops a's
    b.channel.setPeers([mallory.pub]);
    await mallory.channel.send(b.pub, cred(1));
    await a.channel.send(b.pub, cred(2));
    await waitFor(() => b.got.length === 1 && b.drops.length === 2, { what: "accept and drop" });
    expect(b.got[0]!.msg).toEqual(cred(1));
    expect(b.drops[1]).toBe("unknown-sender");
  });

  it("drops forgeries, replays, misaddressed, oversized and undecodable blobs", async () => {
    const hub = new MemoryHub();
    const [a, b] = await pairOn(hub);
    // Capture what a sends, by listening as b's key on a second transport.
    const captured: Uint8Array[] = [];
    const tap = hub.transport();
    await tap.open(b.pub, (x) => captured.push(x));
    await a.channel.send(b.pub, cred(1));
    await waitFor(() => captured.length === 1 && b.got.length === 1, { what: "capture" });
    const raw = hub.transport();
    await raw.open(backend.publicKey(backend.generatePrivateKey()), () => {});
    // replay
    await raw.send(b.pub, captured[0]!);
    // A second codec with a's key whose clock runs ahead, so its counters are all new to b.
    const codecA = new EnvelopeCodec(a.priv, { now: () => Date.now() + 1000 });
    // tampered
    const bad = codecA.seal(b.pub, new TextEncoder().encode(JSON.stringify(cred(2))));
    bad[bad.length - 3]! ^= 0x40;
    await raw.send(b.pub, bad);
    // addressed (in the header) to a, but routed to b
    await raw.send(b.pub, codecA.seal(a.pub, new TextEncoder().encode("{}")));
    // oversized
    await raw.send(b.pub, new Uint8Array(MAX_BLOB_BYTES + 1));
    // authentic envelope, but not a valid message
    await raw.send(b.pub, codecA.seal(b.pub, new TextEncoder().encode('{"type":"nope","generation":0}')));
    // garbage
    await raw.send(b.pub, Uint8Array.of(1, 2, 3));
    await waitFor(() => b.drops.length === 6, { what: "six drops" });
    expect(b.drops).toEqual(["replay", "bad-seal", "wrong-recipient", "oversized", "bad-message", "malformed"]);
    expect(b.got).toHaveLength(1);
    const s = b.channel.stats;
    expect(s.dropped.replay + s.dropped["bad-seal"] + s.dropped.malformed).toBe(3);
    await tap.close();
    await raw.close();
  });

  it("survives reordering and loss-free delay; replays stay out", async () => {
    const hub = new MemoryHub({ delayMs: 5, jitterMs: 40 });
    const [a, b] = await pairOn(hub);
    const n = 40;
    for (let i = 0; i < n; i++) await a.channel.send(b.pub, { type: "restart", generation: i });
    await waitFor(() => b.got.length === n, { what: "all reordered messages", timeoutMs: 5000 });
    const gens = b.got.map((g) => (g.msg as { generation: number }).generation);
    expect(new Set(gens).size).toBe(n);
    expect(b.drops).toEqual([]);
  });

  it("a throwing listener does not stop other listeners or the channel", async () => {
    const hub = new MemoryHub();
    const [a, b] = await pairOn(hub);
    b.channel.on("message", () => {
      throw new Error("listener bug");
    });
    await a.channel.send(b.pub, cred(1));
    await a.channel.send(b.pub, cred(2));
    await waitFor(() => b.got.length === 2, { what: "both messages" });
  });

  it("keeps working across a hub outage", async () => {
    const hub = new MemoryHub();
    const [a, b] = await pairOn(hub);
    const states: string[] = [];
    b.channel.on("disconnected", () => states.push("down")).on("connected", () => states.push("up"));
    hub.down();
    expect(a.channel.connected).toBe(false);
    await sleep(20);
    hub.bringUp();
    await a.channel.send(b.pub, cred(3));
    await waitFor(() => b.got.length === 1, { what: "message after the outage" });
    expect(states).toEqual(["down", "up"]);
  });

  it("close() closes the transport and makes send fail", async () => {
    const hub = new MemoryHub();
    const [a, b] = await pairOn(hub);
    await a.channel.close();
    expect(a.transport.closed).toBe(true);
    await expect(a.channel.send(b.pub, cred())).rejects.toThrow(/closed/);
  });
});
