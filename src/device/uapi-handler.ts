/**
 * Connects a Device to the UAPI socket, so `wg` can read and change it.
 *
 * A set request is checked completely (endpoints parsed, port range) before anything changes,
 * so a request that fails leaves the device as it was, except a listen-port change that fails to
 * bind, which is applied last and reported as EADDRINUSE.
 */
import type { Endpoint } from "../bind/bind.js";
import { UapiErrno, UapiError } from "../uapi/error.js";
import type { UapiDeviceState, UapiHandler, UapiSetRequest } from "../uapi/types.js";
import type { Device } from "./device.js";

const IP_PORT = /^(\d{1,3}(\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+(%[\w.-]+)?\]):\d{1,5}$/u;

/**
 * `wg` resolves the `endpoint` value with getaddrinfo, so only "ip:port" may go there; an ICE
 * peer without a selected pair, or a TCP URL, is reported in tswg's own keys instead.
 */
function endpointFields(
  endpoint: string | null,
  transport: string | null,
  plane: { dataPlane: string; carriedBy: string | null },
): { endpoint?: string; extra?: Record<string, string> } {
  const extra: Record<string, string> = {};
  if (transport !== null && transport !== "udp") extra.tswg_transport = transport;
  // Which plane seals the peer's packets, and over what when its transport rides the UDP socket.
  if (endpoint !== null) extra.tswg_data_plane = plane.dataPlane;
  if (plane.carriedBy !== null) extra.tswg_carried_by = plane.carriedBy;
  if (endpoint !== null && !IP_PORT.test(endpoint)) extra.tswg_endpoint = endpoint;
  const fields: { endpoint?: string; extra?: Record<string, string> } = {};
  if (endpoint !== null && IP_PORT.test(endpoint)) fields.endpoint = endpoint;
  if (Object.keys(extra).length > 0) fields.extra = extra;
  return fields;
}

/**
 * The peer's path MTU as a tswg key ("1280 (icmp)"; "any (tcp)" on a TCP path, which has no
 * datagram limit), shown by `tswg show`, ignored by `wg`.
 */
function withPathMtu<T extends { extra?: Record<string, string> }>(fields: T, pathMtu: { mtu: number; source: string } | null): T {
  if (pathMtu === null) return fields;
  return { ...fields, extra: { ...fields.extra, tswg_path_mtu: `${pathMtu.mtu > 0 ? pathMtu.mtu : "any"} (${pathMtu.source})` } };
}

export function deviceUapiHandler(device: Device): UapiHandler {
  return {
    get(): UapiDeviceState {
      const s = device.status();
      return {
        privateKey: s.privateKey ?? undefined,
        listenPort: s.listenPort,
        fwmark: s.fwmark,
        // Shown by `tswg show` ("data path: native") and the metrics, ignored by `wg`.
        extra: {
          tswg_data_path: s.dataPath,
          tswg_crypto: s.cryptoBackend,
          tswg_cookie_mode: s.underLoad ? "true" : "false",
          tswg_handshakes_received: String(s.handshakes.initiationsReceived),
          tswg_handshake_responses_received: String(s.handshakes.responsesReceived),
          tswg_cookie_replies_sent: String(s.handshakes.cookieRepliesSent),
        },
        peers: s.peers.map((p) => ({
          publicKey: p.publicKey,
          presharedKey: p.presharedKey ?? undefined,
          ...withPathMtu(endpointFields(p.endpoint, p.transport, p), p.pathMtu),
          persistentKeepalive: p.persistentKeepalive,
          allowedIps: p.allowedIps,
          lastHandshakeMs: p.lastHandshakeMs,
          txBytes: p.txBytes,
          rxBytes: p.rxBytes,
          protocolVersion: 1,
        })),
      };
    },

    async set(req: UapiSetRequest): Promise<void> {
      const endpoints = new Map<number, Endpoint>();
      req.peers.forEach((change, i) => {
        if (change.remove || change.endpoint === undefined) return;
        try {
          endpoints.set(i, device.parseEndpoint(change.endpoint));
        } catch (err) {
          throw new UapiError(UapiErrno.INVALID, err instanceof Error ? err.message : String(err));
        }
      });

      if (req.privateKey !== undefined) device.setPrivateKey(req.privateKey);
      if (req.replacePeers) device.removeAllPeers();
      req.peers.forEach((change, i) => {
        if (change.remove) {
          device.removePeer(change.publicKey);
          return;
        }
        if (change.updateOnly && !device.hasPeer(change.publicKey)) return;
        device.setPeer({
          publicKey: change.publicKey,
          presharedKey: change.presharedKey,
          endpoint: endpoints.get(i),
          persistentKeepalive: change.persistentKeepalive,
          replaceAllowedIps: change.replaceAllowedIps,
          allowedIps: change.allowedIps,
          removeAllowedIps: change.removeAllowedIps,
        });
      });
      // One native route table rebuild for the whole request.
      device.flushRoutes();
      if (req.fwmark !== undefined) {
        try {
          await device.setFwmark(req.fwmark);
        } catch (err) {
          throw new UapiError(UapiErrno.PORT_IN_USE, `cannot set fwmark: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
      if (req.listenPort !== undefined) {
        try {
          await device.setListenPort(req.listenPort);
        } catch (err) {
          throw new UapiError(
            UapiErrno.PORT_IN_USE,
            `cannot listen on port ${req.listenPort}: ${err instanceof Error ? err.message : String(err)}`,
          );
        }
      }
    },
  };
}
