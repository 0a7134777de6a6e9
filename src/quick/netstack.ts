/**
 * `Netstack = true | router`: the interface runs on the in-process network stack, with the
 * configured proxies, forwards and (router mode) the flow router on top. Nothing here needs
 * root: no TUN, no addresses or routes on the host, the UAPI socket in the user's runtime dir.
 */
import type { QuickInterface } from "../conf/wgquick.js";
import { formatProxyListen } from "../conf/netstack-values.js";
import { HttpProxyServer } from "../gateway/http-proxy.js";
import { PortMapper } from "../gateway/port-mapping.js";
import { Router } from "../gateway/router.js";
import { Socks5Server } from "../gateway/socks5.js";
import type { Logger } from "../log/logger.js";
import { Netstack } from "../netstack/netstack.js";

export interface NetstackServices {
  readonly router: Router | null;
  readonly socks5: Socks5Server[];
  readonly httpProxies: HttpProxyServer[];
  readonly mappings: PortMapper[];
  close(): Promise<void>;
}


export function createInterfaceStack(name: string, iface: QuickInterface): Netstack {
  if (iface.addresses.length === 0) throw new Error("Netstack needs at least one Address in [Interface]");
  return new Netstack({ name, addresses: iface.addresses, mtu: iface.mtu ?? 1420, router: iface.netstack === "router", dns: iface.dns });
}

/** Starts every proxy and forward of the interface; on failure, closes what was started. */
export async function startNetstackServices(stack: Netstack, iface: QuickInterface, log: Logger): Promise<NetstackServices> {
  const started: { close(): Promise<void> | void }[] = [];
  const services: NetstackServices = {
    router: null,
    socks5: [],
    httpProxies: [],
    mappings: [],
    close: async () => {
      for (const s of started.reverse()) await s.close();
    },
  };
  try {
    if (stack.router) {
      // TSWG_ROUTER_MAX_FLOWS: how many flows may be open at once (default 4096).
      const max = Number(process.env.TSWG_ROUTER_MAX_FLOWS);
      const router = new Router(stack, log, { maxFlows: Number.isInteger(max) && max > 0 ? max : undefined });
      started.push(router);
      (services as { router: Router | null }).router = router;
      log.info("[#] router mode: flows to any destination are carried by this host's sockets");
    }
    for (const p of iface.socks5 ?? []) {
      const s = new Socks5Server(p, stack, log);
      const port = await s.start();
      started.push(s);
      services.socks5.push(s);
      log.info(`[#] SOCKS5 proxy on ${formatProxyListen({ ...p, port, password: p.password && "…" })}`);
    }
    for (const p of iface.httpProxy ?? []) {
      const s = new HttpProxyServer(p, stack, log);
      const port = await s.start();
      started.push(s);
      services.httpProxies.push(s);
      log.info(`[#] HTTP proxy on ${formatProxyListen({ ...p, port, password: p.password && "…" })}`);
    }
    for (const [list, dir] of [
      [iface.forward ?? [], "forward"],
      [iface.expose ?? [], "expose"],
    ] as const) {
      for (const m of list) {
        const pm = new PortMapper(m, dir, stack, log);
        try {
          await pm.start();
        } catch (err) {
          throw new Error(`${pm.description}: ${err instanceof Error ? err.message : String(err)}`);
        }
        started.push(pm);
        services.mappings.push(pm);
        log.info(`[#] ${pm.description}`);
      }
    }
  } catch (err) {
    await services.close();
    throw err;
  }
  watchDrops(stack, log, started);
  return services;
}

/** Logs the stack's drop counters when they grow (checked every 5 s). */
function watchDrops(stack: Netstack, log: Logger, started: { close(): Promise<void> | void }[]): void {
  let last = { synDropped: 0, outputDropped: 0, routerDropped: 0 };
  const timer = setInterval(() => {
    const s = stack.stats();
    const now = { synDropped: s.synDropped, outputDropped: s.outputDropped, routerDropped: s.routerDropped };
    if (now.synDropped > last.synDropped) log.warn(`netstack: ${now.synDropped} SYNs dropped so far (too many half-open connections or waiting flows)`);
    if (now.routerDropped > last.routerDropped) log.info(`netstack: ${now.routerDropped} router packets dropped so far (fragments, not TCP/UDP)`);
    if (now.outputDropped > last.outputDropped) log.debug(`netstack: ${now.outputDropped} outbound packets dropped so far (queue full)`);
    last = now;
  }, 5000);
  timer.unref();
  started.unshift({ close: () => clearInterval(timer) });
}
