/**
 * The `tswg` command line. Each subcommand lives in its own module and is loaded on demand,
 * so `tswg genkey` does not pay for loading the device. Shared argument handling is in args.ts.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { EXIT_FAILURE, EXIT_USAGE, UsageError } from "./args.js";

export const USAGE = `Usage: tswg <command> [arguments]

Commands:
  up <name|file.conf> [--detach] [--log-level L] [--log-file F]
                           bring up an interface from a wg-quick style configuration
                           (a bare name is looked up in /etc/tswg/ and /etc/wireguard/)
                           --netstack: no root, no TUN: an in-process network stack with the
                           file's SOCKS5/HTTPProxy/Forward/Expose; --uapi PATH.sock for its socket
  down <name|file.conf>    tear an interface down
  show [<iface>|all|interfaces] [dump] [--json]
                           show interfaces, like \`wg show\`; --json for scripts
  ping <peer> [-c N] [-i iface]
                           ping a peer through the tunnel and say which path answered
  netcheck [--ice-servers URLS] [name|file.conf] [--json]
                           what the local network allows: NAT mapping, UDP, STUN/TURN latency
  strip <name|file.conf>   print the configuration without the wg-quick and tswg keys
  save <name|file.conf>    write the running configuration back to the file
  signal --listen ADDR:PORT [--tls-cert F --tls-key F] [--metrics ADDR:PORT]
                           run the signaling server peers behind NATs meet through
  proxyguard client|server [options]
                           WireGuard over TCP (UoTLV/1), a drop-in for ProxyGuard
  genkey                   print a new private key (base64)
  pubkey                   read a private key on stdin, print its public key
  genpsk                   print a new preshared key
  version                  print the version
  help                     print this help

\`tswg <command> --help\` describes a command. Every running interface also answers the
standard \`wg\` tool on /var/run/wireguard/<iface>.sock.
`;

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

type Command = (args: string[]) => Promise<number>;

const COMMANDS: Record<string, () => Promise<Command>> = {
  genkey: async () => (args) => import("./keys.js").then((m) => m.runKeyCommand("genkey", args)),
  genpsk: async () => (args) => import("./keys.js").then((m) => m.runKeyCommand("genpsk", args)),
  pubkey: async () => (args) => import("./keys.js").then((m) => m.runKeyCommand("pubkey", args)),
  show: async () => (await import("./show.js")).runShow,
  up: async () => (await import("./up.js")).runUp,
  down: async () => (await import("./down.js")).runDown,
  strip: async () => (await import("./strip.js")).runStrip,
  save: async () => (await import("./save.js")).runSave,
  ping: async () => (await import("./ping.js")).runPing,
  netcheck: async () => (await import("./netcheck.js")).runNetcheck,
  signal: async () => (await import("./signal.js")).runSignal,
  proxyguard: async () => (await import("./proxyguard.js")).runProxyguard,
};

/** Runs the command line; resolves with the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case undefined:
        throw new UsageError("no command given");
      case "help":
      case "--help":
      case "-h":
        process.stdout.write(USAGE);
        return 0;
      case "version":
      case "--version":
        process.stdout.write(`tswg ${version()}\n`);
        return 0;
    }
    const load = Object.hasOwn(COMMANDS, cmd) ? COMMANDS[cmd] : undefined;
    if (load === undefined) throw new UsageError(`unknown command "${cmd}"`);
    return await (await load())(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`tswg: ${err.message}\n\n${err.usage ?? USAGE}`);
      return EXIT_USAGE;
    }
    process.stderr.write(`tswg: ${err instanceof Error ? err.message : String(err)}\n`);
    return EXIT_FAILURE;
  }
}
