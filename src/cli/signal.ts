/**
 * `tswg signal`: runs the embedded signaling server in the foreground until SIGINT or SIGTERM.
 * Peers use it with `Signaling = ws://host:port` (or wss:// when started with a certificate).
 */
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { createLogger, parseLogLevel, type LogLevel } from "../log/logger.js";
import { SignalingServer } from "../signaling/ws-server.js";
import { UsageError } from "./main.js";

export const SIGNAL_USAGE = `Usage: tswg signal --listen ADDR:PORT [--tls-cert FILE --tls-key FILE] [--log-level LEVEL]

Runs the signaling server that peers behind NATs exchange ICE credentials through.
It routes sealed blobs by public key and cannot read them.

  --listen ADDR:PORT   address to listen on: 192.0.2.1:8443, [::]:8443, or :8443 for all
  --tls-cert FILE      PEM certificate chain: serve wss:// instead of ws://
  --tls-key FILE       PEM private key of that certificate
  --log-level LEVEL    silent, error, warn, info (default) or debug (logs every connection)
`;

export interface SignalArgs {
  host: string | undefined;
  port: number;
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  logLevel: LogLevel;
}

const FLAGS = new Set(["listen", "tls-cert", "tls-key", "log-level"]);

/** Parses `tswg signal` arguments (`--flag value` or `--flag=value`); throws UsageError. */
export function parseSignalArgs(args: readonly string[]): SignalArgs {
  const flags = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const m = /^--([a-z-]+)(?:=(.*))?$/s.exec(a);
    if (m === null) throw new UsageError(`signal: unexpected argument ${JSON.stringify(a)}`);
    const name = m[1]!;
    if (!FLAGS.has(name)) throw new UsageError(`signal: unknown option --${name}`);
    if (flags.has(name)) throw new UsageError(`signal: --${name} given twice`);
    const value = m[2] ?? args[++i];
    if (value === undefined) throw new UsageError(`signal: --${name} needs a value`);
    flags.set(name, value);
  }
  const listen = flags.get("listen");
  if (listen === undefined) throw new UsageError("signal: --listen ADDR:PORT is required");
  const { host, port } = parseListen(listen);
  const tlsCert = flags.get("tls-cert");
  const tlsKey = flags.get("tls-key");
  if ((tlsCert === undefined) !== (tlsKey === undefined)) throw new UsageError("signal: --tls-cert and --tls-key go together");
  let logLevel: LogLevel;
  try {
    logLevel = parseLogLevel(flags.get("log-level") ?? "info");
  } catch (err) {
    throw new UsageError(`signal: --log-level: ${(err as Error).message}`);
  }
  return { host, port, tlsCert, tlsKey, logLevel };
}

/** "IP:PORT", "[IPv6]:PORT", "host:PORT" or ":PORT" (all addresses). Port 0 picks a free port. */
function parseListen(text: string): { host: string | undefined; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):([0-9]{1,5})$/.exec(text);
  const port = m === null ? NaN : Number(m[3]);
  if (m === null || !(port >= 0 && port <= 65535)) throw new UsageError(`signal: --listen ${JSON.stringify(text)} is not ADDR:PORT with a port from 0 to 65535`);
  const host = m[1] ?? m[2] ?? "";
  if (m[1] !== undefined && isIP(host) !== 6) throw new UsageError(`signal: --listen: ${JSON.stringify(host)} is not an IPv6 address`);
  return { host: host === "" ? undefined : host, port };
}

function readPem(flag: string, file: string): string {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new Error(`--${flag} ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  if (!text.includes("-----BEGIN ")) throw new Error(`--${flag} ${file}: not a PEM file`);
  return text;
}

export interface RunSignalOptions {
  /** Stops the server like SIGINT does (for embedding and tests). */
  signal?: AbortSignal;
  /** Called once listening, with the URL clients can use. */
  onListening?: (url: string) => void;
  /** Where log lines go; default stderr. */
  logSink?: (line: string) => void;
}

/** Runs `tswg signal`; resolves with the exit code once stopped. */
export async function runSignal(args: string[], opts: RunSignalOptions = {}): Promise<number> {
  if (args.length === 1 && (args[0] === "--help" || args[0] === "-h" || args[0] === "help")) {
    process.stdout.write(SIGNAL_USAGE);
    return 0;
  }
  const a = parseSignalArgs(args);
  const tls = a.tlsCert !== undefined && a.tlsKey !== undefined ? { cert: readPem("tls-cert", a.tlsCert), key: readPem("tls-key", a.tlsKey) } : undefined;
  const log = createLogger({ level: a.logLevel, prefix: "signal", sink: opts.logSink });
  const server = new SignalingServer({ host: a.host, port: a.port, tls, logger: log });
  try {
    await server.start();
  } catch (err) {
    await server.close();
    throw new Error(`cannot listen on ${a.host ?? "*"}:${a.port}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  opts.onListening?.(server.url);
  return new Promise<number>((resolve) => {
    const stop = (why: string): void => {
      process.off("SIGINT", onSigint);
      process.off("SIGTERM", onSigterm);
      opts.signal?.removeEventListener("abort", onAbort);
      log.info(`${why}: stopping`);
      server.close().then(
        () => resolve(0),
        () => resolve(1),
      );
    };
    const onSigint = (): void => stop("SIGINT");
    const onSigterm = (): void => stop("SIGTERM");
    const onAbort = (): void => stop("stop requested");
    process.on("SIGINT", onSigint);
    process.on("SIGTERM", onSigterm);
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener("abort", onAbort, { once: true });
  });
}
