/**
 * `tswg proxyguard client|server`: drop-in replacements for ProxyGuard's two commands, with the
 * same flags and defaults, working with any WireGuard (kernel, wireguard-go, tswg).
 *
 *   client: WireGuard's peer Endpoint = 127.0.0.1:<listen-port>; datagrams go over UoTLV/1 to
 *           --to, replies come back to 127.0.0.1:<forward-port> (WireGuard's ListenPort).
 *   server: accepts UoTLV/1 on --listen and relays every client to --to (WireGuard's UDP port)
 *           through a UDP socket of its own.
 *
 * Both run in the foreground until SIGINT or SIGTERM. Flags are written as Go programs take
 * them: -flag value, --flag value, -flag=value or --flag=value.
 */
import { lookup } from "node:dns/promises";
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { createLogger, parseLogLevel, type Logger, type LogLevel } from "../log/logger.js";
import { ProxyguardClient } from "../uotlv/proxy-client.js";
import { ProxyguardServer } from "../uotlv/proxy-server.js";
import { socketMarkUnsupportedReason } from "../uotlv/socket-mark.js";
import { parseTunnelUrl } from "../uotlv/url.js";
import { UsageError } from "./main.js";

export const PROXYGUARD_USAGE = `Usage:
  tswg proxyguard client --to URL [--listen-port 51821] [--forward-port 51820]
                         [--tcp-port 0] [--fwmark -1] [--peer-ips IP,IP...] [--ca FILE]
  tswg proxyguard server --listen IP:PORT --to IP:PORT

client: WireGuard over TCP towards a UoTLV/1 server (ProxyGuard, or tswg).
  --to URL            the server, http://host[:port]/path or https://...
  --listen-port N     UDP port on 127.0.0.1 to use as the WireGuard peer's Endpoint (51821)
  --forward-port N    WireGuard's ListenPort on 127.0.0.1, where replies go (51820)
  --tcp-port N        TCP source port, 0 = any (0)
  --fwmark N          SO_MARK for the TCP connection, -1 = none (-1); needs the native addon
  --peer-ips LIST     server addresses to use instead of resolving the URL's host
  --ca FILE           PEM CA certificates to trust instead of the system's (https only)

server: accepts UoTLV/1 and relays each client to WireGuard over UDP.
  --listen IP:PORT    TCP address to accept connections on (":PORT" for all addresses)
  --to IP:PORT        WireGuard's UDP endpoint

Both: --log-level silent|error|warn|info|debug (info)
`;

type FlagSpec = Record<string, "value" | "bool">;

/** Go-style flags into a map; unknown flags and stray arguments are usage errors. */
export function parseFlags(args: readonly string[], spec: FlagSpec, command: string): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const m = /^--?([A-Za-z][A-Za-z0-9-]*)(?:=(.*))?$/s.exec(a);
    if (m === null) throw new UsageError(`proxyguard ${command}: unexpected argument ${JSON.stringify(a)}`);
    const name = m[1]!;
    const kind = spec[name];
    if (kind === undefined) throw new UsageError(`proxyguard ${command}: unknown flag -${name.length > 1 ? "-" : ""}${name}`);
    let value = m[2];
    if (kind === "bool") value ??= "true";
    else if (value === undefined) {
      value = args[++i];
      if (value === undefined) throw new UsageError(`proxyguard ${command}: --${name} needs a value`);
    }
    out.set(name, value);
  }
  return out;
}

function intFlag(flags: Map<string, string>, name: string, def: number, min: number, max: number): number {
  const v = flags.get(name);
  if (v === undefined) return def;
  if (!/^-?[0-9]+$/.test(v.trim()) || Number(v) < min || Number(v) > max) {
    throw new UsageError(`--${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
  }
  return Number(v);
}

export interface ClientConfig {
  to: string;
  listenPort: number;
  forwardPort: number;
  tcpPort: number;
  /** -1 = none. */
  fwmark: number;
  peerIps: string[];
  caFile: string | undefined;
  logLevel: LogLevel;
}

export interface ServerConfig {
  listenHost: string | undefined;
  listenPort: number;
  toHost: string;
  toPort: number;
  logLevel: LogLevel;
}

export function parseClientArgs(args: readonly string[]): ClientConfig {
  const flags = parseFlags(
    args,
    { to: "value", "listen-port": "value", "forward-port": "value", "tcp-port": "value", fwmark: "value", "peer-ips": "value", ca: "value", "log-level": "value" },
    "client",
  );
  const to = flags.get("to");
  if (to === undefined || to === "") throw new UsageError("proxyguard client: --to URL is required");
  try {
    parseTunnelUrl(to);
  } catch (err) {
    throw new UsageError(`--to: ${(err as Error).message}`);
  }
  const peerIps = (flags.get("peer-ips") ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  for (const ip of peerIps) if (isIP(ip) === 0) throw new UsageError(`--peer-ips: ${JSON.stringify(ip)} is not an IP address`);
  return {
    to,
    listenPort: intFlag(flags, "listen-port", 51821, 0, 65535),
    forwardPort: intFlag(flags, "forward-port", 51820, 1, 65535),
    tcpPort: intFlag(flags, "tcp-port", 0, 0, 65535),
    fwmark: intFlag(flags, "fwmark", -1, -1, 0xffffffff),
    peerIps,
    caFile: flags.get("ca"),
    logLevel: logLevel(flags),
  };
}

function logLevel(flags: Map<string, string>): LogLevel {
  try {
    return parseLogLevel(flags.get("log-level") ?? "info");
  } catch (err) {
    throw new UsageError(`--log-level: ${(err as Error).message}`);
  }
}

/** "IP:PORT", "[IPv6]:PORT", "host:PORT" or ":PORT" (host empty). */
function splitHostPort(flag: string, text: string | undefined, hostRequired: boolean): { host: string; port: number } {
  if (text === undefined || text === "") throw new UsageError(`proxyguard server: --${flag} IP:PORT is required`);
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):([0-9]{1,5})$/.exec(text);
  const port = m === null ? NaN : Number(m[3]);
  if (m === null || port < 1 || port > 65535) throw new UsageError(`--${flag}: ${JSON.stringify(text)} is not IP:PORT with a port from 1 to 65535`);
  const host = m[1] ?? m[2] ?? "";
  if (m[1] !== undefined && isIP(host) !== 6) throw new UsageError(`--${flag}: ${JSON.stringify(host)} is not an IPv6 address`);
  if (hostRequired && host === "") throw new UsageError(`--${flag}: an address is required`);
  return { host, port };
}

export function parseServerArgs(args: readonly string[]): ServerConfig {
  const flags = parseFlags(args, { listen: "value", to: "value", "log-level": "value" }, "server");
  const listen = splitHostPort("listen", flags.get("listen"), false);
  const to = splitHostPort("to", flags.get("to"), true);
  return { listenHost: listen.host === "" ? undefined : listen.host, listenPort: listen.port, toHost: to.host, toPort: to.port, logLevel: logLevel(flags) };
}

/** Runs until SIGINT/SIGTERM, then closes `thing`. */
function runUntilSignalled(thing: { close(): Promise<void> }, log: Logger): Promise<number> {
  return new Promise((resolve) => {
    const stop = (sig: NodeJS.Signals): void => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      log.info(`${sig}: stopping`);
      void thing.close().then(
        () => resolve(0),
        () => resolve(1),
      );
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  });
}

async function runClient(args: readonly string[]): Promise<number> {
  const c = parseClientArgs(args);
  if (c.fwmark > 0) {
    const why = socketMarkUnsupportedReason();
    if (why !== null) throw new Error(`--fwmark ${c.fwmark} is not supported: ${why}`);
  }
  let ca: string | undefined;
  if (c.caFile !== undefined) {
    try {
      ca = readFileSync(c.caFile, "utf8");
    } catch (err) {
      throw new Error(`--ca ${c.caFile}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    if (!ca.includes("-----BEGIN CERTIFICATE-----")) throw new Error(`--ca ${c.caFile}: no PEM certificate in the file`);
  }
  const log = createLogger({ level: c.logLevel, prefix: "proxyguard-client" });
  const client = new ProxyguardClient({
    to: c.to,
    listenPort: c.listenPort,
    forwardPort: c.forwardPort,
    localPort: c.tcpPort,
    mark: c.fwmark > 0 ? c.fwmark : 0,
    peerIps: c.peerIps,
    ca,
    logger: log,
  });
  try {
    await client.start();
  } catch (err) {
    await client.close();
    throw new Error(`cannot listen on UDP 127.0.0.1:${c.listenPort}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  return runUntilSignalled(client, log);
}

async function runServer(args: readonly string[]): Promise<number> {
  const c = parseServerArgs(args);
  let toHost = c.toHost;
  if (isIP(toHost) === 0) {
    try {
      toHost = (await lookup(toHost)).address;
    } catch (err) {
      throw new Error(`--to: cannot resolve ${c.toHost}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  }
  const log = createLogger({ level: c.logLevel, prefix: "proxyguard-server" });
  const server = new ProxyguardServer({ listenHost: c.listenHost, listenPort: c.listenPort, toHost, toPort: c.toPort, logger: log });
  try {
    await server.start();
  } catch (err) {
    await server.close();
    throw new Error(`cannot listen on TCP ${c.listenHost ?? "*"}:${c.listenPort}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  return runUntilSignalled(server, log);
}

export async function runProxyguard(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  try {
    switch (sub) {
      case "client":
        return await runClient(rest);
      case "server":
        return await runServer(rest);
      case undefined:
      case "help":
      case "--help":
      case "-h":
        process.stdout.write(PROXYGUARD_USAGE);
        return sub === undefined ? 2 : 0;
      default:
        throw new UsageError(`proxyguard: unknown mode ${JSON.stringify(sub)} (expected client or server)`);
    }
  } catch (err) {
    // Usage mistakes get this command's own help rather than the general one.
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`tswg: ${err.message}\n\n${PROXYGUARD_USAGE}`);
    return 2;
  }
}
