// Throughput across a 1280-byte link on the ICE and TCP paths, this build against another one
// (the tree before a change), alternating in the same run so the machine's drift hits both alike.
//
//   node bench/small-mtu-paths.mjs --old path/to/other/bin/tswg.js [--reps 3] [--time 6]
//                                  [--paths ice-direct,ice-relay,tcp] [--family 4|6] [--stall 5] [--out FILE]
//
// Topology (namespaces this script creates and removes, also on failure or a signal), as in
// test/pmtu/ice-path.test.ts and tcp-path.test.ts: hosts a, srv and b around a router r; the
// router's link to b, and b's own, have MTU 1280; outer IPv4 (or IPv6 only, --family 6). srv runs `tswg signal` (this
// build) and coturn. Tunnel MTU 1420 on both ends, nothing tuned, native data plane.
//   ice-direct: both ends offer all candidates, the pair is direct a <-> b across the router;
//   ice-relay:  b offers only relay candidates (coturn on srv);
//   tcp:        WireGuard over TCP (UoTLV/1), b has TCPListen, a an http:// endpoint.
// Each repetition brings every path up with each build in turn (fresh processes), waits for a
// ping through the tunnel and 3 s more (time for the path MTU probes), then runs one iperf3 TCP
// stream a -> b for --time seconds. A run in which no data arrived for --stall seconds in a row
// counts as stalled (0); one that did not come up as failed (0, with the reason). Prints median (min-max) per path and build, and the ratio new/old of
// each repetition's pair (median and range); writes every run to --out (default
// results/small-mtu-paths-<time>.json).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { Bed, run } from "./lib/netns.mjs";
import { keyPair, REPO } from "./lib/tunnels.mjs";

const { values: opt } = parseArgs({
  options: {
    old: { type: "string" },
    reps: { type: "string", default: "3" },
    time: { type: "string", default: "6" },
    stall: { type: "string", default: "5" },
    paths: { type: "string", default: "ice-direct,ice-relay,tcp" },
    family: { type: "string", default: "4" },
    out: { type: "string" },
  },
});
if (!opt.old) throw new Error("--old path/to/bin/tswg.js is required (the build to compare with)");
const BUILDS = [
  { id: "old", bin: resolve(opt.old) },
  { id: "new", bin: join(REPO, "bin/tswg.js") },
];
const PATHS = opt.paths.split(",").filter(Boolean);
for (const p of PATHS) if (!["ice-direct", "ice-relay", "tcp"].includes(p)) throw new Error(`unknown path ${p}`);
const REPS = Number(opt.reps);
const SECONDS = Number(opt.time);
const STALL = Number(opt.stall);
const LINK_MTU = 1280;
if (opt.family !== "4" && opt.family !== "6") throw new Error("--family is 4 or 6");
const V6 = opt.family === "6";
// Outer addresses: [host, router side, prefix length] per link; IPv6 links carry no IPv4 at all.
const NETS = V6
  ? { a: ["fd95::1", "fd95::fe", 64], srv: ["fd96::1", "fd96::fe", 64], b: ["fd97::1", "fd97::fe", 64] }
  : { a: ["198.51.100.1", "198.51.100.254", 24], srv: ["192.0.2.1", "192.0.2.254", 24], b: ["203.0.113.1", "203.0.113.254", 24] };
const bracket = (ip) => (V6 ? `[${ip}]` : ip);
const TURN = { ip: NETS.srv[0], port: 3478, username: "bench", password: "bench-secret", realm: "tswg.bench" };
const SIGNAL = `ws://${bracket(NETS.srv[0])}:8080`;
const B = NETS.b[0];
// The ICE library asks a TURN server over IPv4 only (tswg refuses an IPv6 TURN address).
if (V6 && PATHS.includes("ice-relay")) throw new Error("--family 6 has no ice-relay path (TURN over UDP needs IPv4); pick --paths ice-direct,tcp");

const median = (xs) => {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const load = () => loadavg().map((x) => x.toFixed(2)).join(" ");

/** Hosts a, srv, b around router r; r's link to b has MTU 1280. */
async function topology(bed) {
  const hosts = { a: await bed.host("pa"), srv: await bed.host("ps"), b: await bed.host("pb") };
  const r = await bed.host("pr");
  await r.exec(["sysctl", "-qw", V6 ? "net.ipv6.conf.all.forwarding=1" : "net.ipv4.ip_forward=1"]);
  for (const [name, h] of Object.entries(hosts)) {
    const [hostIp, routerIp, len] = NETS[name];
    const mtu = name === "b" ? LINK_MTU : 1500;
    await run(["ip", "link", "add", "tswgtbenchtmp", "netns", h.ns, "type", "veth", "peer", "name", `v-${h.label}`, "netns", r.ns]);
    await h.ip(["link", "set", "tswgtbenchtmp", "name", "v-pr"]);
    for (const [x, ifn, ip] of [[h, "v-pr", hostIp], [r, `v-${h.label}`, routerIp]]) {
      await x.ip(["link", "set", ifn, "mtu", String(mtu)]);
      await x.ip(V6 ? ["-6", "addr", "add", `${ip}/${len}`, "dev", ifn, "nodad"] : ["addr", "add", `${ip}/${len}`, "dev", ifn]);
      await x.ip(["link", "set", ifn, "up"]);
    }
    await h.ip([V6 ? "-6" : "-4", "route", "add", "default", "via", routerIp]);
  }
  return hosts;
}

/** `tswg signal` (this build) and coturn on srv. */
async function services(srv, dir) {
  const signal = srv.spawn(["node", join(REPO, "bin/tswg.js"), "signal", "--listen", `${bracket(TURN.ip)}:8080`]);
  await signal.waitFor(/listening/i, 15_000);
  const { coturnConfig } = await import("../dist/testbed/coturn.js");
  const conf = join(dir, "turnserver.conf");
  writeFileSync(conf, coturnConfig({ ...TURN, dir, relayPorts: { min: 49152, max: 65535 } }), { mode: 0o600 });
  const turn = srv.spawn(["turnserver", "-c", conf]);
  const deadline = Date.now() + 15_000;
  while (!(await srv.exec(["ss", "-Hlnu", "sport", "=", `:${TURN.port}`], { check: false })).stdout.includes(TURN.ip)) {
    if (Date.now() > deadline) throw new Error(`coturn did not listen:\n${turn.output.slice(-2000)}`);
    await sleep(100);
  }
}

/** Starts `tswg up` on a wg-quick file in a host; resolves once the interface is up. */
async function up(host, bin, dir, ifname, lines) {
  const conf = join(dir, `${ifname}.conf`);
  writeFileSync(conf, lines.join("\n") + "\n", { mode: 0o600 });
  const p = host.spawn(["node", bin, "up", conf], { TSWG_RUN_DIR: dir, TSWG_DATAPATH: "native" });
  await p.waitFor(`interface ${ifname} is up`, 30_000);
  return p;
}

/** Both ends of one path with one build; returns the two processes. */
async function tunnel(hosts, path, bin, dir, n) {
  const ka = await keyPair();
  const kb = await keyPair();
  const ice = [`Signaling = ${SIGNAL}`, ...(V6 ? [] : [`ICEServers = turn:${TURN.username}:${TURN.password}@${bracket(TURN.ip)}:${TURN.port}?transport=udp`])];
  const end = (k, ip) => ["[Interface]", `PrivateKey = ${k.priv}`, `Address = 10.${n}.0.${ip}/24`, "MTU = 1420"];
  const linesB = [...end(kb, 2), ...(path === "tcp" ? ["ListenPort = 51821", `TCPListen = ${bracket(B)}:8443`] : ice)];
  if (path === "ice-relay") linesB.push("ICECandidateTypes = relay");
  linesB.push("", "[Peer]", `PublicKey = ${ka.pub}`, `AllowedIPs = 10.${n}.0.1/32`);
  const linesA = [...end(ka, 1), ...(path === "tcp" ? ["ListenPort = 51820"] : ice)];
  linesA.push("", "[Peer]", `PublicKey = ${kb.pub}`, `AllowedIPs = 10.${n}.0.2/32`);
  if (path === "tcp") linesA.push(`Endpoint = http://${bracket(B)}:8443/`, "PersistentKeepalive = 25");
  const procs = [];
  try {
    procs.push(await up(hosts.b, bin, dir, `pm${n}b`, linesB));
    procs.push(await up(hosts.a, bin, dir, `pm${n}a`, linesA));
  } catch (err) {
    for (const p of procs) await p.stop();
    throw err;
  }
  return procs;
}

/** One iperf3 TCP stream a -> b; stalled when no byte arrived for STALL seconds in a row. */
async function transfer(a, b, serverIp) {
  const srv = b.spawn(["iperf3", "-s", "-1", "--forceflush", "-B", serverIp, "-p", "5201"]);
  try {
    await srv.waitFor("Server listening", 10_000);
    const r = await a.exec(["iperf3", "-c", serverIp, "-p", "5201", "-t", String(SECONDS), "-i", "1", "-J", "--connect-timeout", "5000"], {
      timeoutMs: (SECONDS + STALL + 30) * 1000,
      check: false,
    });
    let j;
    try {
      j = JSON.parse(r.stdout);
    } catch {
      return { gbps: 0, stalled: true, note: `no iperf3 result (${r.stderr.trim() || r.code})` };
    }
    const secs = (j.intervals ?? []).map((i) => i.sum.bytes);
    let quiet = 0;
    let longest = 0;
    for (const bytes of secs) {
      quiet = bytes === 0 ? quiet + 1 : 0;
      longest = Math.max(longest, quiet);
    }
    const received = j.end?.sum_received;
    const gbps = received ? received.bits_per_second / 1e9 : 0;
    if (j.error || !received) return { gbps: 0, stalled: true, note: j.error ?? "no summary" };
    return { gbps: longest >= STALL ? 0 : gbps, stalled: longest >= STALL, measuredGbps: gbps, retransmits: j.end.sum_sent?.retransmits };
  } finally {
    await srv.stop(1000);
  }
}

async function main() {
  const bed = new Bed();
  const dir = mkdtempSync(join(tmpdir(), "tswgt-bench-paths-"));
  const started = new Date();
  const results = { started: started.toISOString(), family: Number(opt.family), builds: BUILDS, linkMtu: LINK_MTU, tunnelMtu: 1420, seconds: SECONDS, stallSeconds: STALL, loadStart: load(), runs: [] };
  try {
    const hosts = await topology(bed);
    await services(hosts.srv, dir);
    console.error(`load average at start: ${results.loadStart}`);
    let n = 100;
    for (let rep = 1; rep <= REPS; rep++) {
      for (const path of PATHS) {
        for (const build of rep % 2 ? BUILDS : [...BUILDS].reverse()) {
          n++;
          const run1 = { rep, path, build: build.id, load: load() };
          let procs = [];
          try {
            procs = await tunnel(hosts, path, build.bin, dir, n);
            const peerIp = `10.${n}.0.2`;
            const deadline = Date.now() + 60_000;
            while ((await hosts.a.exec(["ping", "-c", "1", "-W", "1", peerIp], { check: false })).code !== 0) {
              if (Date.now() > deadline) throw new Error("no ping through the tunnel in 60 s");
            }
            await sleep(3000);
            const show = await hosts.a.exec(["node", build.bin, "show", `pm${n}a`], { check: false });
            run1.pathMtu = /path mtu: ([^\n]*)/.exec(show.stdout)?.[1] ?? "-";
            run1.icePath = /\bpath: ((?:direct|relay)[^\n]*)/.exec(show.stdout)?.[1];
            Object.assign(run1, await transfer(hosts.a, hosts.b, peerIp));
          } catch (err) {
            Object.assign(run1, { gbps: 0, stalled: false, failed: true, note: String(err.message ?? err).replace(/\s+/g, " ").slice(0, 400) });
          } finally {
            for (const p of procs.reverse()) await p.stop().catch(() => {});
          }
          results.runs.push(run1);
          console.error(
            `rep ${rep} ${path.padEnd(10)} ${build.id}  ${run1.gbps.toFixed(3)} Gbit/s${run1.stalled ? " (stalled)" : run1.failed ? " (failed)" : ""}  path mtu ${run1.pathMtu ?? "-"}  ` +
              `retransmits ${run1.retransmits ?? "-"}  load ${run1.load}${run1.note ? `  ${run1.note}` : ""}`,
          );
        }
      }
    }
  } finally {
    await bed.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
  results.loadEnd = load();
  console.log(`\ntunnel MTU 1420 across a ${LINK_MTU}-byte IPv${opt.family} link (nothing tuned, native plane), one TCP stream a -> b, ${SECONDS} s`);
  console.log(`load average: start ${results.loadStart}, end ${results.loadEnd}`);
  // new/old is taken per repetition (the two runs next to each other), then its median and
  // range: the machine's drift between repetitions cancels out of it.
  console.log("path        build  Gbit/s median (min-max)  stalled  new/old per repetition, median (min-max)");
  results.summary = [];
  for (const path of PATHS) {
    for (const build of BUILDS) {
      const runs = results.runs.filter((x) => x.path === path && x.build === build.id);
      const g = runs.map((x) => x.gbps);
      const s = { path, build: build.id, median: median(g), min: Math.min(...g), max: Math.max(...g), stalled: runs.filter((x) => x.stalled).length, failed: runs.filter((x) => x.failed).length, n: runs.length };
      let ratio = "";
      if (build.id === "new") {
        const per = [];
        for (let rep = 1; rep <= REPS; rep++) {
          const at = (id) => results.runs.find((x) => x.path === path && x.build === id && x.rep === rep)?.gbps;
          if (at("old") > 0 && at("new") !== undefined) per.push(at("new") / at("old"));
        }
        if (per.length > 0) {
          s.ratio = { median: median(per), min: Math.min(...per), max: Math.max(...per), n: per.length };
          ratio = `${s.ratio.median.toFixed(2)}x (${s.ratio.min.toFixed(2)}-${s.ratio.max.toFixed(2)})`;
        }
      }
      results.summary.push(s);
      console.log(`${path.padEnd(10)}  ${build.id.padEnd(5)}  ${`${s.median.toFixed(3)} (${s.min.toFixed(3)}-${s.max.toFixed(3)})`.padEnd(23)}  ${`${s.stalled}/${s.n}${s.failed ? ` (${s.failed} failed)` : ""}`.padEnd(7)}  ${ratio}`);
    }
  }
  const file = opt.out ?? join(REPO, "results", `small-mtu-paths-${started.toISOString().replace(/[:.]/g, "-")}.json`);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(results, null, 2) + "\n");
  console.log(`results written to ${file}`);
}

await main();
