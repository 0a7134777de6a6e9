/**
 * Data-plane conformance: the same tests, on the same vectors (vectors.ts), against each
 * implementation of the DataPlane interface — the TypeScript plane always, the native plane
 * where the addon loads and network namespaces can be made (it needs a Linux TUN; see
 * drivers.ts for how packets reach it). Transport header and padding, a known-answer message,
 * the replay window, counter and age limits, key rotation, the source check, drops by reason,
 * and the events pushed back (activity, confirmation, handshake needed).
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { openTransport, parseTransport, sealTransport } from "../../src/dataplane/transport.js";
import { loadNative } from "../../src/native/load.js";
import { REJECT_AFTER_TIME } from "../../src/noise/constants.js";
import { Keypair } from "../../src/noise/keypair.js";
import { netnsUnavailableReason, TestBed, waitFor, type Host } from "../helpers/netns.js";
import { backend, ip4, nativeDriver, portableDriver, type PlaneUnderTest } from "./drivers.js";
import { KNOWN_ANSWER, LIMIT, OTHER_IP, PADDING, PEER_IP, REPLAY, SESSIONS, SINK_IP } from "./vectors.js";

type Session = (typeof SESSIONS)[keyof typeof SESSIONS];

/** Our keypair of a session (a fresh copy of the keys: planes may wipe what they retire). */
function ours(s: Session, opts: { ageMs?: number; sendCounter?: number } = {}): Keypair {
  const k = new Keypair(s.sendKey.slice(), s.receiveKey.slice(), s.localIndex, s.remoteIndex, performance.now() - (opts.ageMs ?? 0), true);
  if (opts.sendCounter !== undefined) k.sendCounter = opts.sendCounter;
  return k;
}

/** The peer's side of a session. */
function theirs(s: Session): Keypair {
  return new Keypair(s.receiveKey.slice(), s.sendKey.slice(), s.remoteIndex, s.localIndex, performance.now(), false);
}

/** A transport message from the peer under session `s`. */
function fromPeer(s: Session, counter: number, packet: Uint8Array = ip4(PEER_IP, SINK_IP, 60)): Uint8Array {
  return sealTransport(backend, theirs(s), counter, packet, 0);
}

const counterOf = (d: Uint8Array): number => Number(Buffer.from(d).readBigUInt64LE(8));
const receiverOf = (d: Uint8Array): number => Buffer.from(d).readUInt32LE(4);

/** Drops of these reasons since `before`. */
function dropsSince(t: PlaneUnderTest, before: Record<string, number>, reasons: string[]): Record<string, number> {
  const now = t.plane.drops();
  return Object.fromEntries(reasons.map((r) => [r, (now[r] ?? 0) - (before[r] ?? 0)]));
}

const REASONS = ["unknown-index", "decryption-failed", "replayed-counter", "expired-keypair", "bad-inner-packet", "source-not-allowed"];

const native = loadNative();
const nativeSkip = (await netnsUnavailableReason()) ?? (native.addon?.DataPath === undefined ? (native.reason ?? "no native data path here") : null);

let bed: TestBed | null = null;
let host: Host | null = null;
let tag = 0;

beforeAll(async () => {
  if (nativeSkip !== null) return;
  bed = await TestBed.create("dplane");
  host = await bed.host("a");
});

afterAll(async () => {
  await bed?.cleanup();
});

const implementations: [string, () => Promise<PlaneUnderTest>, string | null][] = [
  ["portable", portableDriver, null],
  ["native", () => nativeDriver(bed!, host!, `c${++tag}`), nativeSkip],
];

for (const [name, make, skip] of implementations) {
  describe.skipIf(skip !== null)(`the ${name} data plane`, () => {
    let t: PlaneUnderTest;
    beforeEach(async () => {
      t = await make();
    });
    afterEach(async () => {
      await t.close();
    });

    it("seals with the transport header and the padding rule, one counter per packet", async () => {
      t.plane.setKeypairs(t.peer, { current: ours(SESSIONS.a), previous: null, next: null });
      const sent = await t.fromTun(
        PADDING.map(([inner]) => inner),
        PADDING.length,
      );
      expect(sent).toHaveLength(PADDING.length);
      for (const d of sent) {
        expect([...d.subarray(0, 4)]).toEqual([4, 0, 0, 0]);
        expect(receiverOf(d)).toBe(SESSIONS.a.remoteIndex);
      }
      expect(sent.map(counterOf).sort((x, y) => x - y)).toEqual(PADDING.map((_, i) => i));
      expect(sent.map((d) => d.length).sort((x, y) => x - y)).toEqual(PADDING.map(([, padded]) => 32 + padded).sort((x, y) => x - y));
      // The peer opens each and finds the inner packet whole.
      const inners = sent.map((d) => openTransport(backend, theirs(SESSIONS.a), parseTransport(d)!, performance.now(), LIMIT));
      expect(inners.map((p) => (typeof p === "string" ? p : p.length)).sort((x, y) => Number(x) - Number(y))).toEqual(PADDING.map(([inner]) => inner));
      await waitFor(() => t.events.activities.reduce((n, a) => n + a.txBytes, 0) >= sent.reduce((n, d) => n + d.length, 0), {
        timeoutMs: 3000,
        what: "the sent bytes to be reported",
      });
      expect(t.events.activities.some((a) => a.sentAgoMs !== undefined && a.dataSentAgoMs !== undefined)).toBe(true);
    });

    it("opens the known-answer message and seals the same bytes", async () => {
      t.plane.setKeypairs(t.peer, { current: ours(SESSIONS.a), previous: null, next: null });
      await t.arrive([KNOWN_ANSWER.datagram]);
      expect(t.delivered()).toBe(1);
      // The peer's side of session a, counter 7: what it seals is the vector, byte for byte.
      const mirror = new Keypair(SESSIONS.a.receiveKey.slice(), SESSIONS.a.sendKey.slice(), 0x99, SESSIONS.a.localIndex, performance.now(), true);
      mirror.sendCounter = KNOWN_ANSWER.counter;
      t.plane.setKeypairs(t.peer, { current: mirror, previous: null, next: null });
      const out: Uint8Array[] = [];
      t.plane.send(t.peer, [KNOWN_ANSWER.packet], out);
      expect(out.map((d) => Buffer.from(d).toString("hex"))).toEqual([Buffer.from(KNOWN_ANSWER.datagram).toString("hex")]);
    });

    it("keeps a replay window of 8128 counters: out of order inside it, refused beyond it or twice", async () => {
      t.plane.setKeypairs(t.peer, { current: ours(SESSIONS.a), previous: null, next: null });
      for (const [counter, ok] of REPLAY) {
        const delivered = t.delivered();
        const before = t.plane.drops();
        await t.arrive([fromPeer(SESSIONS.a, counter)]);
        expect({ counter, delivered: t.delivered() - delivered }).toEqual({ counter, delivered: ok ? 1 : 0 });
        expect(dropsSince(t, before, ["replayed-counter"])).toEqual({ "replayed-counter": ok ? 0 : 1 });
      }
    });

    it("drops by reason: unknown index, forged, over the counter limit, expired, bad inner packet, foreign source", async () => {
      t.plane.setKeypairs(t.peer, { current: ours(SESSIONS.a), previous: null, next: null });
      const forged = fromPeer(SESSIONS.a, 3);
      forged[forged.length - 1]! ^= 1;
      const garbage = new Uint8Array(20); // version 0: not an IP packet
      const before = t.plane.drops();
      await t.arrive([
        fromPeer(SESSIONS.b, 1), // no such keypair here
        forged,
        fromPeer(SESSIONS.a, LIMIT),
        fromPeer(SESSIONS.a, 4, garbage),
        fromPeer(SESSIONS.a, 5, ip4(OTHER_IP, SINK_IP, 60)),
        fromPeer(SESSIONS.a, 6, new Uint8Array(0)), // a keepalive: taken, nothing delivered
      ]);
      expect(t.delivered()).toBe(0);
      expect(dropsSince(t, before, REASONS)).toEqual({
        "unknown-index": 1,
        "decryption-failed": 1,
        "replayed-counter": 0,
        "expired-keypair": 1,
        "bad-inner-packet": 1,
        "source-not-allowed": 1,
      });
      // The routes change (the device's table): the other source now belongs to the peer.
      t.routes.insert(`${OTHER_IP}/32`, t.peer);
      t.plane.routesChanged();
      await t.arrive([fromPeer(SESSIONS.a, 7, ip4(OTHER_IP, SINK_IP, 60))]);
      expect(t.delivered()).toBe(1);
      // A keypair older than REJECT_AFTER_TIME opens nothing.
      t.plane.setKeypairs(t.peer, { current: ours(SESSIONS.b, { ageMs: REJECT_AFTER_TIME + 1000 }), previous: null, next: null });
      const old = t.plane.drops();
      await t.arrive([fromPeer(SESSIONS.b, 1)]);
      expect(dropsSince(t, old, ["expired-keypair"])).toEqual({ "expired-keypair": 1 });
      expect(t.delivered()).toBe(1);
    });

    it("rotates keys: previous and current open, next is confirmed by its first packet, retired ones are unknown", async () => {
      t.plane.setKeypairs(t.peer, { current: ours(SESSIONS.b), previous: ours(SESSIONS.a), next: null });
      await t.arrive([fromPeer(SESSIONS.a, 1), fromPeer(SESSIONS.b, 1)]);
      expect(t.delivered()).toBe(2);
      expect(t.events.confirmed).toEqual([]);
      t.plane.setKeypairs(t.peer, { current: ours(SESSIONS.b), previous: ours(SESSIONS.a), next: ours(SESSIONS.c) });
      await t.arrive([fromPeer(SESSIONS.c, 1)]);
      expect(t.delivered()).toBe(3);
      await waitFor(() => t.events.confirmed.length > 0, { timeoutMs: 3000, what: "the keypair confirmation" });
      expect(t.events.confirmed).toEqual([SESSIONS.c.localIndex]);
      // The control plane follows: c current, b previous, a retired.
      t.plane.setKeypairs(t.peer, { current: ours(SESSIONS.c), previous: ours(SESSIONS.b), next: null });
      const before = t.plane.drops();
      await t.arrive([fromPeer(SESSIONS.a, 2), fromPeer(SESSIONS.b, 2)]);
      expect(dropsSince(t, before, ["unknown-index"])).toEqual({ "unknown-index": 1 });
      expect(t.delivered()).toBe(4);
      const [d] = await t.fromTun([100], 1);
      expect(receiverOf(d!)).toBe(SESSIONS.c.remoteIndex);
    });

    it("seals up to the counter limit, then hands packets back: handshake needed", async () => {
      t.plane.setKeypairs(t.peer, { current: ours(SESSIONS.a, { sendCounter: LIMIT - 2 }), previous: null, next: null });
      const passed = t.passedUp();
      const sent = await t.fromTun([100, 100, 100], 2);
      expect(sent.map(counterOf).sort((x, y) => x - y)).toEqual([LIMIT - 2, LIMIT - 1]);
      await waitFor(() => t.passedUp() === passed + 1, { timeoutMs: 3000, what: "the third packet to be handed back" });
      // What reaches the plane from JavaScript meets the same limit, and says why.
      const out: Uint8Array[] = [];
      t.plane.send(t.peer, [ip4(PEER_IP, SINK_IP, 60)], out);
      expect(out).toEqual([]);
      expect(t.events.handshakes.at(-1)).toEqual({ why: "keypair-exhausted", waiting: 1 });
      t.plane.setKeypairs(t.peer, { current: ours(SESSIONS.b, { ageMs: REJECT_AFTER_TIME + 1000 }), previous: null, next: null });
      t.plane.send(t.peer, [ip4(PEER_IP, SINK_IP, 60)], out);
      expect(t.events.handshakes.at(-1)).toEqual({ why: "keypair-expired", waiting: 1 });
      t.plane.setKeypairs(t.peer, { current: null, previous: null, next: null });
      t.plane.send(t.peer, [ip4(PEER_IP, SINK_IP, 60), new Uint8Array(0)], out);
      expect(t.events.handshakes.at(-1)).toEqual({ why: "no-keypair", waiting: 2 });
      expect(out).toEqual([]);
    });

    it("pushes what it received as activity, per burst", async () => {
      t.plane.setKeypairs(t.peer, { current: ours(SESSIONS.a), previous: null, next: null });
      const msgs = [fromPeer(SESSIONS.a, 1), fromPeer(SESSIONS.a, 2), fromPeer(SESSIONS.a, 3, new Uint8Array(0))];
      await t.arrive(msgs);
      const total = msgs.reduce((n, d) => n + d.length, 0);
      await waitFor(() => t.events.activities.reduce((n, a) => n + a.rxBytes, 0) >= total, { timeoutMs: 3000, what: "the received bytes to be reported" });
      expect(t.events.activities.reduce((n, a) => n + a.rxBytes, 0)).toBe(total);
      expect(t.events.activities.some((a) => a.receivedAgoMs !== undefined && a.dataReceivedAgoMs !== undefined)).toBe(true);
      expect(t.events.activities.every((a) => a.txBytes === 0)).toBe(true);
    });
  });
}
