import { describe, expect, it } from "vitest";
import { ReceiveQueue } from "../../src/bind/receive-queue.js";

describe("ReceiveQueue", () => {
  it("returns queued items in order, at most batchSize at a time", async () => {
    const q = new ReceiveQueue<number>(10, 3);
    for (let i = 0; i < 7; i++) q.push(i);
    expect(await q.next()).toEqual([0, 1, 2]);
    expect(await q.next()).toEqual([3, 4, 5]);
    expect(await q.next()).toEqual([6]);
    expect(q.length).toBe(0);
  });

  it("holds its bound and counts drops", async () => {
    const q = new ReceiveQueue<number>(4, 100);
    const accepted = [];
    for (let i = 0; i < 10; i++) accepted.push(q.push(i));
    expect(accepted).toEqual([true, true, true, true, false, false, false, false, false, false]);
    expect(q.length).toBe(4);
    expect(q.dropped).toBe(6);
    expect(q.accepted).toBe(4);
    expect(await q.next()).toEqual([0, 1, 2, 3]);
    // Room again after draining, and the ring wraps correctly.
    for (let i = 10; i < 13; i++) q.push(i);
    expect(await q.next()).toEqual([10, 11, 12]);
  });

  it("wakes a waiting receiver on push", async () => {
    const q = new ReceiveQueue<string>(4, 4);
    const p = q.next();
    q.push("a");
    expect(await p).toEqual(["a"]);
  });

  it("serves several waiting receivers in turn, each with what arrived in one turn of the event loop", async () => {
    const q = new ReceiveQueue<string>(4, 4);
    const p1 = q.next();
    const p2 = q.next();
    q.push("a");
    q.push("b");
    expect(await p1).toEqual(["a", "b"]);
    q.push("c");
    expect(await p2).toEqual(["c"]);
  });

  it("wakes a waiting receiver with a whole turn's items, but no more than batchSize", async () => {
    const q = new ReceiveQueue<number>(10, 3);
    const p = q.next();
    for (let i = 0; i < 5; i++) q.push(i);
    expect(await p).toEqual([0, 1, 2]);
    expect(await q.next()).toEqual([3, 4]);
  });

  it("close resolves pending and later receives with null and drops what is queued", async () => {
    const q = new ReceiveQueue<number>(4, 4);
    const pending = q.next();
    q.close();
    expect(await pending).toBeNull();
    expect(q.push(1)).toBe(false);
    expect(await q.next()).toBeNull();
    q.close(); // idempotent

    const q2 = new ReceiveQueue<number>(4, 4);
    q2.push(1);
    q2.close();
    expect(await q2.next()).toBeNull();
    expect(q2.length).toBe(0);
  });

  it("rejects nonsensical sizes", () => {
    expect(() => new ReceiveQueue(0, 1)).toThrow(RangeError);
    expect(() => new ReceiveQueue(1, 0)).toThrow(RangeError);
    expect(() => new ReceiveQueue(1.5, 1)).toThrow(/positive integer/);
  });
});
