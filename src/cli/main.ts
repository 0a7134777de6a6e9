/**
 * The `tswg` command line. Each subcommand lives in its own module and is loaded on demand,
 * so `tswg genkey` does not pay for loading the device.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

export const USAGE = `Usage: tswg <command> [arguments]

Commands:
  up <name|file.conf> [--detach] [--log-level L] [--log-file F]
                           bring up an interface from a wg-quick style configuration
                           (a bare name is looked up in /etc/tswg/ and /etc/wireguard/)
                           --netstack: no root, no TUN: an in-process network stack with the
                           file's SOCKS5/HTTPProxy/Forward/Expose; --uapi PATH.sock for its socket
  down <name|file.conf>    tear an interface down
  show [<iface>|all|interfaces] [dump]
                           show interfaces, like \`wg show\`
  signal --listen ADDR:PORT [--tls-cert F --tls-key F]
                           run the signaling server peers behind NATs meet through
  proxyguard client|server [options]
                           WireGuard over TCP (UoTLV/1), a drop-in for ProxyGuard
  genkey                   print a new private key (base64)
  pubkey                   read a private key on stdin, print its public key
  genpsk                   print a new preshared key
  version                  print the version
  help                     print this help

Every running interface also answers the standard \`wg\` tool on
/var/run/wireguard/<iface>.sock.
`;

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

export function version(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const p of [join(here, "../../package.json"), join(here, "../package.json")]) {
    try {
      const pkg = JSON.parse(readFileSync(p, "utf8")) as { name?: string; version?: string };
      if (pkg.name === "tswg" && pkg.version) return pkg.version;
    } catch {
      // try the next candidate
    }
  }
  return "0.0.0";
}

/** Runs the command line; resolves with the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case undefined:
      case "help":
      case "--help":
      case "-h":
        process.stdout.write(USAGE);
        return cmd === undefined ? 1 : 0;
      case "version":
      case "--version":
        process.stdout.write(`tswg ${version()}\n`);
        return 0;
      case "genkey":
      case "genpsk":
      case "pubkey":
        return await (await import("./keys.js")).runKeyCommand(cmd, rest);
      case "show":
        return await (await import("./show.js")).runShow(rest);
      case "up":
        return await (await import("./up.js")).runUp(rest);
      case "down":
        return await (await import("./down.js")).runDown(rest);
      case "signal":
        return await (await import("./signal.js")).runSignal(rest);
      case "proxyguard":
        return await (await import("./proxyguard.js")).runProxyguard(rest);
      default:
        throw new UsageError(`unknown command "${cmd}"`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`tswg: ${err.message}\n\n${USAGE}`);
      return 2;
    }
    process.stderr.write(`tswg: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}
