/**
 * `tswg signal`: runs the embedded signaling server in the foreground until SIGINT or SIGTERM.
 * Peers use it with `Signaling = ws://host:port` (or wss:// when started with a certificate).
 */
import { isIP } from "node:net";
import { parseHostPort } from "../hostport/host-port.js";
import { createLogger, type LogLevel } from "../log/logger.js";
import { readPemFile } from "../pem/pem-file.js";
import { MetricsServer } from "../metrics/server.js";
import { signalingMetrics } from "../metrics/signaling.js";
import { SignalingServer } from "../signaling/ws-server.js";
import { logLevelFlag, parseArgs, UsageError, wantsHelp } from "./args.js";
import { runInForeground } from "./foreground.js";

export const SIGNAL_USAGE = `Usage: tswg signal --listen ADDR:PORT [--tls-cert FILE --tls-key FILE] [--metrics ADDR:PORT]
                   [--log-level LEVEL]

Runs the signaling server that peers behind NATs exchange ICE credentials through.
It routes sealed blobs by public key and cannot read them.

  --listen ADDR:PORT   address to listen on: 192.0.2.1:8443, [::]:8443, or :8443 for all
  --tls-cert FILE      PEM certificate chain: serve wss:// instead of ws://
  --tls-key FILE       PEM private key of that certificate
  --metrics ADDR:PORT  serve Prometheus metrics (connections, messages, rejects) over HTTP
  --log-level LEVEL    silent, error, warn, info (default) or debug (logs every connection)
`;

export interface SignalArgs {
  host: string | undefined;
  port: number;
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  logLevel: LogLevel;
  /** Where to serve Prometheus metrics, if anywhere. */
  metrics: { host: string | undefined; port: number } | undefined;
}

/** Parses `tswg signal` arguments (`--flag value` or `--flag=value`); throws UsageError. */
export function parseSignalArgs(args: readonly string[]): SignalArgs {
  const p = parseArgs(args, {
    command: "signal",
    flags: { listen: "value", "tls-cert": "value", "tls-key": "value", "log-level": "value", metrics: "value" },
    usage: SIGNAL_USAGE,
  });
  const listen = p.flags.get("listen");
  if (listen === undefined) throw new UsageError("signal: --listen ADDR:PORT is required", SIGNAL_USAGE);
  const { host, port } = listenFlag("listen", listen);
  const metricsText = p.flags.get("metrics");
  const metrics = metricsText === undefined ? undefined : listenFlag("metrics", metricsText);
  const tlsCert = p.flags.get("tls-cert");
  const tlsKey = p.flags.get("tls-key");
  if ((tlsCert === undefined) !== (tlsKey === undefined)) throw new UsageError("signal: --tls-cert and --tls-key go together", SIGNAL_USAGE);
  return { host, port, tlsCert, tlsKey, logLevel: logLevelFlag(p, SIGNAL_USAGE), metrics };
}

/** "IP:PORT", "[IPv6]:PORT", "host:PORT" or ":PORT" (all addresses). Port 0 picks a free port. */
function listenFlag(flag: string, text: string): { host: string | undefined; port: number } {
  let hp;
  try {
    hp = parseHostPort(text, { minPort: 0, emptyHost: true });
  } catch (err) {
    throw new UsageError(`signal: --${flag} ${JSON.stringify(text)} is not ADDR:PORT: it ${(err as Error).message}`, SIGNAL_USAGE);
  }
  if (hp.bracketed && isIP(hp.host) !== 6) throw new UsageError(`signal: --${flag}: ${JSON.stringify(hp.host)} is not an IPv6 address`, SIGNAL_USAGE);
  return { host: hp.host === "" ? undefined : hp.host, port: hp.port };
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
  if (wantsHelp(args)) {
    process.stdout.write(SIGNAL_USAGE);
    return 0;
  }
  const a = parseSignalArgs(args);
  const tls =
    a.tlsCert !== undefined && a.tlsKey !== undefined
      ? { cert: readPemFile(a.tlsCert, `--tls-cert ${a.tlsCert}`), key: readPemFile(a.tlsKey, `--tls-key ${a.tlsKey}`) }
      : undefined;
  const log = createLogger({ level: a.logLevel, prefix: "signal", sink: opts.logSink });
  const server = new SignalingServer({ host: a.host, port: a.port, tls, logger: log });
  try {
    await server.start();
  } catch (err) {
    await server.close();
    throw new Error(`cannot listen on ${a.host ?? "*"}:${a.port}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let metrics: MetricsServer | null = null;
  if (a.metrics !== undefined) {
    metrics = new MetricsServer({ host: a.metrics.host, port: a.metrics.port, collect: () => signalingMetrics(server.stats) });
    try {
      await metrics.start();
    } catch (err) {
      await server.close();
      throw new Error(`metrics: cannot listen on ${a.metrics.host ?? "*"}:${a.metrics.port}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    log.info(`metrics on ${metrics.url}`);
  }
  opts.onListening?.(server.url);
  return runInForeground({
    log,
    signal: opts.signal,
    stop: async () => {
      await metrics?.close();
      await server.close();
    },
  });
}
