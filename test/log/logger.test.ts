import { describe, expect, it } from "vitest";
import { createLogger } from "../../src/log/logger.js";

describe("logger", () => {
  it("writes levelled, prefixed lines and honours the level", () => {
    const lines: string[] = [];
    const log = createLogger({ level: "info", prefix: "wg0", sink: (l) => lines.push(l), timestamps: false });
    log.debug("not shown");
    log.info("up");
    log.child("peer").warn("late");
    expect(lines).toEqual(["wg0 info: up", "wg0 peer warn: late"]);
  });

  it("summarises a flood instead of writing a line per event", async () => {
    const lines: string[] = [];
    let t = 5000;
    const log = createLogger({ level: "debug", sink: (l) => lines.push(l), timestamps: false, maxLinesPerSecond: 50, now: () => t });
    // 82 000 lines in one second, as a datagram flood at debug level produced.
    for (let i = 0; i < 82_000; i++) log.child("dev").debug(`dropped a datagram: invalid MAC1 (${i})`);
    log.error("errors always get through");
    expect(lines).toHaveLength(51);
    expect(lines[50]).toBe("error: errors always get through");
    // The next second starts with the summary of the last.
    t += 1000;
    log.info("next second");
    expect(lines.slice(51)).toEqual(["warn: 81950 more log lines in 1 s not shown (over 50/s), like: dev debug: dropped a datagram: invalid MAC1 (50)", "info: next second"]);
  });

  it("writes the summary when the second is over even if nothing else is logged", async () => {
    const lines: string[] = [];
    const log = createLogger({ level: "debug", sink: (l) => lines.push(l), timestamps: false, maxLinesPerSecond: 10 });
    for (let i = 0; i < 100; i++) log.debug(`line ${i}`);
    expect(lines).toHaveLength(10);
    await new Promise((r) => setTimeout(r, 1100));
    expect(lines).toHaveLength(11);
    expect(lines[10]).toMatch(/^warn: 90 more log lines in 1 s not shown/);
  });
});
