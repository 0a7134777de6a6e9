/**
 * Running commands for test beds: short commands with a timeout, and long-running processes that
 * are tracked so they can always be stopped by PID.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";

export interface ExecOptions {
  /** Throw {@link ExecError} on a non-zero exit. Default true. */
  check?: boolean;
  /** Kill the command (SIGKILL) and throw after this long. Default 30000 ms. */
  timeoutMs?: number;
  /** Extra environment variables, added to this process's environment. */
  env?: Record<string, string>;
  /** Written to the command's standard input, which is then closed. */
  input?: string | Uint8Array;
}

export interface ExecResult {
  /** Exit code, or null when the command was ended by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** A command that failed, ran too long or could not start; the message has the command line and stderr. */
export class ExecError extends Error {
  constructor(
    message: string,
    readonly argv: readonly string[],
    readonly result: ExecResult | null,
  ) {
    super(message);
    this.name = "ExecError";
  }
}

export function formatArgv(argv: readonly string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(" ");
}

/** Runs `argv` to completion. Never hangs: the timeout kills it by PID. */
export function runCommand(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const line = formatArgv(argv);
  return new Promise<ExecResult>((resolve, reject) => {
    if (argv.length === 0) {
      reject(new ExecError("runCommand: empty command", argv, null));
      return;
    }
    const child = spawn(argv[0]!, argv.slice(1), {
      env: opts.env ? { ...process.env, ...opts.env } : process.env,
      stdio: ["pipe", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (d: Buffer) => out.push(d));
    child.stderr.on("data", (d: Buffer) => err.push(d));
    child.stdin.on("error", () => {}); // the command may exit without reading its input
    child.stdin.end(opts.input ?? "");
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) {
        try {
          process.kill(child.pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
    }, timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(new ExecError(`could not run \`${line}\`: ${e.message}`, argv, null));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const result: ExecResult = {
        code,
        signal,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
      };
      if (timedOut) {
        reject(new ExecError(`\`${line}\` timed out after ${timeoutMs} ms${tail(result)}`, argv, result));
      } else if (code !== 0 && opts.check !== false) {
        const how = code === null ? `was killed by ${signal}` : `exited with code ${code}`;
        reject(new ExecError(`\`${line}\` ${how}${tail(result)}`, argv, result));
      } else {
        resolve(result);
      }
    });
  });
}

function tail(r: ExecResult): string {
  const text = (r.stderr.trim() || r.stdout.trim()).slice(-2000);
  return text ? `:\n${text}` : "";
}

export interface SpawnOptions {
  /** Extra environment variables, added to this process's environment. */
  env?: Record<string, string>;
  /** Give the process a writable standard input (`proc.child.stdin`). Default: /dev/null. */
  stdin?: boolean;
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Output kept per stream; older output is dropped so a chatty process cannot eat memory. */
const OUTPUT_CAP = 1 << 20;

/**
 * A long-running child process. It runs in its own process group (so helpers it forks are
 * stopped with it) and is stopped by PID: SIGTERM to the group, then SIGKILL after a grace period.
 */
export class TrackedProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly exited: Promise<ExitStatus>;
  stdout = "";
  stderr = "";
  /** Set when the process could not be started at all. */
  startError: Error | null = null;
  private status: ExitStatus | null = null;
  private readonly outputListeners = new Set<() => void>();

  constructor(
    readonly argv: readonly string[],
    opts: SpawnOptions = {},
  ) {
    if (argv.length === 0) throw new ExecError("spawn: empty command", argv, null);
    this.child = spawn(argv[0]!, argv.slice(1), {
      env: opts.env ? { ...process.env, ...opts.env } : process.env,
      stdio: [opts.stdin ? "pipe" : "ignore", "pipe", "pipe"],
      detached: true,
    });
    this.pid = this.child.pid ?? -1;
    this.child.stdout?.on("data", (d: Buffer) => {
      this.stdout = (this.stdout + d.toString("utf8")).slice(-OUTPUT_CAP);
      this.notify();
    });
    this.child.stderr?.on("data", (d: Buffer) => {
      this.stderr = (this.stderr + d.toString("utf8")).slice(-OUTPUT_CAP);
      this.notify();
    });
    this.child.stdin?.on("error", () => {});
    this.exited = new Promise<ExitStatus>((resolve) => {
      this.child.on("error", (e) => {
        this.startError = e;
        this.status = { code: null, signal: null };
        this.notify();
        resolve(this.status);
      });
      this.child.on("exit", (code, signal) => {
        this.status = { code, signal };
        this.notify();
        resolve(this.status);
      });
    });
  }

  get running(): boolean {
    return this.status === null && this.pid > 0;
  }

  /** The exit status, or null while running. */
  get exitStatus(): ExitStatus | null {
    return this.status;
  }

  /**
   * Resolves with the first match of `pattern` in stdout+stderr (output seen before the call
   * counts). Rejects if the process exits first or the timeout passes.
   */
  waitForOutput(pattern: RegExp | string, opts: { timeoutMs?: number } = {}): Promise<string> {
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const find = (): string | null => {
      const text = this.stdout + "\n" + this.stderr;
      if (typeof pattern === "string") return text.includes(pattern) ? pattern : null;
      const m = pattern.exec(text);
      return m ? m[0] : null;
    };
    return new Promise<string>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        this.outputListeners.delete(check);
      };
      const check = (): void => {
        const hit = find();
        if (hit !== null) {
          done();
          resolve(hit);
        } else if (!this.running) {
          done();
          reject(new ExecError(`\`${formatArgv(this.argv)}\` ended (${describeExit(this.status)}) before printing ${String(pattern)}${this.outputTail()}`, this.argv, null));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new ExecError(`timed out after ${timeoutMs} ms waiting for \`${formatArgv(this.argv)}\` to print ${String(pattern)}${this.outputTail()}`, this.argv, null));
      }, timeoutMs);
      this.outputListeners.add(check);
      check();
    });
  }

  /** SIGTERM to the process group, SIGKILL after `graceMs`; resolves once it has exited. */
  async stop(graceMs = 2000): Promise<ExitStatus> {
    if (!this.running) return this.status ?? { code: null, signal: null };
    this.signal("SIGTERM");
    const first = await Promise.race([this.exited, delay(graceMs)]);
    if (first) return first;
    this.signal("SIGKILL");
    const second = await Promise.race([this.exited, delay(5000)]);
    return second ?? { code: null, signal: "SIGKILL" };
  }

  /** Sends `sig` to the process group, falling back to the process alone. Synchronous. */
  signal(sig: NodeJS.Signals): void {
    if (!this.running) return;
    try {
      process.kill(-this.pid, sig);
    } catch {
      try {
        process.kill(this.pid, sig);
      } catch {
        // already gone
      }
    }
  }

  private notify(): void {
    for (const l of [...this.outputListeners]) l();
  }

  private outputTail(): string {
    const text = (this.stdout + this.stderr).trim().slice(-2000);
    return text ? `; output:\n${text}` : "";
  }
}

function describeExit(s: ExitStatus | null): string {
  if (s === null) return "running";
  return s.code !== null ? `code ${s.code}` : `signal ${s.signal ?? "unknown"}`;
}

function delay(ms: number): Promise<undefined> {
  return new Promise((resolve) => setTimeout(() => resolve(undefined), ms).unref());
}

/** Whether `pid` is a live process; a zombie (exited, waiting to be reaped) counts as gone. */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.charAt(stat.lastIndexOf(")") + 2);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}
