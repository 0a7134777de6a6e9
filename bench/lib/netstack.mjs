// Network stack rows of `npm run bench`: one TCP download from a source behind a tswg peer,
// through (1) a TUN interface (tswg native, kernel TCP), (2) the SOCKS5 proxy of `tswg up
// --netstack`, (3) the library API (device.netstack.connect) in the downloading process, and
// (4) router mode (a TUN client whose flows a `Netstack = router` peer re-creates with its own
// sockets). Same peer, same source, same run; CPU and peak RSS of the client-side tswg process
// (of the downloading process for the library row, of the router for the router row).
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cpuSeconds, memory } from "./measure.mjs";
import { REPO, keyPair } from "./tunnels.mjs";

const TSWG = join(REPO, "bin/tswg.js");
const CLIENT = join(REPO, "bench/lib/netstack-client.mjs");
const SOURCE_PORT = 7777;

function conf(dir, name, lines) {
  const path = join(dir, `${name}.conf`);
  writeFileSync(path, lines.join("\n") + "\n", { mode: 0o600 });
  return path;
}

async function upTswg(host, dir, name, lines, extraArgs = [], env = {}) {
  const path = conf(dir, name, lines);
  const proc = host.spawn(["node", TSWG, "up", path, ...extraArgs], { TSWG_RUN_DIR: dir, XDG_RUNTIME_DIR: dir, ...env });
  await proc.waitFor(`interface ${name} is up`, 20_000);
  return proc;
}

/** Sets up the peers; returns the measurement functions. `a` downloads from `b`. */
export async function setUpNetstack(a, b, linkIpA, linkIpB) {
  const dir = mkdtempSync(join(tmpdir(), "tswgt-bench-ns-"));
  // A byte source on every address of b, for as long as the client reads.
  const source = b.spawn(["node", "-e", `const buf = Buffer.alloc(65536, 7);
    require("net").createServer((s) => { s.on("error", () => {}); const pump = () => { while (s.write(buf)); }; s.on("drain", pump); pump(); }).listen(${SOURCE_PORT}, () => console.log("ready"));`]);
  await source.waitFor("ready", 10_000);
  await b.ip(["addr", "add", "10.250.0.1/32", "dev", "lo"]);

  const server = await keyPair();
  const tunC = await keyPair();
  const nsC = await keyPair();
  const libC = await keyPair();
  const router = await keyPair();
  const routerC = await keyPair();
  // The peer (tswg native on a TUN) of the three endpoint-mode clients.
  await upTswg(b, dir, "nsbs", [
    "[Interface]", `PrivateKey = ${server.priv}`, "ListenPort = 51500", "Address = 10.240.0.1/24",
    "", "[Peer]", `PublicKey = ${tunC.pub}`, "AllowedIPs = 10.240.0.2/32",
    "", "[Peer]", `PublicKey = ${nsC.pub}`, "AllowedIPs = 10.240.0.3/32",
    "", "[Peer]", `PublicKey = ${libC.pub}`, "AllowedIPs = 10.240.0.4/32",
  ], [], { TSWG_DATAPATH: "native" });
  const peer = (priv, addr) => [
    "[Interface]", `PrivateKey = ${priv}`, `Address = ${addr}`,
    "", "[Peer]", `PublicKey = ${server.pub}`, "AllowedIPs = 10.240.0.1/32", `Endpoint = ${linkIpB}:51500`, "PersistentKeepalive = 25",
  ];
  const tunProc = await upTswg(a, dir, "nsbt", peer(tunC.priv, "10.240.0.2/24"), [], { TSWG_DATAPATH: "native" });
  const nsProc = await upTswg(a, dir, "nsbn", [...peer(nsC.priv, "10.240.0.3/24").slice(0, 3), "SOCKS5 = 127.0.0.1:1080", ...peer(nsC.priv, "").slice(3)], ["--netstack"]);
  const libConf = conf(dir, "benchlib", peer(libC.priv, "10.240.0.4/24"));
  // Router mode: b runs the router on its network stack; a's TUN client routes 10.250.0.1 to it.
  const routerProc = await upTswg(b, dir, "nsbr", [
    "[Interface]", `PrivateKey = ${router.priv}`, "ListenPort = 51501", "Address = 10.241.0.1/24", "Netstack = router",
    "", "[Peer]", `PublicKey = ${routerC.pub}`, "AllowedIPs = 10.241.0.2/32",
  ]);
  await upTswg(a, dir, "nsbc", [
    "[Interface]", `PrivateKey = ${routerC.priv}`, "Address = 10.241.0.2/24",
    "", "[Peer]", `PublicKey = ${router.pub}`, "AllowedIPs = 10.241.0.1/32, 10.250.0.1/32", `Endpoint = ${linkIpB}:51501`, "PersistentKeepalive = 25",
  ], [], { TSWG_DATAPATH: "native" });
  void linkIpA;
  // Handshakes before measuring.
  for (const ip of ["10.240.0.1", "10.241.0.1"]) {
    const deadline = Date.now() + 15_000;
    while ((await a.exec(["ping", "-c", "1", "-W", "1", ip], { check: false })).code !== 0) {
      if (Date.now() > deadline) throw new Error(`netstack bench: no ping to ${ip}`);
    }
  }

  /** One download; cpu/rss of `pid` (the client-side tswg), or of the client itself when pid is null. */
  const download = async (argv, pid) => {
    const c = a.spawn(["node", CLIENT, ...argv]);
    const target = pid ?? c.pid;
    const cpu0 = cpuSeconds(target) ?? 0;
    let lastCpu = cpu0;
    let peak = 0;
    const sampler = setInterval(() => {
      lastCpu = cpuSeconds(target) ?? lastCpu;
      peak = Math.max(peak, memory(target)?.peakKiB || 0);
    }, 200);
    const { code } = await c.exited;
    clearInterval(sampler);
    const cpu = (pid === null ? lastCpu : (cpuSeconds(pid) ?? lastCpu)) - cpu0;
    if (pid !== null) peak = Math.max(peak, memory(pid)?.peakKiB || 0);
    const line = c.output.trim().split("\n").find((l) => l.startsWith("{"));
    if (code !== 0 || line === undefined) throw new Error(`netstack bench client ${argv[0]} failed:\n${c.output}`);
    const r = JSON.parse(line);
    return { gbps: (r.bytes * 8) / r.seconds / 1e9, bytes: r.bytes, cpuSecondsPerGB: cpu / (r.bytes / 1e9), peakRssMiB: peak / 1024 };
  };
  // Which data plane carries each stack's packets, as its tswg logged it.
  const plane = async (proc) => /data path: (\w+)/.exec(await proc.waitFor(/data path: \w+/, 5_000))?.[1] ?? null;
  const nsPlane = await plane(nsProc);
  const routerPlane = await plane(routerProc);
  return {
    rows: [
      { id: "tun", label: "TUN (tswg native), kernel TCP", run: (s) => download(["tcp", "10.240.0.1", String(SOURCE_PORT), String(s)], tunProc.pid) },
      { id: "socks5", label: "netstack via SOCKS5", dataPath: nsPlane, run: (s) => download(["socks5", "1080", "10.240.0.1", String(SOURCE_PORT), String(s)], nsProc.pid) },
      { id: "library", label: "netstack library API", run: (s) => download(["library", libConf, "10.240.0.1", String(SOURCE_PORT), String(s)], null) },
      { id: "router", label: "router mode (TUN client -> netstack router)", dataPath: routerPlane, run: (s) => download(["tcp", "10.250.0.1", String(SOURCE_PORT), String(s)], routerProc.pid) },
    ],
  };
}
