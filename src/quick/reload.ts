/**
 * Reloading a running interface from its (changed) configuration file without dropping the
 * tunnel, as `wg syncconf` does for wg-quick: keys, port, mark and peers are brought in line;
 * sessions of unchanged peers survive. wg-quick settings (addresses, routes, DNS, hooks, MTU)
 * are not re-applied: like wg-quick, those need a down and up.
 */
import type { QuickConfig } from "../conf/wgquick.js";
import { keyToBase64 } from "../crypto/keys.js";
import type { Device } from "../device/device.js";
import type { Logger } from "../log/logger.js";
import type { IceStack } from "./ice.js";
import { resolveEndpoint } from "./resolve.js";

export async function reloadDevice(device: Device, config: QuickConfig, ice: IceStack | null, log: Logger): Promise<void> {
  const i = config.interface;
  // Resolve first: a name that does not resolve must leave the interface as it was.
  const endpoints = await Promise.all(config.peers.map((p) => (p.endpoint === undefined ? undefined : resolveEndpoint(p.endpoint))));
  const current = device.status();
  if (current.privateKey === null || keyToBase64(current.privateKey) !== keyToBase64(i.privateKey)) device.setPrivateKey(i.privateKey);
  if (i.listenPort !== undefined && i.listenPort !== current.listenPort) await device.setListenPort(i.listenPort);
  if ((i.fwMark ?? 0) !== current.fwmark) await device.setFwmark(i.fwMark ?? 0);

  const wanted = new Set(config.peers.map((p) => keyToBase64(p.publicKey)));
  for (const p of current.peers) {
    const k = keyToBase64(p.publicKey);
    if (wanted.has(k)) continue;
    device.removePeer(p.publicKey);
    await ice?.manager.removePeer(k);
    log.info(`reload: removed peer ${k}`);
  }
  const known = new Set(current.peers.map((p) => keyToBase64(p.publicKey)));
  config.peers.forEach((p, n) => {
    const k = keyToBase64(p.publicKey);
    let endpoint: string | undefined = endpoints[n];
    if (endpoint === undefined && ice !== null) {
      ice.manager.addPeer(p.publicKey);
      endpoint = ice.endpointFor(k);
    } else if (endpoint === undefined && !known.has(k)) {
      log.warn(`reload: peer ${k} has no Endpoint and there is no Signaling: it can only be reached once it connects`);
    }
    device.setPeer({
      publicKey: p.publicKey,
      presharedKey: p.presharedKey ?? null,
      endpoint,
      persistentKeepalive: p.persistentKeepalive ?? 0,
      allowedIps: p.allowedIps,
      replaceAllowedIps: true,
    });
    if (!known.has(k)) log.info(`reload: added peer ${k}`);
  });
}
