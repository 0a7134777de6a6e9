/**
 * What every subcommand shares for reading its arguments: one usage error (exit code 2 everywhere,
 * as `wg` and most Unix tools do) and one flag parser.
 *
 * Flags may be written `--flag value`, `--flag=value`, and (for commands that mirror Go programs)
 * `-flag value` / `-flag=value`. `-h`, `--help` and `help` as the only argument ask for help.
 */
import { parseLogLevel, type LogLevel } from "../log/logger.js";

/** Exit codes: a usage mistake differs from a failure at run time. */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export class UsageError extends Error {
  /**
   * @param usage the help of the command that was misused, printed after the message; the
   *   general help when absent.
   */
  constructor(
    message: string,
    readonly usage?: string,
  ) {
    super(message);
    this.name = "UsageError";
  }
}

export type FlagSpec = Record<string, "value" | "bool">;

export interface ArgSpec {
  /** Name used in messages: "signal", "proxyguard client". */
  command: string;
  flags: FlagSpec;
  /** Single-letter aliases: { d: "detach" }. */
  aliases?: Record<string, string>;
  /** Accept `-flag` as well as `--flag` for long names (Go programs' style). */
  singleDash?: boolean;
  /** Names of the positional arguments, in order; the last may end in "..." to take the rest. */
  positionals?: readonly string[];
  /** How many positionals are required (default: all named ones except a trailing "..."). */
  required?: number;
  /** The command's help, attached to usage errors. */
  usage?: string;
}

export interface ParsedArgs {
  flags: Map<string, string>;
  positionals: string[];
}

/** True when `args` only asks for help. */
export function wantsHelp(args: readonly string[]): boolean {
  return args.length === 1 && (args[0] === "--help" || args[0] === "-h" || args[0] === "help");
}

/** Parses `args` by `spec`; throws {@link UsageError} saying what is wrong. */
export function parseArgs(args: readonly string[], spec: ArgSpec): ParsedArgs {
  const fail = (why: string): never => {
    throw new UsageError(`${spec.command}: ${why}`, spec.usage);
  };
  const flags = new Map<string, string>();
  const positionals: string[] = [];
  const names = spec.positionals ?? [];
  const rest = names.length > 0 && names[names.length - 1]!.endsWith("...");
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--") {
      positionals.push(...args.slice(i + 1));
      break;
    }
    const m = /^(--?)([A-Za-z][A-Za-z0-9-]*)(?:=(.*))?$/s.exec(a);
    if (m === null || (m[1] === "-" && m[2]!.length > 1 && spec.singleDash !== true)) {
      if (a.startsWith("-") && a !== "-") fail(m === null ? `unexpected argument ${JSON.stringify(a)}` : `unknown option ${a}`);
      if (!rest && positionals.length >= names.length) fail(`unexpected argument ${JSON.stringify(a)}`);
      positionals.push(a);
      continue;
    }
    const written = m[2]!;
    const name = m[1] === "-" && written.length === 1 ? (spec.aliases?.[written] ?? written) : written;
    const kind = spec.flags[name];
    if (kind === undefined) fail(`unknown option ${m[1]}${written}`);
    if (flags.has(name)) fail(`--${name} given twice`);
    let value = m[3];
    if (kind === "bool") {
      if (value !== undefined && value !== "true" && value !== "false") fail(`--${name} takes no value`);
      value ??= "true";
    } else if (value === undefined) {
      value = args[++i];
      if (value === undefined) fail(`--${name} needs a value`);
    }
    flags.set(name, value!);
  }
  const required = spec.required ?? names.filter((n) => !n.endsWith("...")).length;
  if (positionals.length < required) fail(`missing ${names[positionals.length] ?? "argument"}`);
  return { flags, positionals };
}

/** An integer flag within [min, max], or `def` when absent. */
export function intFlag(p: ParsedArgs, name: string, def: number, min: number, max: number, usage?: string): number {
  const v = p.flags.get(name);
  if (v === undefined) return def;
  if (!/^-?[0-9]+$/.test(v.trim()) || Number(v) < min || Number(v) > max) {
    throw new UsageError(`--${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`, usage);
  }
  return Number(v);
}

/** `--log-level`, default info. */
export function logLevelFlag(p: ParsedArgs, usage?: string): LogLevel {
  try {
    return parseLogLevel(p.flags.get("log-level") ?? "info");
  } catch (err) {
    throw new UsageError(`--log-level: ${(err as Error).message}`, usage);
  }
}
