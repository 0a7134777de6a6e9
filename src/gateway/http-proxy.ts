/**
 * An HTTP proxy on a local TCP port into the tunnel: CONNECT tunnels (any protocol, e.g.
 * HTTPS) and plain requests in absolute form (`GET http://host/path`), forwarded with the
 * tunnel's connections. With credentials, `Proxy-Authorization: Basic` is required (407).
 *
 * 1. CONNECT host:port → dial through the tunnel → "200 Connection Established" → splice.
 * 2. Other methods → a new request to the origin over a tunnel connection (hop-by-hop headers
 *    dropped), its response streamed back.
 */
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { ProxyListen } from "../conf/netstack-values.js";
import type { Logger } from "../log/logger.js";
import { newStats, type ServiceStats, type TunnelDialer } from "./dialer.js";
import { splice } from "./splice.js";
import { listenOn } from "../sockets/ready.js";

const HOP_BY_HOP = ["connection", "keep-alive", "proxy-authorization", "proxy-authenticate", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"];

export class HttpProxyServer {
  readonly stats: ServiceStats = newStats();
  #server: Server;
  readonly #sockets = new Set<Socket | Duplex>();

  constructor(
    private readonly listen: ProxyListen,
    private readonly tunnel: TunnelDialer,
    private readonly log: Logger,
  ) {
    this.#server = createServer((req, res) => void this.#forward(req, res));
    this.#server.on("connect", (req: IncomingMessage, socket: Socket, head: Buffer) => void this.#connect(req, socket, head));
    this.#server.on("connection", (s: Socket) => {
      this.#sockets.add(s);
      s.once("close", () => this.#sockets.delete(s));
    });
    this.#server.on("clientError", (_err, socket: Socket) => {
      this.stats.rejected++;
      if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
      else socket.destroy();
    });
  }

  async start(): Promise<number> {
    await listenOn(this.#server, this.listen.port, this.listen.host);
    return (this.#server.address() as AddressInfo).port;
  }

  #authorized(req: IncomingMessage): boolean {
    if (this.listen.username === undefined) return true;
    const h = req.headers["proxy-authorization"];
    const m = typeof h === "string" ? /^Basic\s+(\S+)$/iu.exec(h) : null;
    if (!m) return false;
    return Buffer.from(m[1]!, "base64").toString("utf8") === `${this.listen.username}:${this.listen.password ?? ""}`;
  }

  async #connect(req: IncomingMessage, client: Socket, head: Buffer): Promise<void> {
    this.stats.accepted++;
    client.on("error", () => {});
    if (!this.#authorized(req)) {
      this.stats.rejected++;
      client.end('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="tswg"\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const m = /^\[?([^\]]+?)\]?:(\d{1,5})$/u.exec(req.url ?? "");
    if (!m || Number(m[2]) === 0 || Number(m[2]) > 65535) {
      this.stats.rejected++;
      client.end("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
      return;
    }
    const upstream = this.tunnel.connect({ host: m[1]!, port: Number(m[2]), timeout: 15_000, allowHalfOpen: true });
    const ok = await new Promise<boolean>((resolve) => {
      upstream.once("connect", () => resolve(true));
      upstream.once("error", (err: NodeJS.ErrnoException) => {
        this.log.debug(`http proxy: CONNECT ${req.url}: ${err.message}`);
        const status = err.code === "ETIMEDOUT" ? "504 Gateway Timeout" : "502 Bad Gateway";
        if (!client.destroyed) client.end(`HTTP/1.1 ${status}\r\nContent-Length: 0\r\n\r\n`);
        resolve(false);
      });
    });
    if (!ok) {
      this.stats.failed++;
      return;
    }
    client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
    if (head.length > 0) upstream.write(head);
    this.#sockets.add(upstream);
    upstream.once("close", () => this.#sockets.delete(upstream));
    this.stats.active++;
    await splice(client, upstream);
    this.stats.active--;
  }

  #forward(req: IncomingMessage, res: ServerResponse): void {
    this.stats.accepted++;
    if (!this.#authorized(req)) {
      this.stats.rejected++;
      res.writeHead(407, { "Proxy-Authenticate": 'Basic realm="tswg"', "Content-Length": 0 }).end();
      return;
    }
    let url: URL;
    try {
      url = new URL(req.url ?? "");
      if (url.protocol !== "http:") throw new Error("not http");
    } catch {
      this.stats.rejected++;
      res.writeHead(400, { "Content-Type": "text/plain" }).end("tswg proxy: only absolute http:// URLs (use CONNECT for others)\n");
      return;
    }
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !HOP_BY_HOP.includes(k)) headers[k] = v;
    const host = url.hostname.replace(/^\[(.*)\]$/u, "$1");
    const port = Number(url.port || 80);
    const upstream = request(
      {
        method: req.method,
        path: url.pathname + url.search,
        headers,
        host,
        port,
        // No agent: with one, Node would ignore createConnection and dial the host's network.
        createConnection: () => this.tunnel.connect({ host, port, timeout: 15_000 }) as unknown as Socket,
      },
      (up) => {
        const out: Record<string, string | string[]> = {};
        for (const [k, v] of Object.entries(up.headers)) if (v !== undefined && !HOP_BY_HOP.includes(k)) out[k] = v;
        res.writeHead(up.statusCode ?? 502, up.statusMessage, out);
        up.pipe(res);
      },
    );
    this.stats.active++;
    res.once("close", () => {
      this.stats.active--;
      upstream.destroy();
    });
    upstream.on("error", (err) => {
      this.stats.failed++;
      this.log.debug(`http proxy: ${req.method} ${req.url}: ${err.message}`);
      if (!res.headersSent) res.writeHead(502, { "Content-Type": "text/plain" }).end(`tswg proxy: ${err.message}\n`);
      else res.destroy();
    });
    req.pipe(upstream);
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const s of this.#sockets) s.destroy();
    await closed;
  }
}
