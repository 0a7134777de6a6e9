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
import { isIP } from "node:net";
import { parseHostPort } from "../hostport/host-port.js";
import { createLogger, type Logger, type LogLevel } from "../log/logger.js";
import { readPemFile } from "../pem/pem-file.js";
import { ProxyguardClient } from "../uotlv/proxy-client.js";
import { ProxyguardServer } from "../uotlv/proxy-server.js";
import { socketMarkUnsupportedReason } from "../uotlv/socket-mark.js";
import { parseTunnelUrl } from "../uotlv/url.js";
import { intFlag, logLevelFlag, parseArgs, UsageError } from "./args.js";
import { runInForeground } from "./foreground.js";

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

const CLIENT_FLAGS = { to: "value", "listen-port": "value", "forward-port": "value", "tcp-port": "value", fwmark: "value", "peer-ips": "value", ca: "value", "log-level": "value" } as const;

export function parseClientArgs(args: readonly string[]): ClientConfig {
  const p = parseArgs(args, { command: "proxyguard client", flags: CLIENT_FLAGS, singleDash: true, usage: PROXYGUARD_USAGE });
  const to = p.flags.get("to");
  if (to === undefined || to === "") throw new UsageError("proxyguard client: --to URL is required", PROXYGUARD_USAGE);
  try {
    parseTunnelUrl(to);
  } catch (err) {
    throw new UsageError(`--to: ${(err as Error).message}`, PROXYGUARD_USAGE);
  }
  const peerIps = (p.flags.get("peer-ips") ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  for (const ip of peerIps) if (isIP(ip) === 0) throw new UsageError(`--peer-ips: ${JSON.stringify(ip)} is not an IP address`, PROXYGUARD_USAGE);
  return {
    to,
    listenPort: intFlag(p, "listen-port", 51821, 0, 65535, PROXYGUARD_USAGE),
    forwardPort: intFlag(p, "forward-port", 51820, 1, 65535, PROXYGUARD_USAGE),
    tcpPort: intFlag(p, "tcp-port", 0, 0, 65535, PROXYGUARD_USAGE),
    fwmark: intFlag(p, "fwmark", -1, -1, 0xffffffff, PROXYGUARD_USAGE),
    peerIps,
    caFile: p.flags.get("ca"),
    logLevel: logLevelFlag(p, PROXYGUARD_USAGE),
  };
}

/** "IP:PORT", "[IPv6]:PORT", "host:PORT" or ":PORT" (host empty). */
function hostPortFlag(flag: string, text: string | undefined, hostRequired: boolean): { host: string; port: number } {
  const fail = (why: string): never => {
    throw new UsageError(why, PROXYGUARD_USAGE);
  };
  if (text === undefined || text === "") return fail(`proxyguard server: --${flag} IP:PORT is required`);
  let hp;
  try {
    hp = parseHostPort(text, { emptyHost: true });
  } catch (err) {
    return fail(`--${flag}: ${JSON.stringify(text)} is not IP:PORT: it ${(err as Error).message}`);
  }
  if (hp.bracketed && isIP(hp.host) !== 6) fail(`--${flag}: ${JSON.stringify(hp.host)} is not an IPv6 address`);
  if (hostRequired && hp.host === "") fail(`--${flag}: an address is required`);
  return { host: hp.host, port: hp.port };
}

export function parseServerArgs(args: readonly string[]): ServerConfig {
  const p = parseArgs(args, { command: "proxyguard server", flags: { listen: "value", to: "value", "log-level": "value" }, singleDash: true, usage: PROXYGUARD_USAGE });
  const listen = hostPortFlag("listen", p.flags.get("listen"), false);
  const to = hostPortFlag("to", p.flags.get("to"), true);
  return { listenHost: listen.host === "" ? undefined : listen.host, listenPort: listen.port, toHost: to.host, toPort: to.port, logLevel: logLevelFlag(p, PROXYGUARD_USAGE) };
}

function runUntilSignalled(thing: { close(): Promise<void> }, log: Logger): Promise<number> {
  return runInForeground({ log, stop: () => thing.close() });
}

async function runClient(args: readonly string[]): Promise<number> {
  const c = parseClientArgs(args);
  if (c.fwmark > 0) {
    const why = socketMarkUnsupportedReason();
    if (why !== null) throw new Error(`--fwmark ${c.fwmark} is not supported: ${why}`);
  }
  const ca = c.caFile === undefined ? undefined : readPemFile(c.caFile, `--ca ${c.caFile}`, "CERTIFICATE");
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
  switch (sub) {
    case "client":
      return runClient(rest);
    case "server":
      return runServer(rest);
    case undefined:
      throw new UsageError("proxyguard: client or server?", PROXYGUARD_USAGE);
    case "help":
    case "--help":
    case "-h":
      process.stdout.write(PROXYGUARD_USAGE);
      return 0;
    default:
      throw new UsageError(`proxyguard: unknown mode ${JSON.stringify(sub)} (expected client or server)`, PROXYGUARD_USAGE);
  }
}
