/**
 * `tswg down <name|file>`: ask the process that brought the interface up to take it down, or,
 * when that process was killed, undo what it left behind.
 */
import { basename } from "node:path";
import { createLogger } from "../log/logger.js";
import { recordState, recoverCrashed } from "../quick/journal.js";
import { parseArgs, wantsHelp } from "./args.js";
import { pidFileState, readPid, removeStalePidFile, RUN_DIR } from "./runstate.js";

const WAIT_MS = 15_000;

export const DOWN_USAGE = `Usage: tswg down <name|file.conf>

Takes down an interface that \`tswg up\` brought up: asks its process to stop, which runs
PreDown, saves the configuration if SaveConfig is set, removes routes and DNS, and runs PostDown.
`;

export async function runDown(args: string[]): Promise<number> {
  if (wantsHelp(args)) {
    process.stdout.write(DOWN_USAGE);
    return 0;
  }
  const target = parseArgs(args, { command: "down", flags: {}, positionals: ["interface name or configuration file"], usage: DOWN_USAGE }).positionals[0]!;
  const name = target.includes("/") || target.endsWith(".conf") ? basename(target).replace(/\.conf$/u, "") : target;
  const state = pidFileState(name);
  if (state.kind === "running") {
    const pid = state.pid;
    process.kill(pid, "SIGTERM");
    const deadline = Date.now() + WAIT_MS;
    while (Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      if (readPid(name) !== pid) return 0;
    }
    throw new Error(`\`${name}' (pid ${pid}) did not go down within ${WAIT_MS / 1000} s`);
  }
  // Never signal the pid of a stale file: it may belong to any process by now.
  removeStalePidFile(name);
  if (recordState(RUN_DIR, name).kind === "crashed") {
    const log = createLogger({ level: "info", prefix: name });
    const done = await recoverCrashed(RUN_DIR, name, log);
    process.stderr.write(`tswg: ${name} was not running; cleaned up what it left (${done.length === 0 ? "nothing was left" : done.join("; ")})\n`);
    return 0;
  }
  const stale = state.kind === "stale" && state.pid > 0 ? ` (its pid file named pid ${state.pid}, which is not it: removed)` : "";
  throw new Error(`\`${name}' is not a tswg interface that is up${stale}`);
}
