/**
 * `MetricsListen =`: serves the interface's Prometheus metrics, read through the same handler the
 * UAPI socket answers `get` with, so metrics, `wg show` and `tswg show` never disagree.
 */
import { parseHostPort } from "../hostport/host-port.js";
import type { Logger } from "../log/logger.js";
import { MetricsServer } from "../metrics/server.js";
import { interfaceMetrics } from "../metrics/wireguard.js";
import type { UapiHandler } from "../uapi/types.js";

/** Starts serving on `listen` ("127.0.0.1:9586"); resolves with the server once it listens. */
export async function startMetrics(name: string, listen: string, handler: UapiHandler, log: Logger): Promise<MetricsServer> {
  const { host, port } = parseHostPort(listen);
  const server = new MetricsServer({ host, port, collect: async () => interfaceMetrics(name, await handler.get()) });
  try {
    await server.start();
  } catch (err) {
    throw new Error(`MetricsListen ${listen}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  log.info(`metrics on ${server.url}`);
  return server;
}
