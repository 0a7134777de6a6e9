import { describe, expect, it } from "vitest";
import { sleep, waitFor, WaitTimeoutError } from "../helpers/wait.js";

describe("waitFor", () => {
  it("returns the first satisfying value", async () => {
    let n = 0;
    const v = await waitFor(() => (++n >= 3 ? `done after ${n}` : false), { what: "three tries", intervalMs: 5 });
    expect(v).toBe("done after 3");
  });

  it("treats 0 and empty string as satisfied, and awaits promises", async () => {
    expect(await waitFor(() => 0, { what: "zero" })).toBe(0);
    expect(await waitFor(async () => "", { what: "empty" })).toBe("");
  });

  it("retries through exceptions", async () => {
    let n = 0;
    const v = await waitFor(
      () => {
        if (++n < 3) throw new Error("not yet");
        return n;
      },
      { what: "no throw", intervalMs: 5 },
    );
    expect(v).toBe(3);
  });

  it("fails with a message naming what and the last error", async () => {
    const err = await waitFor(
      () => {
        throw new Error("port still closed");
      },
      { what: "the server to listen", timeoutMs: 120, intervalMs: 10 },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WaitTimeoutError);
    expect((err as Error).message).toMatch(/timed out after 120 ms .*waiting for the server to listen; last error: port still closed/);
  });

  it("does not hang when an attempt never settles", async () => {
    const start = Date.now();
    await expect(waitFor(() => new Promise<boolean>(() => {}), { what: "a promise that never settles", timeoutMs: 150 })).rejects.toThrow(
      /waiting for a promise that never settles/,
    );
    expect(Date.now() - start).toBeLessThan(2000);
  });

  it("sleep waits at least the given time", async () => {
    const start = Date.now();
    await sleep(30);
    expect(Date.now() - start).toBeGreaterThanOrEqual(25);
  });
});
