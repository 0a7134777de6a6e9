import { describe, expect, it } from "vitest";
import { ExecError, formatArgv, isAlive as alive, runCommand, TrackedProcess } from "../helpers/proc.js";

describe("runCommand", () => {
  it("returns output and exit code", async () => {
    const r = await runCommand(["sh", "-c", "echo out; echo err >&2"]);
    expect(r).toEqual({ code: 0, signal: null, stdout: "out\n", stderr: "err\n" });
  });

  it("throws ExecError with the command line and stderr on failure", async () => {
    const err = await runCommand(["sh", "-c", "echo broken thing >&2; exit 3"]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExecError);
    expect((err as Error).message).toMatch(/`sh -c 'echo broken thing >&2; exit 3'` exited with code 3:\nbroken thing/);
    expect((err as ExecError).result?.code).toBe(3);
  });

  it("returns the result without throwing when check is false", async () => {
    const r = await runCommand(["sh", "-c", "exit 4"], { check: false });
    expect(r.code).toBe(4);
  });

  it("kills a command that runs too long", async () => {
    const start = Date.now();
    await expect(runCommand(["sleep", "30"], { timeoutMs: 200 })).rejects.toThrow(/timed out after 200 ms/);
    expect(Date.now() - start).toBeLessThan(5000);
  });

  it("passes input and environment", async () => {
    const r = await runCommand(["sh", "-c", 'read x; echo "$x $FOO"'], { input: "hello\n", env: { FOO: "bar" } });
    expect(r.stdout).toBe("hello bar\n");
  });

  it("reports a missing program clearly", async () => {
    await expect(runCommand(["/nonexistent/tswgt-program"])).rejects.toThrow(/could not run `\/nonexistent\/tswgt-program`/);
  });

  it("quotes arguments in messages", () => {
    expect(formatArgv(["a", "b c", "it's"])).toBe(`a 'b c' 'it'\\''s'`);
  });
});

describe("TrackedProcess", () => {
  it("waits for output and stops with SIGTERM", async () => {
    const p = new TrackedProcess(["sh", "-c", "echo ready; exec sleep 30"]);
    expect(await p.waitForOutput(/ready/)).toBe("ready");
    expect(p.running).toBe(true);
    const st = await p.stop(2000);
    expect(st.signal).toBe("SIGTERM");
    expect(p.running).toBe(false);
    expect(alive(p.pid)).toBe(false);
  });

  it("escalates to SIGKILL for a process group that ignores SIGTERM, children included", async () => {
    const p = new TrackedProcess(["sh", "-c", `trap '' TERM; sleep 30 & echo "child $!"; wait`]);
    const line = await p.waitForOutput(/child \d+/);
    const childPid = Number(line.split(" ")[1]);
    expect(alive(childPid)).toBe(true);
    const start = Date.now();
    const st = await p.stop(200);
    expect(st.signal).toBe("SIGKILL");
    expect(Date.now() - start).toBeGreaterThanOrEqual(190);
    // The grandchild was in the same group, so it got the SIGKILL too.
    await new Promise((r) => setTimeout(r, 100));
    expect(alive(childPid)).toBe(false);
  });

  it("rejects waitForOutput when the process exits first, quoting its output", async () => {
    const p = new TrackedProcess(["sh", "-c", "echo something else; exit 2"]);
    await expect(p.waitForOutput("never printed")).rejects.toThrow(/ended \(code 2\) before printing never printed; output:\nsomething else/);
  });

  it("rejects waitForOutput on timeout", async () => {
    const p = new TrackedProcess(["sleep", "30"]);
    try {
      await expect(p.waitForOutput("x", { timeoutMs: 100 })).rejects.toThrow(/timed out after 100 ms/);
    } finally {
      await p.stop();
    }
  });

  it("reports a program that cannot start", async () => {
    const p = new TrackedProcess(["/nonexistent/tswgt-program"]);
    await p.exited;
    expect(p.running).toBe(false);
    expect(p.startError?.message).toMatch(/ENOENT/);
    await expect(p.stop()).resolves.toBeDefined();
  });
});
