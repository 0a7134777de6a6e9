import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createLogger } from "../../src/log/logger.js";
import { isRunning, isUndoStep, Journal, recordState, recoverCrashed, selfId } from "../../src/quick/journal.js";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "tswgt-journal-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const quiet = createLogger({ level: "silent" });

describe("the crash-recovery record", () => {
  it("recognises its own process by pid and start time, not by pid alone", () => {
    const me = selfId();
    expect(me.start).toMatch(/^\d+$/);
    expect(isRunning(me)).toBe(true);
    expect(isRunning({ pid: me.pid, start: "1" })).toBe(false);
    expect(isRunning({ pid: 2 ** 22 + 12345, start: "" })).toBe(false);
  });

  it("is 'running' while its process lives, refuses recovery then, and goes on close", async () => {
    const j = Journal.open(dir, "wg7");
    j.add({ cmd: "ip", args: ["-4", "rule", "delete", "table", "51820"] });
    expect(recordState(dir, "wg7")).toEqual({ kind: "running", pid: process.pid });
    await expect(recoverCrashed(dir, "wg7", quiet)).rejects.toThrow(/already up \(pid \d+\)/);
    j.close();
    expect(recordState(dir, "wg7")).toEqual({ kind: "none" });
  });

  it("runs only removals of the kinds up makes, never other commands from the file", async () => {
    const marker = join(dir, "marker");
    const steps = [
      { cmd: "ip", args: ["netns", "exec", "x", "touch", marker] },
      { cmd: "sh", args: ["-c", `touch ${marker}`] },
      { cmd: "resolvconf", args: ["-a", "tun.wg7"] },
    ];
    for (const s of steps) expect(isUndoStep(s)).toBe(false);
    expect(isUndoStep({ cmd: "ip", args: ["-6", "rule", "delete", "table", "main", "suppress_prefixlength", "0"] })).toBe(true);
    expect(isUndoStep({ cmd: "ip", args: ["-n", "ns1", "-4", "rule", "delete", "table", "51820"] })).toBe(true);
    expect(isUndoStep({ cmd: "resolvconf", args: ["-d", "tun.wg7", "-f"] })).toBe(true);
    // A record of a process that has ended (its start time no longer matches).
    const record = { name: "wg7", process: { pid: process.pid, start: "1" }, netns: "", undo: steps };
    writeFileSync(join(dir, "wg7.json"), JSON.stringify(record));
    expect(recordState(dir, "wg7")).toMatchObject({ kind: "crashed", pid: process.pid });
    const warnings: string[] = [];
    const done = await recoverCrashed(dir, "wg7", createLogger({ level: "warn", sink: (l) => warnings.push(l), timestamps: false }));
    expect(done).toEqual([]);
    expect(existsSync(marker)).toBe(false);
    expect(warnings.filter((w) => /not a removal tswg makes/.test(w))).toHaveLength(3);
    expect(existsSync(join(dir, "wg7.json"))).toBe(false);
  });

  it("ignores a record that is not one", async () => {
    writeFileSync(join(dir, "wg8.json"), "{ not json");
    expect(recordState(dir, "wg8")).toEqual({ kind: "none" });
    expect(await recoverCrashed(dir, "wg8", quiet)).toEqual([]);
  });
});
