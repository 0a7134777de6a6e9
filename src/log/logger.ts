/**
 * A small levelled logger. Lines go to a sink (stderr by default) as
 * "2026-01-01T00:00:00.000Z wg0 info: message", so foreground runs read like wg-quick's output
 * and detached runs produce a greppable log file.
 */
import { writeTo } from "./stdio.js";

export const LOG_LEVELS = ["silent", "error", "warn", "info", "debug"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface Logger {
  readonly level: LogLevel;
  error(msg: string): void;
  warn(msg: string): void;
  info(msg: string): void;
  debug(msg: string): void;
  /** A logger with the same sink and level whose lines carry an extra prefix. */
  child(prefix: string): Logger;
  enabled(level: Exclude<LogLevel, "silent">): boolean;
}

export function parseLogLevel(s: string): LogLevel {
  const l = s.toLowerCase();
  if ((LOG_LEVELS as readonly string[]).includes(l)) return l as LogLevel;
  throw new Error(`unknown log level "${s}" (expected one of: ${LOG_LEVELS.join(", ")})`);
}

export function createLogger(opts: {
  level?: LogLevel;
  prefix?: string;
  sink?: (line: string) => void;
  timestamps?: boolean;
} = {}): Logger {
  const level = opts.level ?? "info";
  const sink = opts.sink ?? ((line: string) => writeTo(process.stderr, line + "\n"));
  const timestamps = opts.timestamps ?? true;
  const rank = LOG_LEVELS.indexOf(level);
  const make = (prefix: string): Logger => {
    const emit = (lvl: Exclude<LogLevel, "silent">, msg: string) => {
      if (LOG_LEVELS.indexOf(lvl) > rank) return;
      const ts = timestamps ? new Date().toISOString() + " " : "";
      sink(`${ts}${prefix ? prefix + " " : ""}${lvl}: ${msg}`);
    };
    return {
      level,
      error: (m) => emit("error", m),
      warn: (m) => emit("warn", m),
      info: (m) => emit("info", m),
      debug: (m) => emit("debug", m),
      child: (p) => make(prefix ? `${prefix} ${p}` : p),
      enabled: (lvl) => LOG_LEVELS.indexOf(lvl) <= rank,
    };
  };
  return make(opts.prefix ?? "");
}

/** A logger that drops everything; the default for embedded use. */
export const silentLogger: Logger = createLogger({ level: "silent" });
