/**
 * A record of what bringing an interface up changed on the host that does not vanish with the
 * process: policy rules, resolvconf entries, the UAPI socket file. It is written as each change
 * is made and removed after a clean `down`, so when a run is killed (`kill -9`, a crash, power
 * loss of a container) the next `up` or `down` of the same name finds it and undoes those
 * changes, instead of leaving rules behind to be duplicated.
 *
 * Records live in a root-owned run directory; a record names its process by pid and the
 * process's start time, so a recycled pid is never taken for the run that wrote it.
 */
import { execFile } from "node:child_process";
import { mkdirSync, readFileSync, readlinkSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import type { Logger } from "../log/logger.js";

/** A process as it can be recognised later: the pid and when that pid's process started. */
export interface ProcessId {
  pid: number;
  /** Start time in clock ticks since boot (field 22 of /proc/<pid>/stat); "" when unknown. */
  start: string;
}

/** One command that undoes one change (see {@link isUndoStep} for what may be run). */
export interface UndoStep {
  cmd: "ip" | "resolvconf" | "nft";
  args: string[];
}

/**
 * Only removals of the kinds `up` makes are run from a record, whatever the file says: it is
 * run as root, so a step that is not one of these shapes (`ip netns exec …`) is skipped.
 */
export function isUndoStep(step: unknown): step is UndoStep {
  if (typeof step !== "object" || step === null) return false;
  const { cmd, args } = step as { cmd?: unknown; args?: unknown };
  if (!Array.isArray(args) || !args.every((a) => typeof a === "string" && a.length <= 64 && !a.startsWith("--"))) return false;
  const a = args as string[];
  switch (cmd) {
    case "ip": {
      const rest = a[0] === "-n" ? a.slice(2) : a;
      return (rest[0] === "-4" || rest[0] === "-6") && rest[1] === "rule" && rest[2] === "delete";
    }
    case "resolvconf":
      return a.length === 3 && a[0] === "-d" && a[2] === "-f";
    case "nft":
      return a[0] === "delete" && a[1] === "table";
    default:
      return false;
  }
}

interface RecordData {
  name: string;
  process: ProcessId;
  /** The network namespace the changes were made in ("net:[4026531840]"). */
  netns: string;
  uapiSocket?: string;
  undo: UndoStep[];
}

/** The start time of a live process, or null when there is no such process. */
export function startTimeOf(pid: number): string | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null;
  }
  // The command name (field 2) is in parentheses and may itself contain spaces or ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return fields[19] ?? null;
}

export function selfId(): ProcessId {
  return { pid: process.pid, start: startTimeOf(process.pid) ?? "" };
}

/** Whether the process that `id` names is still running (and is not a later one with its pid). */
export function isRunning(id: ProcessId): boolean {
  const start = startTimeOf(id.pid);
  if (start === null) return false;
  if (id.start !== "" && start !== id.start) return false;
  // A zombie has ended; it only waits to be reaped.
  try {
    return !/^State:\s+Z/mu.test(readFileSync(`/proc/${id.pid}/status`, "utf8"));
  } catch {
    return false;
  }
}

function currentNetns(): string {
  try {
    return readlinkSync("/proc/self/ns/net");
  } catch {
    return "";
  }
}

function recordPath(dir: string, name: string): string {
  return join(dir, `${name}.json`);
}

function readRecord(dir: string, name: string): RecordData | null {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(recordPath(dir, name), "utf8"));
  } catch {
    return null;
  }
  const r = data as Partial<RecordData>;
  if (typeof r !== "object" || r === null || r.name !== name || typeof r.process?.pid !== "number" || !Array.isArray(r.undo)) return null;
  return r as RecordData;
}

/** The record of an interface being up, kept up to date as changes are made. */
export class Journal {
  readonly #data: RecordData;
  #closed = false;

  private constructor(
    readonly dir: string,
    name: string,
  ) {
    this.#data = { name, process: selfId(), netns: currentNetns(), undo: [] };
  }

  /** Starts the record for `name` in `dir`. Call {@link recoverCrashed} first. */
  static open(dir: string, name: string): Journal {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    const j = new Journal(dir, name);
    j.#save();
    return j;
  }

  /** Notes a change and the command that undoes it. */
  add(step: UndoStep): void {
    this.#data.undo.push(step);
    this.#save();
  }

  /** Notes the UAPI socket, which a crashed run leaves behind. */
  setUapiSocket(path: string): void {
    this.#data.uapiSocket = path;
    this.#save();
  }

  /** Everything was undone: the record goes. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    rmSync(recordPath(this.dir, this.#data.name), { force: true });
  }

  #save(): void {
    if (this.#closed) return;
    const path = recordPath(this.dir, this.#data.name);
    const tmp = `${path}.tmp-${process.pid}`;
    writeFileSync(tmp, JSON.stringify(this.#data) + "\n", { mode: 0o644 });
    renameSync(tmp, path);
  }
}

/** What a record says about an interface name. */
export type RecordState =
  | { kind: "none" }
  | { kind: "running"; pid: number }
  /** Its process ended without going down: the record lists what is left to undo. */
  | { kind: "crashed"; pid: number; steps: number };

export function recordState(dir: string, name: string): RecordState {
  const r = readRecord(dir, name);
  if (r === null) return { kind: "none" };
  if (isRunning(r.process)) return { kind: "running", pid: r.process.pid };
  return { kind: "crashed", pid: r.process.pid, steps: r.undo.length + (r.uapiSocket === undefined ? 0 : 1) };
}

function run(step: UndoStep): Promise<string | null> {
  return new Promise((resolve) => {
    execFile(step.cmd, step.args, { timeout: 10_000, encoding: "utf8" }, (err, _out, stderr) =>
      resolve(err === null ? null : stderr.trim() || err.message),
    );
  });
}

/** Removes a unix socket nobody answers on; leaves a live one alone. */
function removeDeadSocket(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ path });
    s.once("connect", () => {
      s.destroy();
      resolve(false);
    });
    s.once("error", (err: NodeJS.ErrnoException) => {
      s.destroy();
      if (err.code === "ECONNREFUSED") {
        rmSync(path, { force: true });
        resolve(true);
      } else resolve(false);
    });
  });
}

/**
 * Undoes what a crashed run of `name` left behind, if its record says so. Returns what was
 * cleaned up (empty when there was nothing). Throws when the run is in fact still going.
 */
export async function recoverCrashed(dir: string, name: string, log: Logger): Promise<string[]> {
  const r = readRecord(dir, name);
  if (r === null) return [];
  if (isRunning(r.process)) throw new Error(`\`${name}' is already up (pid ${r.process.pid})`);
  const done: string[] = [];
  if (r.netns !== "" && r.netns !== currentNetns()) {
    // The rules are in another namespace; running the commands here would hit the wrong ones.
    log.warn(`${name} was brought up in another network namespace (${r.netns}) by pid ${r.process.pid}, which has ended; its leftovers there are not touched`);
  } else {
    log.warn(`${name}: the process that brought it up (pid ${r.process.pid}) ended without taking it down; undoing what it left`);
    for (const step of [...r.undo].reverse()) {
      if (!isUndoStep(step)) {
        log.warn(`${name}: skipping an entry of ${recordPath(dir, name)} that is not a removal tswg makes`);
        continue;
      }
      log.info(`[#] ${step.cmd} ${step.args.join(" ")}`);
      const err = await run(step);
      if (err === null) done.push(`${step.cmd} ${step.args.join(" ")}`);
      else log.debug(`${step.cmd} ${step.args.join(" ")}: ${err}`);
    }
  }
  if (r.uapiSocket !== undefined && (await removeDeadSocket(r.uapiSocket))) done.push(`removed ${r.uapiSocket}`);
  rmSync(recordPath(dir, name), { force: true });
  return done;
}
