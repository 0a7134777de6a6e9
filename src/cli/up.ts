/**
 * `tswg up <name|file>`: bring an interface up from a wg-quick configuration and keep it up
 * until SIGINT/SIGTERM (foreground, logging to stderr), or hand it to a background process
 * with `--detach` and return once it is up.
 */
import { readFileSync } from "node:fs";
import { resolveConfigPath } from "../conf/locate.js";
import { parseConfig } from "../conf/wgquick.js";
import { createLogger, parseLogLevel, type LogLevel, type Logger } from "../log/logger.js";
import { up } from "../quick/quick.js";
import { linkExists } from "../tun/linux-ifconfig.js";
import { UsageError } from "./main.js";
import { detach, detachedChild } from "./detach.js";
import { readPid, removePidFile, RUN_DIR, writePidFile } from "./runstate.js";

interface UpArgs {
  target: string;
  detach: boolean;
  level: LogLevel;
  logFile?: string;
  /** Set in the background child of --detach: report readiness over IPC. */
  child: boolean;
}

function parseArgs(args: string[]): UpArgs {
  const out: UpArgs = { target: "", detach: false, level: "info", child: false };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const value = () => {
      const v = args[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      return v;
    };
    if (a === "--detach" || a === "-d") out.detach = true;
    else if (a === "--foreground") out.detach = false;
    else if (a === "--log-level") out.level = parseLogLevel(value());
    else if (a.startsWith("--log-level=")) out.level = parseLogLevel(a.slice(12));
    else if (a === "--log-file") out.logFile = value();
    else if (a === "--detached-child") out.child = true;
    else if (a.startsWith("-")) throw new UsageError(`up: unknown option ${a}`);
    else if (out.target === "") out.target = a;
    else throw new UsageError("up takes one interface name or configuration file");
  }
  if (out.target === "") throw new UsageError("up needs an interface name or configuration file");
  return out;
}

export async function runUp(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  // Everything that can be checked without changing anything is checked before forking.
  const located = resolveConfigPath(args.target);
  const name = located.interfaceName;
  const config = parseConfig(readFileSync(located.path, "utf8"), located.path);
  const running = readPid(name);
  if (running !== null && running !== process.pid) throw new Error(`\`${name}' is already up (pid ${running})`);
  if (await linkExists(name)) throw new Error(`\`${name}' already exists`);

  if (args.detach) return detach(argv, name, args.logFile);

  const child = args.child ? detachedChild(name, args.logFile) : undefined;
  const log = createLogger({ level: args.level, prefix: name, sink: child?.sink });
  if (located.worldAccessible) log.warn(`${located.path} is world accessible`);
  let iface;
  try {
    iface = await up({ name, config, configPath: located.path, logger: log, stateDir: RUN_DIR });
  } catch (err) {
    child?.failed(err instanceof Error ? err.message : String(err));
    throw err;
  }
  writePidFile(name);
  log.info(`interface ${name} is up (pid ${process.pid})`);
  child?.ready();
  return waitForDown(iface, name, log);
}

function waitForDown(iface: { down(): Promise<void>; closed: Promise<void> }, name: string, log: Logger): Promise<number> {
  return new Promise((resolve) => {
    let signals = 0;
    const onSignal = (sig: NodeJS.Signals) => {
      if (++signals > 1) {
        log.warn(`${sig} again: exiting without a clean teardown`);
        process.exit(1);
      }
      log.info(`${sig}: bringing ${name} down`);
      void iface.down();
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    process.on("SIGHUP", onSignal);
    void iface.closed.then(() => {
      removePidFile(name);
      log.info(`interface ${name} is down`);
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      process.off("SIGHUP", onSignal);
      resolve(0);
    });
  });
}
