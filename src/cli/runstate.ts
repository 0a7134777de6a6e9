/**
 * Where a running `tswg up` leaves its traces: a pid file per interface, so `tswg down` can find
 * the process without scanning, the crash-recovery record beside it (see quick/journal.ts), and
 * the default log of detached runs.
 *
 * A pid file outlives a crash, and its pid may then belong to an unrelated process: it records
 * the process's start time too, and is only believed when that still matches.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { isRunning, selfId } from "../quick/journal.js";
import { userRuntimeDir } from "../quick/runtime-dir.js";

// Unprivileged runs (network stack mode) keep their state in the user's runtime directory.
const isRoot = (process.getuid?.() ?? 0) === 0;
export const RUN_DIR = process.env.TSWG_RUN_DIR ?? (isRoot ? "/run/tswg" : userRuntimeDir());
export const LOG_DIR = process.env.TSWG_LOG_DIR ?? (isRoot ? "/var/log/tswg" : userRuntimeDir());

export function pidFile(iface: string): string {
  return join(RUN_DIR, `${iface}.pid`);
}

export function writePidFile(iface: string): void {
  mkdirSync(RUN_DIR, { recursive: true, mode: isRoot ? 0o755 : 0o700 });
  const me = selfId();
  writeFileSync(pidFile(iface), `${me.pid} ${me.start}\n`, { mode: 0o644 });
}

export function removePidFile(iface: string): void {
  // Only our own: a later run for the same name may have replaced it.
  if (readPid(iface) === process.pid) rmSync(pidFile(iface), { force: true });
}

/** What the pid file of `iface` says. */
export type PidFileState =
  | { kind: "none" }
  | { kind: "running"; pid: number }
  /** A pid file whose process has ended or is not the `tswg up` of this interface. */
  | { kind: "stale"; pid: number };

export function pidFileState(iface: string): PidFileState {
  let text: string;
  try {
    text = readFileSync(pidFile(iface), "utf8");
  } catch {
    return { kind: "none" };
  }
  const [pidText = "", start = ""] = text.trim().split(/\s+/u);
  const pid = Number(pidText);
  if (!/^[0-9]{1,10}$/u.test(pidText) || pid <= 0) return { kind: "stale", pid: 0 };
  if (!isRunning({ pid, start })) return { kind: "stale", pid };
  // A file without a start time was not written by this version: believe it only for a
  // process whose command line is `tswg up` of this interface.
  if (start === "" && !isTswgUp(pid, iface)) return { kind: "stale", pid };
  return { kind: "running", pid };
}

/** The pid of the running `tswg up` of `iface`, else null. */
export function readPid(iface: string): number | null {
  const s = pidFileState(iface);
  return s.kind === "running" ? s.pid : null;
}

export function removeStalePidFile(iface: string): void {
  if (pidFileState(iface).kind === "stale") rmSync(pidFile(iface), { force: true });
}

function isTswgUp(pid: number, iface: string): boolean {
  let argv: string[];
  try {
    argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
  } catch {
    return false;
  }
  const up = argv.indexOf("up");
  if (up < 1 || !argv.slice(0, up).some((a) => /(^|\/)tswg(\.js)?$/u.test(a))) return false;
  return argv.slice(up + 1).some((a) => a === iface || basename(a) === `${iface}.conf`);
}
