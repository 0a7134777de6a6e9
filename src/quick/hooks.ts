/**
 * PreUp/PostUp/PreDown/PostDown: shell commands run as wg-quick runs them, with `%i` replaced by
 * the interface name. A failing Pre/PostUp hook aborts bringing the interface up; a failing
 * down hook is reported and teardown goes on.
 */
import { spawn } from "node:child_process";
import type { Logger } from "../log/logger.js";
import { writeTo } from "../log/stdio.js";

export class HookError extends Error {
  constructor(
    readonly command: string,
    readonly code: number | null,
  ) {
    super(`hook command failed (exit ${code ?? "signal"}): ${command}`);
    this.name = "HookError";
  }
}

export async function runHook(command: string, iface: string, log: Logger): Promise<void> {
  const expanded = command.replaceAll("%i", iface);
  log.info(`[#] ${expanded}`);
  const code = await new Promise<number | null>((resolve, reject) => {
    // Output is passed on rather than inherited: when our reader has gone away, a hook that
    // prints must not die of SIGPIPE half-way through its work.
    const child = spawn("/bin/sh", ["-c", expanded], { stdio: ["ignore", "pipe", "pipe"] });
    child.stdout.on("data", (d: Buffer) => writeTo(process.stdout, d));
    child.stderr.on("data", (d: Buffer) => writeTo(process.stderr, d));
    child.on("error", reject);
    child.on("close", (c) => resolve(c));
  });
  if (code !== 0) throw new HookError(expanded, code);
}

export async function runHooks(commands: readonly string[], iface: string, log: Logger): Promise<void> {
  for (const c of commands) await runHook(c, iface, log);
}

/** Runs every command even when some fail (teardown); failures are logged. */
export async function runHooksBestEffort(commands: readonly string[], iface: string, log: Logger): Promise<void> {
  for (const c of commands) {
    try {
      await runHook(c, iface, log);
    } catch (err) {
      log.warn(err instanceof Error ? err.message : String(err));
    }
  }
}
