/**
 * `tswg up <name|file>`: bring an interface up from a wg-quick configuration and keep it up
 * until SIGINT/SIGTERM (foreground, logging to stderr), or hand it to a background process
 * with `--detach` and return once it is up.
 */
import { spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { resolveConfigPath } from "../conf/locate.js";
import { parseConfig } from "../conf/wgquick.js";
import { createLogger, parseLogLevel, type LogLevel, type Logger } from "../log/logger.js";
import { up } from "../quick/quick.js";
import { linkExists } from "../tun/linux-ifconfig.js";
import { UsageError } from "./main.js";
import { LOG_DIR, readPid, removePidFile, writePidFile } from "./runstate.js";

interface UpArgs {
  target: string;
  detach: boolean;
  level: LogLevel;
  logFile?: string;
  /** Set in the background child of --detach: report readiness over IPC. */
  child: boolean;
  /** Run on the in-process network stack (no root). */
  netstack: boolean;
  /** UAPI socket path (with --netstack; default $XDG_RUNTIME_DIR/tswg/NAME.sock). */
  uapi?: string;
}

function parseArgs(args: string[]): UpArgs {
  const out: UpArgs = { target: "", detach: false, level: "info", child: false, netstack: false };
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
    else if (a === "--netstack") out.netstack = true;
    else if (a === "--uapi") out.uapi = value();
    else if (a.startsWith("--uapi=")) out.uapi = a.slice(7);
    else if (a.startsWith("-")) throw new UsageError(`up: unknown option ${a}`);
    else if (out.target === "") out.target = a;
    else throw new UsageError("up takes one interface name or configuration file");
  }
  if (out.target === "") throw new UsageError("up needs an interface name or configuration file");
  if (out.uapi !== undefined && !out.uapi.endsWith(".sock")) throw new UsageError("--uapi takes a socket path ending in .sock");
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
  const onStack = args.netstack || config.interface.netstack !== undefined;
  if (!onStack && (await linkExists(name))) throw new Error(`\`${name}' already exists`);

  if (args.detach) return detach(argv, name, args.logFile);

  const log = createLogger({ level: args.level, prefix: name });
  if (located.worldAccessible) log.warn(`${located.path} is world accessible`);
  let iface;
  try {
    iface = await up({ name, config, configPath: located.path, logger: log, netstack: args.netstack, uapiPath: args.uapi });
  } catch (err) {
    if (args.child) process.send?.({ error: err instanceof Error ? err.message : String(err) });
    throw err;
  }
  writePidFile(name);
  log.info(`interface ${name} is up (pid ${process.pid})`);
  if (args.child) {
    process.send?.({ ready: true });
    process.disconnect?.();
  }
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

/** Starts `tswg up` again in the background and waits until it is up or has failed. */
async function detach(argv: string[], name: string, logFile: string | undefined): Promise<number> {
  const path = logFile ?? join(LOG_DIR, `${name}.log`);
  if (logFile === undefined) mkdirSync(LOG_DIR, { recursive: true });
  const fd = openSync(path, "a", 0o640);
  const childArgs = [...process.execArgv, process.argv[1]!, "up", ...argv.filter((a) => a !== "--detach" && a !== "-d"), "--detached-child"];
  const child = spawn(process.execPath, childArgs, { detached: true, stdio: ["ignore", fd, fd, "ipc"] });
  closeSync(fd);
  const result = await new Promise<{ ready?: boolean; error?: string }>((resolve) => {
    child.once("message", (m) => resolve(m as { ready?: boolean; error?: string }));
    child.once("exit", (code) => resolve({ error: `background process exited (code ${code}); see ${path}` }));
    child.once("error", (err) => resolve({ error: err.message }));
  });
  if (result.ready) {
    child.unref();
    child.channel?.unref();
    process.stdout.write(`tswg: ${name} is up in the background (pid ${child.pid}), logging to ${path}\n`);
    return 0;
  }
  throw new Error(result.error ?? "background process failed");
}
