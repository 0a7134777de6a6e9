/**
 * `tswg save <name|file>`: writes the running interface's WireGuard state (keys, port, peers, as
 * changed with `wg set`) back to its configuration file, keeping the file's wg-quick and tswg
 * settings, like `wg-quick save`. The state is read over the UAPI socket.
 */
import { renameSync, writeFileSync } from "node:fs";
import { parseEndpoint } from "../conf/values.js";
import { formatConfig, type Endpoint, type QuickConfig } from "../conf/wgquick.js";
import { parseHostPort } from "../hostport/host-port.js";
import { uapiGet } from "../uapi/client.js";
import { peerExtraView } from "../uapi/tswg-status.js";
import type { UapiDeviceState } from "../uapi/types.js";
import { parseArgs, wantsHelp } from "./args.js";
import { locateConfig, readConfig } from "./config-file.js";

export const SAVE_USAGE = `Usage: tswg save <name|file.conf>

Writes the running interface's keys, listen port and peers back to its configuration file,
keeping Address, DNS, hooks and tswg's own keys, like \`wg-quick save\`.
`;

/** The file's configuration with the WireGuard part replaced by the running state. */
export function savedConfig(base: QuickConfig, s: UapiDeviceState): QuickConfig {
  return {
    interface: { ...base.interface, privateKey: s.privateKey ?? base.interface.privateKey, listenPort: s.listenPort || undefined, fwMark: s.fwmark || base.interface.fwMark },
    peers: s.peers.map((p) => {
      const v = peerExtraView(p.extra);
      let endpoint: Endpoint | undefined;
      if (p.endpoint !== undefined && v.transport === "udp") {
        const hp = parseHostPort(p.endpoint, { minPort: 0 });
        endpoint = { host: hp.zone === "" ? hp.host : `${hp.host}%${hp.zone}`, port: hp.port };
      } else if (v.transport === "tcp" && v.endpoint !== undefined && /^https?:\/\//u.test(v.endpoint)) {
        endpoint = parseEndpoint(v.endpoint);
      }
      // An ICE peer has no Endpoint line: it is found through the signaling service again.
      return { publicKey: p.publicKey, presharedKey: p.presharedKey, allowedIps: p.allowedIps, endpoint, persistentKeepalive: p.persistentKeepalive || undefined };
    }),
  };
}

export async function runSave(args: string[]): Promise<number> {
  if (wantsHelp(args)) {
    process.stdout.write(SAVE_USAGE);
    return 0;
  }
  const target = parseArgs(args, { command: "save", flags: {}, positionals: ["an interface name or configuration file"], usage: SAVE_USAGE }).positionals[0]!;
  const located = locateConfig(target);
  const base = readConfig(located.path);
  let state: UapiDeviceState;
  try {
    state = await uapiGet(located.interfaceName);
  } catch (err) {
    throw new Error(`\`${located.interfaceName}' is not running: ${err instanceof Error ? err.message : String(err)}`);
  }
  const tmp = `${located.path}.tmp-${process.pid}`;
  writeFileSync(tmp, formatConfig(savedConfig(base, state)), { mode: 0o600 });
  renameSync(tmp, located.path);
  process.stderr.write(`tswg: saved ${located.interfaceName} to ${located.path}\n`);
  return 0;
}
