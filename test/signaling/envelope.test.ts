/**
 * Sealed envelopes: round trips, and every way a blob can be wrong — wrong key, a flipped bit
 * anywhere, replays, stale or future timestamps, unknown senders, another recipient.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { getBackend } from "../../src/crypto/index.js";
import {
  DEFAULT_MAX_CLOCK_SKEW_MS,
  ENVELOPE_HEADER_LENGTH,
  ENVELOPE_OVERHEAD,
  EnvelopeCodec,
  parseEnvelopeHeader,
  type OpenResult,
} from "../../src/signaling/envelope.js";

const backend = getBackend("node");
const newKey = (): Uint8Array => backend.generatePrivateKey();
const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (r: OpenResult): string => (r.ok ? new TextDecoder().decode(r.plaintext) : `<${r.reason}>`);

function pair(now: () => number = Date.now) {
  const a = new EnvelopeCodec(newKey(), { now });
  const b = new EnvelopeCodec(newKey(), { now });
  return { a, b };
}

describe("envelope", () => {
  it("round-trips and names the sender", () => {
    const { a, b } = pair();
    const blob = a.seal(b.publicKey, text("hello"));
    expect(blob.length).toBe(ENVELOPE_OVERHEAD + 5);
    const r = b.open(blob);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(str(r)).toBe("hello");
    expect(r.sender).toEqual(a.publicKey);
    // and back the other way (the other direction key)
    const back = b.open(b.seal(a.publicKey, text("x")));
    expect(back.ok).toBe(false);
    expect(str(a.open(b.seal(a.publicKey, text("reply"))))).toBe("reply");
  });

  it("works across crypto backends", () => {
    const a = new EnvelopeCodec(newKey(), { backend: getBackend("stablelib") });
    const b = new EnvelopeCodec(newKey(), { backend: getBackend("node") });
    expect(str(b.open(a.seal(b.publicKey, text("cross"))))).toBe("cross");
  });

  it("header carries version, keys and a growing counter", () => {
    let t = 1_700_000_000_000;
    const { a, b } = pair(() => t);
    const h1 = parseEnvelopeHeader(a.seal(b.publicKey, text("1")))!;
    const h2 = parseEnvelopeHeader(a.seal(b.publicKey, text("2")))!;
    t += 5;
    const h3 = parseEnvelopeHeader(a.seal(b.publicKey, text("3")))!;
    expect(h1.version).toBe(1);
    expect(h1.sender).toEqual(a.publicKey);
    expect(h1.receiver).toEqual(b.publicKey);
    expect([h1.timestampMs, h1.sequence]).toEqual([1_700_000_000_000, 0]);
    expect([h2.timestampMs, h2.sequence]).toEqual([1_700_000_000_000, 1]);
    expect([h3.timestampMs, h3.sequence]).toEqual([1_700_000_000_005, 0]);
    expect(h1.nonce).not.toEqual(h2.nonce);
    expect(parseEnvelopeHeader(new Uint8Array(ENVELOPE_OVERHEAD - 1))).toBeNull();
  });

  it("a clock going backwards does not make the counter repeat", () => {
    let t = 2_000_000;
    const { a, b } = pair(() => t);
    const first = parseEnvelopeHeader(a.seal(b.publicKey, text("x")))!;
    t -= 1000;
    const second = parseEnvelopeHeader(a.seal(b.publicKey, text("y")))!;
    expect(second.timestampMs).toBe(first.timestampMs);
    expect(second.sequence).toBe(first.sequence + 1);
  });

  it("a wrong private key cannot open it", () => {
    const { a, b } = pair();
    const blob = a.seal(b.publicKey, text("secret"));
    // A codec with another key, but told it is b: forge the receiver check by using b's public key bytes.
    const impostor = new EnvelopeCodec(newKey());
    Object.defineProperty(impostor, "publicKey", { value: b.publicKey });
    expect(impostor.open(blob)).toMatchObject({ ok: false, reason: "bad-seal" });
    expect(b.open(blob).ok).toBe(true);
  });

  it("flipping any bit of the envelope makes it fail", () => {
    const { a, b } = pair();
    const blob = a.seal(b.publicKey, text("tamper me"));
    for (let i = 0; i < blob.length; i++) {
      const bad = blob.slice();
      bad[i]! ^= 1 << (i % 8);
      const r = b.open(bad);
      expect(r.ok, `byte ${i}`).toBe(false);
    }
    // Only after all the forgeries, the genuine one still opens (forgeries did not touch replay state).
    expect(b.open(blob).ok).toBe(true);
  });

  it("random tampering and truncation never open and never throw", () => {
    const { a, b } = pair();
    const blob = a.seal(b.publicKey, text("fuzz"));
    fc.assert(
      fc.property(fc.nat(blob.length - 1), fc.integer({ min: 1, max: 255 }), fc.nat(blob.length), (i, x, cut) => {
        const bad = blob.slice(0, Math.max(cut, i + 1));
        bad[i]! ^= x;
        expect(b.open(bad).ok).toBe(false);
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (junk) => {
        expect(b.open(junk).ok).toBe(false);
      }),
    );
  });

  it("refuses replays, also after many newer messages", () => {
    const { a, b } = pair();
    const first = a.seal(b.publicKey, text("1"));
    expect(b.open(first).ok).toBe(true);
    expect(b.open(first)).toMatchObject({ ok: false, reason: "replay" });
    for (let i = 0; i < 20; i++) expect(b.open(a.seal(b.publicKey, text(`m${i}`))).ok).toBe(true);
    expect(b.open(first)).toMatchObject({ ok: false, reason: "replay" });
  });

  it("accepts reordering within the window, not beyond it", () => {
    let t = 10_000_000;
    const now = () => t;
    const a = new EnvelopeCodec(newKey(), { now });
    const b = new EnvelopeCodec(newKey(), { now, reorderWindowMs: 1000 });
    const early = a.seal(b.publicKey, text("early"));
    t += 500;
    const late = a.seal(b.publicKey, text("late"));
    expect(str(b.open(late))).toBe("late");
    expect(str(b.open(early))).toBe("early"); // 500 ms behind: inside the window
    expect(b.open(early)).toMatchObject({ ok: false, reason: "replay" });
    const stale = a.seal(b.publicKey, text("stale")); // same ms as `late`, next sequence
    t += 5000;
    expect(str(b.open(a.seal(b.publicKey, text("newest"))))).toBe("newest");
    expect(b.open(stale)).toMatchObject({ ok: false, reason: "replay" }); // 5 s behind: outside
  });

  it("refuses timestamps far in the past or future", () => {
    const receiverClock = 1_000_000_000_000;
    const b = new EnvelopeCodec(newKey(), { now: () => receiverClock });
    const old = new EnvelopeCodec(newKey(), { now: () => receiverClock - DEFAULT_MAX_CLOCK_SKEW_MS - 1000 });
    expect(b.open(old.seal(b.publicKey, text("old")))).toMatchObject({ ok: false, reason: "clock-skew" });
    const future = new EnvelopeCodec(newKey(), { now: () => receiverClock + DEFAULT_MAX_CLOCK_SKEW_MS + 1000 });
    expect(b.open(future.seal(b.publicKey, text("future")))).toMatchObject({ ok: false, reason: "clock-skew" });
    const skewed = new EnvelopeCodec(newKey(), { now: () => receiverClock + DEFAULT_MAX_CLOCK_SKEW_MS - 1000 });
    expect(b.open(skewed.seal(b.publicKey, text("ok"))).ok).toBe(true);
  });

  it("refuses unknown senders before decrypting, and blobs for another key", () => {
    const { a, b } = pair();
    const c = new EnvelopeCodec(newKey());
    const blob = a.seal(b.publicKey, text("for b"));
    const known = (k: Uint8Array) => Buffer.from(k).equals(Buffer.from(c.publicKey));
    expect(b.open(blob, known)).toMatchObject({ ok: false, reason: "unknown-sender" });
    expect(c.open(blob)).toMatchObject({ ok: false, reason: "wrong-recipient" });
    // refusing did not consume it
    expect(b.open(blob).ok).toBe(true);
  });

  it("refuses other versions and a low-order sender key", () => {
    const { a, b } = pair();
    const blob = a.seal(b.publicKey, text("v"));
    const v2 = blob.slice();
    v2[0] = 2;
    expect(b.open(v2)).toMatchObject({ ok: false, reason: "version" });
    const lowOrder = blob.slice();
    lowOrder.fill(0, 1, 33); // sender = the all-zero point
    expect(b.open(lowOrder)).toMatchObject({ ok: false, reason: "bad-seal" });
    expect(() => a.seal(new Uint8Array(32), text("x"))).toThrow();
    expect(() => a.seal(new Uint8Array(31), text("x"))).toThrow(/32-byte/);
  });

  it("header is the authenticated data (a swapped header does not verify)", () => {
    const { a, b } = pair();
    const one = a.seal(b.publicKey, text("one"));
    const two = a.seal(b.publicKey, text("two"));
    const spliced = new Uint8Array(two);
    spliced.set(one.subarray(0, ENVELOPE_HEADER_LENGTH - 24)); // header of `one` with nonce of `two`
    expect(b.open(spliced).ok).toBe(false);
  });
});
