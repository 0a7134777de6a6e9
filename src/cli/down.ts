/** `tswg down <name|file>`: ask the process that brought the interface up to take it down. */
import { basename } from "node:path";
import { parseArgs, wantsHelp } from "./args.js";
import { readPid } from "./runstate.js";

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
  const pid = readPid(name);
  if (pid === null) throw new Error(`\`${name}' is not a tswg interface that is up`);
  process.kill(pid, "SIGTERM");
  const deadline = Date.now() + WAIT_MS;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    if (readPid(name) !== pid) return 0;
  }
  throw new Error(`\`${name}' (pid ${pid}) did not go down within ${WAIT_MS / 1000} s`);
}
