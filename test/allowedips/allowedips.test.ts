import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { AllowedIps } from "../../src/allowedips/allowedips.js";
import { parseIp } from "../../src/allowedips/ip.js";
import { maskPrefix, parseCidr, type Prefix } from "../../src/allowedips/prefix.js";

interface Peer {
  name: string;
}
const peer = (name: string): Peer => ({ name });

describe("AllowedIps", () => {
  it("finds the longest matching prefix", () => {
    const t = new AllowedIps<string>();
    t.insert("10.0.0.0/8", "a");
    t.insert("10.1.0.0/16", "b");
    t.insert("10.1.2.0/24", "c");
    t.insert("10.1.2.3/32", "d");
    expect(t.lookup("10.9.9.9")).toBe("a");
    expect(t.lookup("10.1.9.9")).toBe("b");
    expect(t.lookup("10.1.2.9")).toBe("c");
    expect(t.lookup("10.1.2.3")).toBe("d");
    expect(t.lookup("11.0.0.1")).toBeUndefined();
    expect(t.size).toBe(4);
  });

  it("finds the same regardless of insertion order", () => {
    const t = new AllowedIps<string>();
    t.insert("10.1.2.3/32", "d");
    t.insert("10.1.2.0/24", "c");
    t.insert("10.0.0.0/8", "a");
    t.insert("10.1.0.0/16", "b");
    expect(["10.9.9.9", "10.1.9.9", "10.1.2.9", "10.1.2.3"].map((a) => t.lookup(a))).toEqual(["a", "b", "c", "d"]);
  });

  it("handles siblings that split below a common prefix", () => {
    const t = new AllowedIps<string>();
    t.insert("192.168.1.0/24", "x");
    t.insert("192.168.2.0/24", "y");
    t.insert("192.168.3.128/25", "z");
    expect(t.lookup("192.168.1.1")).toBe("x");
    expect(t.lookup("192.168.2.1")).toBe("y");
    expect(t.lookup("192.168.3.200")).toBe("z");
    expect(t.lookup("192.168.3.1")).toBeUndefined();
    expect(t.lookup("192.168.0.1")).toBeUndefined();
  });

  it("supports /0 default routes for both families independently", () => {
    const t = new AllowedIps<string>();
    t.insert("0.0.0.0/0", "v4default");
    expect(t.lookup("203.0.113.9")).toBe("v4default");
    expect(t.lookup("2001:db8::1")).toBeUndefined();
    t.insert("::/0", "v6default");
    t.insert("2001:db8::/32", "doc");
    expect(t.lookup("2001:db8::1")).toBe("doc");
    expect(t.lookup("2001:db9::1")).toBe("v6default");
    expect(t.remove("0.0.0.0/0")).toBe(true);
    expect(t.lookup("203.0.113.9")).toBeUndefined();
    expect(t.lookup("2001:db9::1")).toBe("v6default");
  });

  it("keeps IPv4-mapped IPv6 separate from IPv4", () => {
    const t = new AllowedIps<string>();
    t.insert("10.0.0.0/8", "v4");
    expect(t.lookup("::ffff:10.0.0.1")).toBeUndefined();
    t.insert("::ffff:10.0.0.0/104", "mapped");
    expect(t.lookup("::ffff:10.0.0.1")).toBe("mapped");
    expect(t.lookup("10.0.0.1")).toBe("v4");
    expect(t.entriesFor("mapped")).toEqual(["::ffff:10.0.0.0/104"]);
  });

  it("masks host bits on insert and reports normalised prefixes", () => {
    const t = new AllowedIps<Peer>();
    const p = peer("p");
    t.insert("10.1.2.3/8", p);
    t.insert("fd00::1:2:3/64", p);
    t.insert("192.0.2.1", p);
    expect(t.entriesFor(p)).toEqual(["10.0.0.0/8", "192.0.2.1/32", "fd00::/64"]);
    expect(t.lookup("10.200.0.1")).toBe(p);
    expect(t.remove("10.9.9.9/8")).toBe(true);
    expect(t.lookup("10.200.0.1")).toBeUndefined();
  });

  it("moves a prefix to the last value inserted for it", () => {
    const t = new AllowedIps<Peer>();
    const a = peer("a");
    const b = peer("b");
    t.insert("10.0.0.0/24", a);
    t.insert("10.0.1.0/24", a);
    t.insert("10.0.0.0/24", b);
    expect(t.lookup("10.0.0.1")).toBe(b);
    expect(t.entriesFor(a)).toEqual(["10.0.1.0/24"]);
    expect(t.entriesFor(b)).toEqual(["10.0.0.0/24"]);
    expect(t.size).toBe(2);
    t.insert("10.0.0.0/24", b); // same value again: no change
    expect(t.size).toBe(2);
  });

  it("removeByValue removes only that value's prefixes and keeps the trie usable", () => {
    const t = new AllowedIps<Peer>();
    const a = peer("a");
    const b = peer("b");
    t.insert("10.0.0.0/8", a);
    t.insert("10.1.0.0/16", b);
    t.insert("10.1.1.0/24", a);
    t.insert("10.1.2.0/24", a);
    t.insert("fd00::/8", a);
    expect(t.removeByValue(a)).toBe(4);
    expect(t.removeByValue(a)).toBe(0);
    expect(t.entriesFor(a)).toEqual([]);
    expect(t.lookup("10.1.1.1")).toBe(b);
    expect(t.lookup("10.2.0.0")).toBeUndefined();
    expect(t.lookup("fd00::1")).toBeUndefined();
    expect(t.size).toBe(1);
    t.insert("10.1.1.0/24", a);
    expect(t.lookup("10.1.1.1")).toBe(a);
  });

  it("remove reports absent prefixes and does not remove covering ones", () => {
    const t = new AllowedIps<string>();
    t.insert("10.0.0.0/8", "a");
    t.insert("10.1.0.0/16", "b");
    t.insert("10.2.0.0/16", "c"); // creates a valueless fork under 10.0.0.0/8
    expect(t.remove("10.0.0.0/9")).toBe(false); // fork-free path, different length
    expect(t.remove("10.0.0.0/14")).toBe(false); // the fork's own prefix, which holds no value
    expect(t.remove("10.1.0.0/24")).toBe(false);
    expect(t.remove("11.0.0.0/8")).toBe(false);
    expect(t.remove("fd00::/8")).toBe(false);
    expect(t.lookup("10.1.0.1")).toBe("b");
    expect(t.size).toBe(3);
  });

  it("lookupV4 / lookupV6 read the address at an offset without touching the rest", () => {
    const t = new AllowedIps<string>();
    t.insert("192.0.2.0/24", "v4");
    t.insert("2001:db8::/32", "v6");
    const pkt = new Uint8Array(60);
    pkt.set(parseIp("192.0.2.99").bytes, 16); // IPv4 header: destination at 16
    expect(t.lookupV4(pkt, 16)).toBe("v4");
    expect(t.lookupV4(pkt, 12)).toBeUndefined();
    pkt.set(parseIp("2001:db8::42").bytes, 24); // IPv6 header: destination at 24
    expect(t.lookupV6(pkt, 24)).toBe("v6");
  });

  it("refuses reads outside the buffer with a RangeError", () => {
    const t = new AllowedIps<string>();
    expect(() => t.lookupV4(new Uint8Array(19), 16)).toThrow(RangeError);
    expect(() => t.lookupV6(new Uint8Array(39), 24)).toThrow(RangeError);
    expect(() => t.lookupV4(new Uint8Array(8), -1)).toThrow(RangeError);
  });

  it("rejects bad prefixes with clear errors and stays unchanged", () => {
    const t = new AllowedIps<string>();
    expect(() => t.insert("10.0.0.0/40", "x")).toThrow(/exceeds 32/);
    expect(() => t.insert({ bytes: new Uint8Array(3), bits: 8 }, "x")).toThrow(/4 or 16 bytes/);
    expect(() => t.lookup("not-an-ip")).toThrow(/not an IPv4 or IPv6/);
    expect(t.size).toBe(0);
  });

  it("clear empties everything", () => {
    const t = new AllowedIps<string>();
    t.insert("0.0.0.0/0", "a");
    t.insert("::/0", "a");
    t.clear();
    expect(t.size).toBe(0);
    expect(t.lookup("1.1.1.1")).toBeUndefined();
    expect(t.lookup("::1")).toBeUndefined();
    expect(t.entriesFor("a")).toEqual([]);
    expect(t.entries()).toEqual([]);
  });

  it("entries lists every prefix in order", () => {
    const t = new AllowedIps<string>();
    t.insert("fd00::/8", "c");
    t.insert("10.1.0.0/16", "b");
    t.insert("10.0.0.0/8", "a");
    expect(t.entries()).toEqual([
      ["10.0.0.0/8", "a"],
      ["10.1.0.0/16", "b"],
      ["fd00::/8", "c"],
    ]);
  });
});

/** The obviously correct reference: scan every prefix, keep the longest match. */
class NaiveTable {
  private readonly rows = new Map<string, { p: Prefix; v: number }>();
  insert(p: Prefix, v: number): void {
    const m = maskPrefix(p);
    this.rows.set(`${m.family}/${Array.from(m.bytes).join(".")}/${m.bits}`, { p: m, v });
  }
  remove(p: Prefix): boolean {
    const m = maskPrefix(p);
    return this.rows.delete(`${m.family}/${Array.from(m.bytes).join(".")}/${m.bits}`);
  }
  removeByValue(v: number): void {
    for (const [k, r] of this.rows) if (r.v === v) this.rows.delete(k);
  }
  lookup(bytes: Uint8Array): number | undefined {
    let best: { p: Prefix; v: number } | undefined;
    for (const r of this.rows.values()) {
      if (r.p.bytes.length !== bytes.length) continue;
      if (best !== undefined && best.p.bits >= r.p.bits) continue;
      const masked = maskPrefix({ family: r.p.family, bytes, bits: r.p.bits }).bytes;
      if (masked.every((b, i) => b === r.p.bytes[i])) best = r;
    }
    return best?.v;
  }
  get size(): number {
    return this.rows.size;
  }
}

describe("AllowedIps against a linear reference", () => {
  // Addresses drawn near a few bases, so prefixes nest and split at many depths.
  const address = (len: 4 | 16) =>
    fc
      .tuple(fc.constantFrom(0, 1, 2), fc.uint8Array({ minLength: len, maxLength: len }), fc.nat(len * 8))
      .map(([base, noise, keep]) => {
        const out = new Uint8Array(len);
        out.fill(base === 0 ? 0 : base === 1 ? 0x0a : 0xfd);
        // Keep the base for `keep` bits, then take the random bits.
        for (let i = 0; i < len * 8; i++) {
          if (i < keep) continue;
          const bit = (noise[i >> 3]! >> (7 - (i & 7))) & 1;
          out[i >> 3] = (out[i >> 3]! & ~(1 << (7 - (i & 7)))) | (bit << (7 - (i & 7)));
        }
        return out;
      });
  const prefix = fc.oneof(
    fc.tuple(address(4), fc.nat(32)).map(([bytes, bits]): Prefix => ({ family: 4, bytes, bits })),
    fc.tuple(address(16), fc.nat(128)).map(([bytes, bits]): Prefix => ({ family: 6, bytes, bits })),
  );
  const op = fc.oneof(
    { weight: 6, arbitrary: fc.tuple(fc.constant("insert" as const), prefix, fc.nat(5)) },
    { weight: 2, arbitrary: fc.tuple(fc.constant("remove" as const), prefix, fc.nat(5)) },
    { weight: 1, arbitrary: fc.tuple(fc.constant("removeByValue" as const), prefix, fc.nat(5)) },
  );

  it("agrees on every lookup after random inserts and removals", () => {
    fc.assert(
      fc.property(
        fc.array(op, { maxLength: 60 }),
        fc.array(fc.oneof(address(4), address(16)), { minLength: 30, maxLength: 30 }),
        (ops, probes) => {
          const t = new AllowedIps<number>();
          const ref = new NaiveTable();
          const inserted: Prefix[] = [];
          for (const [kind, p, v] of ops) {
            if (kind === "insert") {
              t.insert(p, v);
              ref.insert(p, v);
              inserted.push(p);
            } else if (kind === "remove") {
              // Half the time remove something that exists.
              const target = inserted.length > 0 && v % 2 === 0 ? inserted[v % inserted.length]! : p;
              expect(t.remove(target)).toBe(ref.remove(target));
            } else {
              t.removeByValue(v);
              ref.removeByValue(v);
            }
            expect(t.size).toBe(ref.size);
          }
          // Probe random addresses and the prefixes' own addresses (edge of each range).
          for (const a of [...probes, ...inserted.map((p) => p.bytes)]) {
            const got = a.length === 4 ? t.lookupV4(a) : t.lookupV6(a);
            expect(got).toBe(ref.lookup(a));
          }
        },
      ),
      { numRuns: 400 },
    );
  });

  it("entriesFor matches the reference's prefixes for each value", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(prefix, fc.nat(3)), { maxLength: 40 }), (items) => {
        const t = new AllowedIps<number>();
        const want = new Map<string, number>();
        for (const [p, v] of items) {
          t.insert(p, v);
          const m = maskPrefix(p);
          want.set(`${m.family}|${Array.from(m.bytes).join(",")}|${m.bits}`, v);
        }
        for (let v = 0; v <= 3; v++) {
          const got = t.entriesFor(v).map((s) => {
            const m = parseCidr(s);
            return `${m.family}|${Array.from(m.bytes).join(",")}|${m.bits}`;
          });
          const expected = [...want].filter(([, val]) => val === v).map(([k]) => k);
          expect(new Set(got)).toEqual(new Set(expected));
          expect(got.length).toBe(expected.length);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe("AllowedIps lookup speed", () => {
  it("does many lookups in a table of thousands of prefixes quickly", () => {
    const t = new AllowedIps<number>();
    for (let i = 0; i < 4096; i++) t.insert({ bytes: Uint8Array.of(10, i >> 8, i & 0xff, 0), bits: 24 }, i);
    const pkt = Uint8Array.of(10, 7, 33, 1);
    const start = performance.now();
    let hits = 0;
    for (let i = 0; i < 200_000; i++) {
      pkt[2] = i & 0xff;
      if (t.lookupV4(pkt, 0) !== undefined) hits++;
    }
    const ms = performance.now() - start;
    expect(hits).toBe(200_000);
    // Generous bound (about 1 µs per lookup) so only a pathological slowdown fails.
    expect(ms).toBeLessThan(200);
  });
});
