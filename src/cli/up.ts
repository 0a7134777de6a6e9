/**
 * `tswg up <name|file>`: bring an interface up from a wg-quick configuration and keep it up
 * until SIGINT/SIGTERM (foreground, logging to stderr), or hand it to a background process
 * with `--detach` and return once it is up.
 */
import { createLogger, type LogLevel, type Logger } from "../log/logger.js";
import { up, type RunningInterface } from "../quick/quick.js";
import { linkExists } from "../tun/linux-ifconfig.js";
import { logLevelFlag, parseArgs, UsageError, wantsHelp } from "./args.js";
import { locateConfig, readConfig } from "./config-file.js";
import { detach, detachedChild } from "./detach.js";
import { runInForeground } from "./foreground.js";
import { readPid, removePidFile, RUN_DIR, writePidFile } from "./runstate.js";

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

export const UP_USAGE = `Usage: tswg up <name|file.conf> [--detach] [--log-level LEVEL] [--log-file FILE] [--netstack] [--uapi PATH.sock]

Brings up an interface from a wg-quick style configuration. A bare name is looked up as
/etc/tswg/<name>.conf, then /etc/wireguard/<name>.conf (or in the directories of
TSWG_CONFIG_PATH, colon separated). Stays in the foreground, logging to
stderr, until SIGINT or SIGTERM; SIGHUP re-reads the file and applies key, port and peer changes
without dropping the tunnel (like \`wg syncconf\`).

  --detach, -d        run in the background once the interface is up
  --log-level LEVEL   silent, error, warn, info (default) or debug
  --log-file FILE     where a detached run logs (default /var/log/tswg/<name>.log)
  --netstack          run on the in-process network stack: no TUN, no routes, no root
                      (as \`Netstack = true\`; see docs/netstack.md)
  --uapi PATH.sock    the configuration socket (default /var/run/wireguard/<name>.sock,
                      or $XDG_RUNTIME_DIR/tswg/<name>.sock for an unprivileged run)
`;

function parseUpArgs(args: string[]): UpArgs {
  const p = parseArgs(args, {
    command: "up",
    flags: { detach: "bool", foreground: "bool", "log-level": "value", "log-file": "value", "detached-child": "bool", netstack: "bool", uapi: "value" },
    aliases: { d: "detach" },
    positionals: ["an interface name or configuration file"],
    usage: UP_USAGE,
  });
  const out: UpArgs = {
    target: p.positionals[0]!,
    detach: p.flags.get("detach") === "true" && p.flags.get("foreground") !== "true",
    level: logLevelFlag(p, UP_USAGE),
    logFile: p.flags.get("log-file"),
    child: p.flags.get("detached-child") === "true",
    netstack: p.flags.get("netstack") === "true",
    uapi: p.flags.get("uapi"),
  };
  if (out.uapi !== undefined && !out.uapi.endsWith(".sock")) throw new UsageError("up: --uapi takes a socket path ending in .sock", UP_USAGE);
  return out;
}

export async function runUp(argv: string[]): Promise<number> {
  if (wantsHelp(argv)) {
    process.stdout.write(UP_USAGE);
    return 0;
  }
  const args = parseUpArgs(argv);
  // Everything that can be checked without changing anything is checked before forking.
  const located = locateConfig(args.target);
  const name = located.interfaceName;
  const config = readConfig(located.path);
  const running = readPid(name);
  if (running !== null && running !== process.pid) throw new Error(`\`${name}' is already up (pid ${running})`);
  const onStack = args.netstack || config.interface.netstack !== undefined;
  if (!onStack && (await linkExists(name))) throw new Error(`\`${name}' already exists`);

  if (args.detach) return detach(argv, name, args.logFile);

  const child = args.child ? detachedChild(name, args.logFile) : undefined;
  const log = createLogger({ level: args.level, prefix: name, sink: child?.sink });
  if (located.worldAccessible) log.warn(`${located.path} is world accessible`);
  let iface;
  try {
    iface = await up({ name, config, configPath: located.path, logger: log, stateDir: RUN_DIR, netstack: args.netstack, uapiPath: args.uapi });
  } catch (err) {
    child?.failed(err instanceof Error ? err.message : String(err));
    throw err;
  }
  writePidFile(name);
  log.info(`interface ${name} is up (pid ${process.pid})`);
  child?.ready();
  const live = iface;
  return runInForeground({
    log,
    stop: () => live.down(),
    closed: live.closed.then(() => {
      removePidFile(name);
      log.info(`interface ${name} is down`);
    }),
    onReload: () => {
      log.info(`SIGHUP: re-reading ${located.path}`);
      void reloadFrom(located.path, live, log);
    },
  });
}

/** Re-reads the configuration and applies it; a bad file is reported and changes nothing. */
async function reloadFrom(path: string, iface: RunningInterface, log: Logger): Promise<void> {
  try {
    await iface.reload(readConfig(path));
    log.info("reload: done");
  } catch (err) {
    log.error(`reload failed, nothing changed: ${err instanceof Error ? err.message : String(err)}`);
  }
}
