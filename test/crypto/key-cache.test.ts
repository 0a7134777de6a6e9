import { describe, expect, it } from "vitest";
import { KeyCache } from "../../src/crypto/key-cache.js";

describe("KeyCache", () => {
  it("evicts the least recently used entry beyond its capacity", () => {
    const c = new KeyCache<number>(2);
    c.set("a", 1);
    c.set("b", 2);
    expect(c.get("a")).toBe(1); // a is now most recent
    c.set("c", 3);
    expect(c.size).toBe(2);
    expect(c.get("b")).toBeUndefined();
    expect(c.get("a")).toBe(1);
    expect(c.get("c")).toBe(3);
  });

  it("stays bounded under a flood of distinct keys", () => {
    const c = new KeyCache<number>(16);
    for (let i = 0; i < 10_000; i++) c.set(String(i), i);
    expect(c.size).toBe(16);
    expect(c.get("9999")).toBe(9999);
    expect(c.get("0")).toBeUndefined();
  });

  it("refuses a non-positive capacity", () => {
    expect(() => new KeyCache(0)).toThrow(RangeError);
  });
});
