/**
 * The NAT-traversal side of `tswg up`: when the configuration names a signaling service, peers
 * without an `Endpoint` are reached through ICE. This module builds the chain
 * transport (ws/wss/nats) → sealed channel → ICE manager → ICE Bind, and reports ICE status in
 * the form the UAPI extras carry. None of it depends on the device: the same chain can feed a
 * kernel WireGuard through a proxy.
 */
import { IceBind } from "../bind/ice.js";
import type { CandidateType } from "../ice/candidates.js";
import type { IcePath } from "../ice/agent.js";
import { IceManager } from "../ice/manager.js";
import { parseIceServers } from "../ice/servers.js";
import type { Logger } from "../log/logger.js";
import { SealedChannel } from "../signaling/channel.js";
import { createTransport } from "../signaling/create-transport.js";

export interface IceSettings {
  /** ws://, wss:// or nats:// URL(s) of the signaling service. */
  signaling: string;
  /** stun:/turn:/turns: URLs, comma separated (credentials inline: turn:user:pass@host:port). */
  iceServers?: string;
  candidateTypes?: CandidateType[];
  portRange?: [number, number];
  /** A CA file for wss:// signaling and turns: servers, instead of the system store. */
  caFile?: string;
}

export interface IceStack {
  bind: IceBind;
  manager: IceManager;
  /** The endpoint string a peer reached through ICE gets: "ice:<base64 public key>". */
  endpointFor(publicKeyBase64: string): string;
  /** UAPI extras for a peer (state, selected pair, RTT, restarts), or undefined if not an ICE peer. */
  statusExtras(publicKeyBase64: string): Record<string, string> | undefined;
  close(): Promise<void>;
}

function describePair(p: { local: { type: string; address: string; port: number }; remote: { type: string; address: string; port: number } }): string {
  const side = (c: { type: string; address: string; port: number }) =>
    `${c.type} ${c.address.includes(":") ? `[${c.address}]` : c.address}:${c.port}`;
  return `${side(p.local)} -> ${side(p.remote)}`;
}

/** "direct", or "relay via TURN 192.0.2.1:3478 over tcp": what a user needs to know when UDP is blocked. */
function describePath(p: IcePath): string {
  if (p.relay === null) return p.local.type === "host" && p.remote.type === "host" ? "direct" : "direct (through NAT)";
  const host = p.relay.host.includes(":") ? `[${p.relay.host}]` : p.relay.host;
  return `relay via TURN ${host}:${p.relay.port} over ${p.relay.transport}`;
}

export async function startIce(opts: {
  settings: IceSettings;
  privateKey: Uint8Array;
  publicKey: Uint8Array;
  /** Peers to reach through ICE (32-byte public keys). */
  peers: Uint8Array[];
  interfaceName: string;
  log: Logger;
}): Promise<IceStack> {
  const { settings, log } = opts;
  const servers = settings.iceServers ? parseIceServers(settings.iceServers) : [];
  const transport = createTransport(settings.signaling, {
    privateKey: opts.privateKey,
    caFile: settings.caFile,
    logger: log.child("signaling"),
  });
  const channel = new SealedChannel({ privateKey: opts.privateKey, transport, peers: opts.peers, logger: log.child("signaling") });
  transport.on("connected", () => log.info(`signaling: connected to ${settings.signaling}`));
  transport.on("disconnected", () => log.warn(`signaling: lost ${settings.signaling}, reconnecting`));
  // Not awaited: the device comes up and ICE gathers while the connection is made (what is sent
  // meanwhile waits for it). The service may also come later: the transport keeps retrying, and
  // established paths do not need it.
  channel.start().catch((err: unknown) => {
    log.warn(`signaling: ${err instanceof Error ? err.message : String(err)}; retrying in the background`);
  });
  const manager = new IceManager({
    publicKey: opts.publicKey,
    channel,
    servers,
    tunnelInterface: opts.interfaceName,
    candidateTypes: settings.candidateTypes,
    portRange: settings.portRange,
    logger: log.child("ice"),
  });
  for (const p of opts.peers) manager.addPeer(p);
  // A connection to the signaling service from an address that is gone would only be noticed
  // dead at its ping timeout, and the ICE restart that follows a network change needs it now.
  manager.onNetworkChange(() => transport.reconnectNow?.());
  manager.onStateChange((peer, state) => log.info(`ice: peer ${peer.slice(0, 8)}…: ${state}`));
  // Path switches: each time a peer's traffic moves from one path to another (upgrade, fail-over,
  // restart), as the ICE layer announces it to the data plane.
  const lastPath = new Map<string, string>();
  const switches = new Map<string, number>();
  manager.onPathChange((peer, path) => {
    log.info(`ice: peer ${peer.slice(0, 8)}…: ${path === null ? "no path" : describePath(path)}`);
    if (path === null) return;
    const text = describePath(path);
    const before = lastPath.get(peer);
    if (before !== undefined && before !== text) switches.set(peer, (switches.get(peer) ?? 0) + 1);
    lastPath.set(peer, text);
  });
  const bind = new IceBind(manager);
  return {
    bind,
    manager,
    endpointFor: (k) => `ice:${k}`,
    statusExtras(k) {
      if (!manager.hasPeer(k)) return undefined;
      const s = manager.statusOf(k);
      if (s === undefined || s === null) return undefined;
      const extra: Record<string, string> = { tswg_ice_state: s.state, tswg_ice_restarts: String(s.restarts) };
      if (s.selectedPair !== null) extra.tswg_ice_pair = describePair(s.selectedPair);
      if (s.path !== null) extra.tswg_ice_path = describePath(s.path);
      if (s.rttMs !== null) extra.tswg_ice_rtt = `${s.rttMs.toFixed(1)} ms`;
      extra.tswg_path_switches = String(switches.get(k) ?? 0);
      // Datagrams through the ICE path, which for an ICE peer are all of its packets — unless the
      // data plane carries the path on the interface's own socket, where the agent sees none.
      const carried = s.path !== null && (s.path.shared || s.path.sharedRelay !== null);
      if (!carried) {
        extra.tswg_tx_packets = String(s.txPackets);
        extra.tswg_rx_packets = String(s.rxPackets);
      }
      return extra;
    },
    async close() {
      await manager.close();
      await channel.close();
    },
  };
}
