import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { LogFileCap } from "../../src/log/file-cap.js";

describe("LogFileCap", () => {
  it("keeps an appended log file under its cap, moving the old content to .1", () => {
    const dir = mkdtempSync(join(tmpdir(), "tswgt-logcap-"));
    const path = join(dir, "wg0.log");
    const fd = openSync(path, "a", 0o640);
    const cap = new LogFileCap(path, fd, 10_000);
    try {
      let last = "";
      for (let i = 0; i < 5000; i++) {
        last = `2026-01-01T00:00:00.000Z wg0 debug: line ${i}\n`;
        writeSync(fd, last);
        cap.wrote(last.length);
        // Never much more than the cap, however long it runs.
        expect(statSync(path).size).toBeLessThan(10_000 + 2600);
      }
      expect(readFileSync(path, "utf8").endsWith(last)).toBe(true);
      expect(existsSync(`${path}.1`)).toBe(true);
      const older = readFileSync(`${path}.1`, "utf8");
      expect(older.length).toBeGreaterThan(10_000);
      expect(older).toMatch(/^2026-01-01T00:00:00\.000Z wg0 debug: line \d+\n/);
    } finally {
      cap.stop();
      closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
