/** The in-process hub: delivery by key, delay and loss, and going down and back up. */
import { describe, expect, it } from "vitest";
import { getBackend } from "../../src/crypto/index.js";
import { SignalingUnavailableError } from "../../src/signaling/errors.js";
import { MemoryHub } from "../../src/signaling/memory.js";
import { waitFor } from "../helpers/wait.js";

const b = getBackend("node");
const key = () => b.publicKey(b.generatePrivateKey());

describe("MemoryHub", () => {
  it("delivers blobs to the transports subscribed to the recipient key only", async () => {
    const hub = new MemoryHub();
    const [ka, kb, kc] = [key(), key(), key()];
    const got: Record<string, Uint8Array[]> = { a: [], b: [], c: [] };
    const ta = hub.transport();
    const tb = hub.transport();
    const tc = hub.transport();
    await ta.open(ka, (x) => got.a!.push(x));
    await tb.open(kb, (x) => got.b!.push(x));
    await tc.open(kc, (x) => got.c!.push(x));
    expect(ta.connected).toBe(true);
    await ta.send(kb, Uint8Array.of(1, 2, 3));
    await waitFor(() => got.b!.length === 1, { what: "delivery" });
    expect(got.b![0]).toEqual(Uint8Array.of(1, 2, 3));
    expect(got.a).toHaveLength(0);
    expect(got.c).toHaveLength(0);
    await Promise.all([ta.close(), tb.close(), tc.close()]);
    await expect(ta.send(kb, Uint8Array.of(1))).rejects.toThrow(/closed/);
  });

  it("drops with the configured rate and delays with the configured delay", async () => {
    let r = 0;
    const seq = [0.1, 0.9]; // first dropped, second kept (dropRate 0.5)
    const hub = new MemoryHub({ dropRate: 0.5, delayMs: 60, random: () => seq[r++ % 2]! });
    const [ka, kb] = [key(), key()];
    const got: number[] = [];
    const ta = hub.transport();
    const tb = hub.transport();
    await ta.open(ka, () => {});
    await tb.open(kb, (x) => got.push(x[0]!));
    const t0 = Date.now();
    await ta.send(kb, Uint8Array.of(1));
    await ta.send(kb, Uint8Array.of(2));
    await waitFor(() => got.length === 1, { what: "the kept blob" });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(55);
    expect(got).toEqual([2]);
    expect(hub.stats).toMatchObject({ sent: 2, delivered: 1, dropped: 1 });
    await ta.close();
    await tb.close();
  });

  it("going down disconnects everyone; sends wait, then fail or go through once it is back up", async () => {
    const hub = new MemoryHub();
    const [ka, kb] = [key(), key()];
    const events: string[] = [];
    const got: number[] = [];
    const ta = hub.transport({ sendWaitMs: 100 });
    const tb = hub.transport();
    ta.on("connected", () => events.push("up")).on("disconnected", () => events.push("down"));
    await ta.open(ka, () => {});
    await tb.open(kb, (x) => got.push(x[0]!));
    hub.down();
    expect(ta.connected).toBe(false);
    await expect(ta.send(kb, Uint8Array.of(1))).rejects.toBeInstanceOf(SignalingUnavailableError);
    const pending = hub.transport({ sendWaitMs: 2000 });
    const opened = pending.open(key(), () => {});
    const sent = ta.send(kb, Uint8Array.of(9)).catch((e: unknown) => e);
    setTimeout(() => hub.bringUp(), 50);
    await opened;
    expect(await sent).toBeUndefined(); // back within ta's 100 ms wait: sent after all
    await ta.send(kb, Uint8Array.of(2));
    await waitFor(() => got.length === 2, { what: "delivery after coming back" });
    expect(got).toEqual([9, 2]);
    expect(events).toEqual(["up", "down", "up"]);
    await Promise.all([ta.close(), tb.close(), pending.close()]);
  });

  it("open() on a hub that stays down rejects with a clear error", async () => {
    const hub = new MemoryHub();
    hub.down();
    const t = hub.transport({ connectTimeoutMs: 50 });
    await expect(t.open(key(), () => {})).rejects.toThrow(/hub is down/);
    await t.close();
  });

  it("blobs in flight when the hub goes down are lost", async () => {
    const hub = new MemoryHub({ delayMs: 50 });
    const [ka, kb] = [key(), key()];
    const got: number[] = [];
    const ta = hub.transport();
    const tb = hub.transport();
    await ta.open(ka, () => {});
    await tb.open(kb, (x) => got.push(x[0]!));
    await ta.send(kb, Uint8Array.of(1));
    hub.down();
    hub.bringUp();
    await new Promise((r) => setTimeout(r, 100));
    expect(got).toEqual([]);
    expect(hub.stats.dropped).toBe(1);
    await Promise.all([ta.close(), tb.close()]);
  });
});
