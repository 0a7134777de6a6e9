/**
 * Pieces of the network-stack tests: unprivileged tswg processes, nginx with a random file,
 * small Node servers (UDP echo, DNS, HTTP file) started in namespaces, and curl.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Host, TrackedProcess } from "../helpers/netns.js";
import { TSWG_BIN } from "../interop/nodes.js";

export const MB = 1024 * 1024;

/** The uid/gid tswg runs as in these tests. */
export function nobody(): { uid: number; gid: number } {
  const uid = Number(execFileSync("id", ["-u", "nobody"]).toString().trim());
  const gid = Number(execFileSync("id", ["-g", "nobody"]).toString().trim());
  return { uid, gid };
}

/** A directory (and files in it) the unprivileged user owns. */
export function userDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "tswgt-ns-"));
  const { uid, gid } = nobody();
  chownSync(dir, uid, gid);
  chmodSync(dir, 0o700);
  return dir;
}

export function writeUserFile(dir: string, name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text, { mode: 0o600 });
  const { uid, gid } = nobody();
  chownSync(path, uid, gid);
  return path;
}

/** Runs argv as the unprivileged user inside `host` (setpriv keeps the process id). */
export function asUser(argv: string[]): string[] {
  const { uid, gid } = nobody();
  return ["setpriv", `--reuid=${uid}`, `--regid=${gid}`, "--clear-groups", "--inh-caps=-all", ...argv];
}

/** `tswg up --netstack` as the unprivileged user; resolves once the interface is up. */
export async function startUserTswg(host: Host, name: string, config: string): Promise<{ proc: TrackedProcess; dir: string; stop(): Promise<void> }> {
  const dir = userDir();
  const path = writeUserFile(dir, `${name}.conf`, config);
  const proc = host.spawn(asUser(["node", TSWG_BIN, "up", "--netstack", path, "--log-level", "debug"]), {
    env: { XDG_RUNTIME_DIR: dir, TSWG_RUN_DIR: dir, TSWG_LOG_DIR: dir },
  });
  await proc.waitForOutput(`interface ${name} is up`, { timeoutMs: 20_000 });
  return {
    proc,
    dir,
    async stop() {
      await proc.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** nginx on `listen` serving `root`. */
export async function startNginx(host: Host, listen: string, root: string): Promise<{ proc: TrackedProcess; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), "tswgt-nginx-"));
  writeFileSync(
    join(dir, "nginx.conf"),
    `daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log stderr warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  server { listen ${listen}; root ${root}; }
}
`,
  );
  const proc = host.spawn(["nginx", "-c", join(dir, "nginx.conf"), "-p", dir]);
  const { waitFor } = await import("../helpers/netns.js");
  await waitFor(async () => (await host.exec(["sh", "-c", `ss -ltn | grep -qF '${listen} '`], { check: false })).code === 0, {
    timeoutMs: 10_000,
    what: "nginx to listen",
  });
  return {
    proc,
    async stop() {
      await proc.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A file of random bytes and its SHA-256. */
export function randomFile(dir: string, name: string, bytes: number): string {
  execFileSync("sh", ["-c", `head -c ${bytes} /dev/urandom > ${join(dir, name)}`]);
  chmodSync(join(dir, name), 0o644);
  return execFileSync("sha256sum", [join(dir, name)]).toString().split(" ")[0]!;
}

/** curl's output piped through sha256sum, inside `host` as the unprivileged user. */
export async function curlSha(host: Host, curlArgs: string[], timeoutS = 60): Promise<string> {
  const cmd = ["curl", "-sS", "--fail", "--max-time", String(timeoutS), ...curlArgs].map((a) => `'${a}'`).join(" ");
  const r = await host.exec(asUser(["sh", "-c", `${cmd} | sha256sum`]), { timeoutMs: (timeoutS + 10) * 1000 });
  return r.stdout.split(" ")[0]!;
}

/** A UDP echo server on `address:port` (prints "ready"). */
export function udpEcho(host: Host, address: string, port: number): TrackedProcess {
  return host.spawn([
    "node",
    "-e",
    `const s = require("dgram").createSocket("${address.includes(":") ? "udp6" : "udp4"}");
     s.on("message", (m, r) => s.send(Buffer.concat([Buffer.from("echo:"), m]), r.port, r.address));
     s.bind(${port}, "${address}", () => console.log("ready"));`,
  ]);
}

/**
 * A DNS server answering every A query with `answer` (prints "ready"), enough to show that
 * queries and replies cross; counts queries on stdout.
 */
export function dnsServer(host: Host, address: string, answer: string): TrackedProcess {
  return host.spawn([
    "node",
    "-e",
    `const s = require("dgram").createSocket("udp4");
     s.on("message", (q, r) => {
       if (q.length < 12) return;
       let off = 12; while (q[off] !== 0 && off < q.length) off += q[off] + 1; off += 5;
       const head = Buffer.from(q.subarray(0, off)); head[2] = 0x81; head[3] = 0x80; head.writeUInt16BE(1, 6);
       const rr = Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, ...${JSON.stringify(answer.split(".").map(Number))}]);
       s.send(Buffer.concat([head, rr]), r.port, r.address);
     });
     s.bind(53, "${address}", () => console.log("ready"));`,
  ]);
}

/** Sends `count` datagrams to address:port from `host` and resolves with the replies' text. */
export async function udpRoundTrips(host: Host, address: string, port: number, count: number, user = false): Promise<string[]> {
  const script = `const s = require("dgram").createSocket("${address.includes(":") ? "udp6" : "udp4"}");
    const got = []; let n = 0;
    s.on("message", (m) => { got.push(m.toString()); if (got.length === ${count}) { console.log(JSON.stringify(got)); process.exit(0); } });
    const t = setInterval(() => { if (n < ${count}) s.send("ping" + n++, ${port}, "${address}"); }, 50);
    setTimeout(() => { console.log(JSON.stringify(got)); process.exit(0); }, 8000);`;
  const argv = ["node", "-e", script];
  const r = await host.exec(user ? asUser(argv) : argv);
  return JSON.parse(r.stdout.trim()) as string[];
}

/**
 * A UDP relay on `listen` to `target` that drops `lossPercent` % of datagrams each way and
 * delays each by delayMs ± jitterMs (so some arrive out of order): netem's loss and jitter
 * for kernels without sch_netem. Prints "ready"; SIGUSR2 prints its counters as JSON.
 */
export function lossyRelay(host: Host, listen: string, target: string, o: { lossPercent: number; delayMs: number; jitterMs: number }): TrackedProcess {
  const [lh, lp] = [listen.slice(0, listen.lastIndexOf(":")), Number(listen.slice(listen.lastIndexOf(":") + 1))];
  const [th, tp] = [target.slice(0, target.lastIndexOf(":")), Number(target.slice(target.lastIndexOf(":") + 1))];
  return host.spawn([
    "node",
    "-e",
    `const dgram = require("dgram");
     const front = dgram.createSocket("udp4"), back = dgram.createSocket("udp4");
     let client = null, forwarded = 0, dropped = 0;
     const pass = (sock, msg, port, addr) => {
       if (Math.random() * 100 < ${o.lossPercent}) { dropped++; return; }
       const d = ${o.delayMs} + (Math.random() * 2 - 1) * ${o.jitterMs};
       setTimeout(() => { forwarded++; sock.send(msg, port, addr); }, Math.max(0, d));
     };
     front.on("message", (m, r) => { client = r; pass(back, m, ${tp}, "${th}"); });
     back.on("message", (m) => { if (client) pass(front, m, client.port, client.address); });
     process.on("SIGUSR2", () => console.log("stats " + JSON.stringify({ forwarded, dropped })));
     back.bind(0, () => front.bind(${lp}, "${lh}", () => console.log("ready")));`,
  ]);
}

export async function relayStats(relay: TrackedProcess): Promise<{ forwarded: number; dropped: number }> {
  relay.child.kill("SIGUSR2");
  const line = await relay.waitForOutput(/stats \{[^\n]*\}/u);
  return JSON.parse(line.slice(line.indexOf("{"), line.lastIndexOf("}") + 1)) as { forwarded: number; dropped: number };
}
