/**
 * `tswg strip`: a configuration reduced to what `wg setconf` / `wg syncconf` understand, as
 * `wg-quick strip` does: the wg-quick keys (Address, DNS, MTU, Table, hooks, SaveConfig) and
 * tswg's own (TCPListen, Signaling, ICE*, MetricsListen) go, and so do UoTLV/1 URL endpoints,
 * which `wg` cannot parse (such peers keep their keys and allowed IPs).
 */
import type { QuickConfig } from "./wgquick.js";

export function stripConfig(config: QuickConfig): QuickConfig {
  const i = config.interface;
  return {
    interface: {
      privateKey: i.privateKey,
      listenPort: i.listenPort,
      fwMark: i.fwMark,
      addresses: [],
      dns: [],
      dnsSearch: [],
      preUp: [],
      postUp: [],
      preDown: [],
      postDown: [],
      saveConfig: false,
    },
    peers: config.peers.map((p) => ({ ...p, endpoint: p.endpoint?.url === undefined ? p.endpoint : undefined })),
  };
}
