/**
 * Where a running `tswg up` leaves its traces: a pid file per interface, so `tswg down` can find
 * the process without scanning, and the default log of detached runs.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { userRuntimeDir } from "../quick/netstack.js";

// Unprivileged runs (network stack mode) keep their state in the user's runtime directory.
const isRoot = (process.getuid?.() ?? 0) === 0;
export const RUN_DIR = process.env.TSWG_RUN_DIR ?? (isRoot ? "/run/tswg" : userRuntimeDir());
export const LOG_DIR = process.env.TSWG_LOG_DIR ?? (isRoot ? "/var/log/tswg" : userRuntimeDir());

export function pidFile(iface: string): string {
  return join(RUN_DIR, `${iface}.pid`);
}

export function writePidFile(iface: string): void {
  mkdirSync(RUN_DIR, { recursive: true, mode: isRoot ? 0o755 : 0o700 });
  writeFileSync(pidFile(iface), `${process.pid}\n`, { mode: 0o644 });
}

export function removePidFile(iface: string): void {
  // Only our own: a later run for the same name may have replaced it.
  if (readPid(iface) === process.pid) rmSync(pidFile(iface), { force: true });
}

/** The pid recorded for `iface` if that process is still alive, else null. */
export function readPid(iface: string): number | null {
  let pid: number;
  try {
    pid = Number(readFileSync(pidFile(iface), "utf8").trim());
  } catch {
    return null;
  }
  if (!Number.isInteger(pid) || pid <= 0) return null;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM" ? pid : null;
  }
}
