import { describe, expect, it } from "vitest";
import { MemoryTun } from "../../src/tun/memory.js";

const ipv4 = (n: number, length = 20): Uint8Array => {
  const p = new Uint8Array(length);
  p[0] = 0x45;
  p[1] = n & 0xff;
  return p;
};
const ipv6 = (): Uint8Array => {
  const p = new Uint8Array(40);
  p[0] = 0x60;
  return p;
};
const nextEvent = (tun: MemoryTun): Promise<[string, unknown[]]> =>
  new Promise((resolve) => {
    for (const name of ["up", "down", "mtu"]) {
      tun.events.once(name, (...args: unknown[]) => resolve([name, args]));
    }
  });

describe("MemoryTun", () => {
  it("delivers injected packets to read() in batches of at most batchSize", async () => {
    const tun = new MemoryTun({ batchSize: 4 });
    expect(tun.host.inject(Array.from({ length: 10 }, (_, i) => ipv4(i)))).toBe(10);
    const sizes: number[] = [];
    const seen: number[] = [];
    for (let i = 0; i < 3; i++) {
      const batch = await tun.read();
      expect(batch).not.toBeNull();
      sizes.push(batch!.length);
      seen.push(...batch!.map((p) => p[1]));
    }
    expect(sizes).toEqual([4, 4, 2]);
    expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    await tun.close();
  });

  it("wakes a pending read when packets are injected", async () => {
    const tun = new MemoryTun();
    const pending = tun.read();
    tun.host.inject([ipv4(7)]);
    const batch = await pending;
    expect(batch?.map((p) => p[1])).toEqual([7]);
    await tun.close();
  });

  it("copies packets both ways", async () => {
    const tun = new MemoryTun();
    const injected = ipv4(1);
    tun.host.inject([injected]);
    injected[1] = 99;
    expect((await tun.read())![0][1]).toBe(1);

    const written = ipv4(2);
    await tun.write([written]);
    written[1] = 99;
    expect(tun.host.drain()[0][1]).toBe(2);
    await tun.close();
  });

  it("hands written IPv4 and IPv6 packets to the host and drops anything else, counting it", async () => {
    const tun = new MemoryTun();
    await tun.write([ipv4(1), new Uint8Array(0), Uint8Array.of(0x10, 0, 0), ipv6()]);
    const got = await tun.host.read();
    expect(got?.map((p) => p[0] >> 4)).toEqual([4, 6]);
    expect(tun.stats()).toMatchObject({ written: 2, writeDropped: 2 });
    await tun.close();
  });

  it("drops traffic while the link is down and reports up/down changes", async () => {
    const tun = new MemoryTun();
    expect((await nextEvent(tun))[0]).toBe("up");
    const down = nextEvent(tun);
    tun.host.setUp(false);
    expect((await down)[0]).toBe("down");
    expect(tun.isUp()).toBe(false);
    expect(tun.host.inject([ipv4(1)])).toBe(0);
    await tun.write([ipv4(2)]);
    expect(tun.host.drain()).toEqual([]);
    expect(tun.stats()).toMatchObject({ injectDropped: 1, writeDropped: 1 });
    const up = nextEvent(tun);
    tun.host.setUp(true);
    expect((await up)[0]).toBe("up");
    expect(tun.host.inject([ipv4(3)])).toBe(1);
    await tun.close();
  });

  it("starts down when asked and says so", async () => {
    const tun = new MemoryTun({ up: false });
    expect((await nextEvent(tun))[0]).toBe("down");
    await tun.close();
  });

  it("emits mtu with the new value and rejects impossible MTUs", async () => {
    const tun = new MemoryTun({ mtu: 1420 });
    await nextEvent(tun); // initial "up"
    const event = nextEvent(tun);
    tun.host.setMtu(1280);
    expect(await event).toEqual(["mtu", [1280]]);
    expect(tun.mtu()).toBe(1280);
    expect(() => tun.host.setMtu(20)).toThrow(/invalid MTU 20/);
    expect(() => new MemoryTun({ mtu: 70000 })).toThrow(/invalid MTU/);
    await tun.close();
  });

  it("bounds both queues and counts what overflows", async () => {
    const tun = new MemoryTun({ queueLimit: 3 });
    expect(tun.host.inject([ipv4(1), ipv4(2), ipv4(3), ipv4(4), ipv4(5)])).toBe(3);
    await tun.write([ipv4(1), ipv4(2), ipv4(3), ipv4(4)]);
    expect(tun.stats()).toEqual({ injected: 3, injectDropped: 2, written: 3, writeDropped: 1 });
    await tun.close();
  });

  it("resolves a pending read with null on close, and later reads too", async () => {
    const tun = new MemoryTun();
    const pending = tun.read();
    await tun.close();
    await expect(pending).resolves.toBeNull();
    await expect(tun.read()).resolves.toBeNull();
    await tun.close(); // idempotent
  });

  it("lets the host collect packets written before close, then ends", async () => {
    const tun = new MemoryTun();
    await tun.write([ipv4(1)]);
    await tun.close();
    await tun.write([ipv4(2)]);
    expect((await tun.host.read())?.length).toBe(1);
    await expect(tun.host.read()).resolves.toBeNull();
    expect(tun.stats().writeDropped).toBe(1);
    expect(tun.host.inject([ipv4(3)])).toBe(0);
  });

  it("limits host reads to the requested count", async () => {
    const tun = new MemoryTun();
    await tun.write([ipv4(1), ipv4(2), ipv4(3)]);
    expect((await tun.host.read(2))?.length).toBe(2);
    expect(tun.host.drain().length).toBe(1);
    expect(() => tun.host.drain(0)).toThrow(RangeError);
    await tun.close();
  });
});
