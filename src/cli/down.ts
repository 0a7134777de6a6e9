/** `tswg down <name|file>`: ask the process that brought the interface up to take it down. */
import { basename } from "node:path";
import { UsageError } from "./main.js";
import { readPid } from "./runstate.js";

const WAIT_MS = 15_000;

export async function runDown(args: string[]): Promise<number> {
  if (args.length !== 1) throw new UsageError("down takes one interface name or configuration file");
  const target = args[0]!;
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
