/**
 * Building blocks for the UoTLV/1 tests in network namespaces: a client host and a server host
 * joined by a veth pair on which nftables drops all UDP, so WireGuard can only get through over
 * TCP; the proxy commands, tswg interfaces and nginx started inside them.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waitFor, type Host, type TrackedProcess } from "../helpers/netns.js";
import { TSWG_BIN } from "../interop/nodes.js";

export const MB = 1024 * 1024;

/** Drops every UDP datagram that would cross `ifname`, both ways, inside `host`. */
export async function blockUdp(host: Host, ifname: string): Promise<void> {
  await host.exec(["nft", "-f", "-"], {
    input: `table inet tswgt_block_udp {
  chain in { type filter hook input priority 0; iifname "${ifname}" meta l4proto udp drop; }
  chain out { type filter hook output priority 0; oifname "${ifname}" meta l4proto udp drop; }
}
`,
  });
}

/**
 * Sends a few UDP datagrams from `from` to `toIp:port` and reports whether any arrived: proof
 * that the path really is closed to UDP.
 */
export async function udpGetsThrough(from: Host, to: Host, toIp: string, port = 40404): Promise<boolean> {
  const listener = to.spawn(["node", "-e", `
    const s = require("dgram").createSocket("udp4");
    s.on("message", () => { console.log("got"); process.exit(0); });
    s.bind(${port}, "${toIp}", () => console.log("ready"));
    setTimeout(() => process.exit(0), 3000);
  `]);
  await listener.waitForOutput("ready");
  await from.exec(["node", "-e", `
    const s = require("dgram").createSocket("udp4");
    let n = 0;
    const t = setInterval(() => { s.send("x", ${port}, "${toIp}", () => {}); if (++n === 5) { clearInterval(t); setTimeout(() => s.close(), 100); } }, 50);
  `], { check: false });
  await listener.exited;
  return listener.stdout.includes("got");
}

export function startProxyServer(host: Host, listen: string, to: string): TrackedProcess {
  return host.spawn(["node", TSWG_BIN, "proxyguard", "server", "--listen", listen, "--to", to, "--log-level", "debug"]);
}

export function startProxyClient(host: Host, args: string[]): TrackedProcess {
  return host.spawn(["node", TSWG_BIN, "proxyguard", "client", ...args, "--log-level", "debug"]);
}

/** A `tswg up` process for a configuration text; resolves once the interface is up. */
export async function startTswg(host: Host, ifname: string, config: string, env: Record<string, string> = {}): Promise<{ proc: TrackedProcess; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), "tswgt-conf-"));
  const path = join(dir, `${ifname}.conf`);
  writeFileSync(path, config, { mode: 0o600 });
  const proc = host.spawn(["node", TSWG_BIN, "up", path, "--log-level", "debug"], { env: { TSWG_RUN_DIR: dir, ...env } });
  await proc.waitForOutput(`interface ${ifname} is up`, { timeoutMs: 20_000 });
  return {
    proc,
    async stop() {
      await proc.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * nginx as a TLS reverse proxy in front of a UoTLV/1 server: `listen` with the given
 * certificate, `location = path` forwarded to `upstream` with the upgrade headers passed on.
 */
export async function startNginx(
  host: Host,
  o: { listen: string; certFile: string; keyFile: string; path: string; upstream: string },
): Promise<{ proc: TrackedProcess; dir: string; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), "tswgt-nginx-"));
  const conf = join(dir, "nginx.conf");
  writeFileSync(
    conf,
    `user root;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections 4096; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  server {
    listen ${o.listen} ssl;
    ssl_certificate ${o.certFile};
    ssl_certificate_key ${o.keyFile};
    ssl_protocols TLSv1.3;
    location = ${o.path} {
      proxy_pass ${o.upstream};
      proxy_http_version 1.1;
      proxy_set_header Host $host;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "Upgrade";
      proxy_read_timeout 1h;
      proxy_send_timeout 1h;
    }
  }
}
`,
  );
  const proc = host.spawn(["nginx", "-c", conf, "-p", dir, "-g", "daemon off;"]);
  // nginx says nothing on success: wait for its pid file instead.
  await waitFor(() => existsSync(`${dir}/nginx.pid`) || !proc.running, { what: "nginx to start", timeoutMs: 10_000 });
  if (!proc.running) throw new Error(`nginx did not start: ${proc.stderr}`);
  return {
    proc,
    dir,
    async stop() {
      await proc.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
