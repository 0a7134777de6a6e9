/**
 * A small HTTP server for Prometheus to scrape: `GET /metrics` answers the exposition text of
 * whatever `collect` returns at that moment; everything else is 404. Meant for loopback or a
 * management network: it has no authentication, like the usual exporters.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { formatExposition, type MetricFamily } from "./exposition.js";
import { listenOn } from "../sockets/ready.js";

export interface MetricsServerOptions {
  /** Address to listen on; undefined = every address. */
  host: string | undefined;
  /** 0 = any free port. */
  port: number;
  collect(): MetricFamily[] | Promise<MetricFamily[]>;
}

export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export class MetricsServer {
  private server: Server | null = null;

  constructor(private readonly opts: MetricsServerOptions) {}

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      const path = (req.url ?? "/").split("?")[0];
      if (path !== "/metrics" || (req.method !== "GET" && req.method !== "HEAD")) {
        res.writeHead(path === "/metrics" ? 405 : 404, { "content-type": "text/plain" }).end(path === "/metrics" ? "method not allowed\n" : "not found; try /metrics\n");
        return;
      }
      Promise.resolve()
        .then(() => this.opts.collect())
        .then(
          (families) => {
            const body = formatExposition(families);
            res.writeHead(200, { "content-type": METRICS_CONTENT_TYPE, "content-length": Buffer.byteLength(body) });
            res.end(req.method === "HEAD" ? undefined : body);
          },
          (err: unknown) => {
            res.writeHead(500, { "content-type": "text/plain" }).end(`collecting metrics failed: ${err instanceof Error ? err.message : String(err)}\n`);
          },
        );
    });
    // Scrapers reconnect often; never let an idle one hold the process open.
    server.keepAliveTimeout = 5_000;
    await listenOn(server, this.opts.port, this.opts.host);
    this.server = server;
  }

  get address(): AddressInfo | null {
    const a = this.server?.address();
    return a !== null && typeof a === "object" ? a : null;
  }

  get url(): string {
    const a = this.address;
    if (a === null) return "";
    const host = a.address.includes(":") ? `[${a.address}]` : a.address;
    return `http://${host}:${a.port}/metrics`;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (server === null) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
