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

export interface LoggerOptions {
  level?: LogLevel;
  prefix?: string;
  /** Where lines go, with their level; default stderr. */
  sink?: (line: string, level: Exclude<LogLevel, "silent">) => void;
  timestamps?: boolean;
  /**
   * Most lines written per second (errors always are); the rest are counted and summarised in
   * one line when the second is over, so a flood (a line per dropped datagram at debug level
   * under attack) cannot drown the log or the process. Default 1000; 0 = no limit.
   */
  maxLinesPerSecond?: number;
  /** Clock for the limit; default Date.now. */
  now?: () => number;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = opts.level ?? "info";
  const sink = opts.sink ?? ((line: string) => writeTo(process.stderr, line + "\n"));
  const timestamps = opts.timestamps ?? true;
  const rank = LOG_LEVELS.indexOf(level);
  const limit = opts.maxLinesPerSecond ?? 1000;
  const now = opts.now ?? Date.now;
  const stamp = () => (timestamps ? new Date(now()).toISOString() + " " : "");
  // The budget is shared by a logger and all its children: they write to one sink.
  let windowStart = 0;
  let written = 0;
  let suppressed = 0;
  let example = "";
  let flushTimer: NodeJS.Timeout | null = null;
  const flush = () => {
    if (flushTimer !== null) clearTimeout(flushTimer);
    flushTimer = null;
    if (suppressed === 0) return;
    sink(`${stamp()}${opts.prefix ? opts.prefix + " " : ""}warn: ${suppressed} more log line${suppressed === 1 ? "" : "s"} in 1 s not shown (over ${limit}/s), like: ${example}`, "warn");
    suppressed = 0;
  };
  const admit = (lvl: Exclude<LogLevel, "silent">, text: string): boolean => {
    if (limit <= 0 || lvl === "error") return true;
    const t = now();
    if (t - windowStart >= 1000) {
      flush();
      windowStart = t;
      written = 0;
    }
    if (written < limit) {
      written++;
      return true;
    }
    if (suppressed++ === 0) {
      example = text.length > 200 ? text.slice(0, 200) + "…" : text;
      flushTimer = setTimeout(flush, Math.max(0, windowStart + 1000 - t));
      flushTimer.unref?.();
    }
    return false;
  };
  const make = (prefix: string): Logger => {
    const emit = (lvl: Exclude<LogLevel, "silent">, msg: string) => {
      if (LOG_LEVELS.indexOf(lvl) > rank) return;
      const text = `${prefix ? prefix + " " : ""}${lvl}: ${msg}`;
      if (admit(lvl, text)) sink(stamp() + text, lvl);
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
