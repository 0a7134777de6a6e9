import { describe, expect, it } from "vitest";
import { getBackend } from "../../src/crypto/index.js";
import { COOKIE_REFRESH_TIME } from "../../src/noise/constants.js";
import { CookieChecker, CookieGenerator, cryptoRandom } from "../../src/noise/cookie.js";
import { IndexTable } from "../../src/noise/indextable.js";
import { Keypair, KeypairSlots } from "../../src/noise/keypair.js";
import { encodeInitiation, parseCookieReply } from "../../src/noise/messages.js";

const backend = getBackend();

function initiation(sender = 1): Uint8Array {
  return encodeInitiation({
    sender,
    ephemeral: new Uint8Array(32).fill(1),
    encryptedStatic: new Uint8Array(48).fill(2),
    encryptedTimestamp: new Uint8Array(28).fill(3),
  });
}

describe("cookies", () => {
  const responder = backend.publicKey(backend.generatePrivateKey());
  const source = new Uint8Array([10, 0, 0, 1, 0xca, 0x6c]);

  it("checks mac1 against the responder's key", () => {
    const now = 0;
    const checker = new CookieChecker(backend, () => now);
    checker.setPublicKey(responder);
    const gen = new CookieGenerator(backend, responder, () => now);
    const msg = initiation();
    expect(checker.checkMac1(msg)).toBe(false); // no MACs yet
    gen.addMacs(msg);
    expect(checker.checkMac1(msg)).toBe(true);
    const other = new CookieGenerator(backend, backend.publicKey(backend.generatePrivateKey()), () => now);
    const msg2 = initiation();
    other.addMacs(msg2);
    expect(checker.checkMac1(msg2)).toBe(false);
    checker.setPublicKey(null);
    expect(checker.checkMac1(msg)).toBe(false);
  });

  it("hands out a cookie that makes mac2 valid for that source only, until it expires", () => {
    let now = 0;
    const checker = new CookieChecker(backend, () => now);
    checker.setPublicKey(responder);
    const gen = new CookieGenerator(backend, responder, () => now);
    const msg = initiation(42);
    gen.addMacs(msg);
    expect(checker.checkMac2(msg, source)).toBe(false);
    const replyBytes = checker.createReply(msg, 42, source)!;
    const reply = parseCookieReply(replyBytes)!;
    expect(reply.receiver).toBe(42);
    expect(gen.consumeReply(reply)).toBe(true);
    expect(gen.hasCookie()).toBe(true);
    const again = initiation(43);
    gen.addMacs(again);
    expect(checker.checkMac2(again, source)).toBe(true);
    expect(checker.checkMac2(again, new Uint8Array([10, 0, 0, 2, 0xca, 0x6c]))).toBe(false);
    // A reply is only accepted for the mac1 sent last.
    expect(gen.consumeReply(reply)).toBe(false);
    now += COOKIE_REFRESH_TIME + 1;
    expect(gen.hasCookie()).toBe(false);
    const late = initiation(44);
    gen.addMacs(late);
    expect(late.subarray(132).every((b) => b === 0)).toBe(true);
    expect(checker.checkMac2(again, source)).toBe(false); // the secret has expired too
  });

  it("rotates the cookie secret after COOKIE_REFRESH_TIME", () => {
    let now = 0;
    const secrets: Uint8Array[] = [];
    const random = (n: number) => {
      const b = backend.hash(new Uint8Array([secrets.length])).subarray(0, n);
      if (n === 32) secrets.push(b);
      return b;
    };
    const checker = new CookieChecker(backend, () => now, random);
    checker.setPublicKey(responder);
    const msg = initiation();
    checker.createReply(msg, 1, source);
    now += 60_000;
    checker.createReply(msg, 1, source);
    expect(secrets).toHaveLength(1);
    now += COOKIE_REFRESH_TIME;
    checker.createReply(msg, 1, source);
    expect(secrets).toHaveLength(2);
  });
});

describe("cryptoRandom", () => {
  it("hands out fresh bytes of the asked length, across refills of its pool and past it", () => {
    const seen = new Set<string>();
    let ones = 0;
    let bits = 0;
    for (let i = 0; i < 2_000; i++) {
      const n = [4, 24, 32, 1, 300][i % 5]!;
      const r = cryptoRandom(n);
      expect(r.length).toBe(n);
      if (n >= 24) {
        const hex = Buffer.from(r).toString("hex");
        expect(seen.has(hex)).toBe(false);
        seen.add(hex);
      }
      for (const b of r) for (let k = 0; k < 8; k++) ones += (b >> k) & 1;
      bits += 8 * n;
    }
    // Far more than one 4 KiB pool was used; the bits are balanced, not zeros from a wiped pool.
    expect(bits / 8).toBeGreaterThan(100_000);
    expect(ones / bits).toBeGreaterThan(0.49);
    expect(ones / bits).toBeLessThan(0.51);
  });
});

describe("IndexTable", () => {
  it("allocates unique non-zero indices, retrying collisions and zero", () => {
    const seq = [[0, 0, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0], [2, 0, 0, 0], [255, 255, 255, 255]];
    let i = 0;
    const t = new IndexTable<string>(() => new Uint8Array(seq[i++]!));
    expect(t.allocate("a")).toBe(1);
    expect(t.allocate("b")).toBe(2);
    expect(t.allocate("c")).toBe(0xffffffff);
    expect(t.get(2)).toBe("b");
    t.replace(2, "B");
    expect(t.get(2)).toBe("B");
    expect(() => t.replace(7, "x")).toThrow();
    t.delete(2);
    expect(t.get(2)).toBeUndefined();
    expect(t.size).toBe(2);
  });

  it("gives distinct random indices with the default CSPRNG", () => {
    const t = new IndexTable<number>();
    const seen = new Set<number>();
    for (let i = 0; i < 5000; i++) seen.add(t.allocate(i));
    expect(seen.size).toBe(5000);
    expect(seen.has(0)).toBe(false);
  });
});

describe("KeypairSlots", () => {
  const kp = (index: number, initiator: boolean) =>
    new Keypair(new Uint8Array(32), new Uint8Array(32), index, index + 100, 0, initiator);

  it("puts the initiator's keypair in current at once", () => {
    const s = new KeypairSlots();
    const k1 = kp(1, true);
    expect(s.install(k1)).toEqual([]);
    expect(s.current).toBe(k1);
    const k2 = kp(2, true);
    expect(s.install(k2)).toEqual([]);
    expect([s.previous, s.current, s.next]).toEqual([k1, k2, null]);
    const k3 = kp(3, true);
    expect(s.install(k3)).toEqual([k1]);
    expect([s.previous, s.current]).toEqual([k2, k3]);
  });

  it("holds the responder's keypair in next until data arrives under it", () => {
    const s = new KeypairSlots();
    const k1 = kp(1, true);
    s.install(k1);
    const k2 = kp(2, false);
    expect(s.install(k2)).toEqual([]);
    expect([s.previous, s.current, s.next]).toEqual([null, k1, k2]);
    expect(s.received(k1)).toEqual({ promoted: false, dropped: null });
    expect(s.received(k2)).toEqual({ promoted: true, dropped: null });
    expect([s.previous, s.current, s.next]).toEqual([k1, k2, null]);
    // A second unconfirmed responder keypair replaces neither current nor the first next twice.
    const k3 = kp(3, false);
    const k4 = kp(4, false);
    expect(s.install(k3)).toEqual([k1]);
    expect(s.install(k4)).toEqual([k3]);
    // An initiator keypair arriving while next is pending keeps next as previous.
    const k5 = kp(5, true);
    expect(s.install(k5)).toEqual([k2]);
    expect([s.previous, s.current, s.next]).toEqual([k4, k5, null]);
    expect(s.clear()).toEqual([k4, k5]);
    expect(s.all()).toEqual([]);
  });
});
