// `npm run bench`: throughput, loss, latency, CPU and memory of tswg against wireguard-go,
// side by side in one run, in network namespaces this script builds and removes itself.
//
//   node bench/run.mjs [--reps N] [--time S] [--only a,b] [--tests t,u] [--udp-rate R] [--no-crypto] [--no-netstack] [--out FILE]
//                      [--no-small-mtu] [--compare name=path/to/bin/tswg.js,...]
//   node bench/run.mjs --soak S [--only tswg-native]     RSS before, during and after an S-second transfer
//
// Configurations: veth (no tunnel), wireguard-go <-> wireguard-go, tswg (native) <-> tswg (native),
// tswg (portable) <-> tswg (portable), tswg (native) <-> wireguard-go, and two tswg (native) pairs
// that know only each other's key and find each other through ICE (`tswg signal` in host a): on
// a host pair, and through coturn (in host a) on a relay pair. Tests: tcp1 (one TCP
// stream), tcp4 (four streams), udp (1300-byte datagrams at --udp-rate, iperf3 syntax, default 0 =
// as fast as iperf3 can send), ping (idle latency).
// Every repetition runs every configuration in turn, so slow drifts of the machine hit all alike.
// Then the network stack rows (bench/lib/netstack.mjs): one download through a TUN, through the
// SOCKS5 proxy and the library API of the network stack, and through a router-mode peer.
// Then the small-MTU path row (bench/lib/small-mtu.mjs, `--only small-mtu` for it alone): tswg
// native, tswg portable and wireguard-go across a 1280-byte IPv6 link, tunnel MTU 1420, plus
// portable ends from the builds given with --compare.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { cryptoBench } from "./crypto.mjs";
import { cpuSeconds, iperf, memory, ping } from "./lib/measure.mjs";
import { Bed, run } from "./lib/netns.mjs";
import { REPO, keyPair, startEnd } from "./lib/tunnels.mjs";
import { setUpNetstack } from "./lib/netstack.mjs";
import { printSmallMtu, smallMtuBench } from "./lib/small-mtu.mjs";

const { values: opt } = parseArgs({
  options: {
    reps: { type: "string", default: "3" },
    time: { type: "string", default: "10" },
    only: { type: "string" },
    tests: { type: "string", default: "tcp1,tcp4,udp,ping" },
    soak: { type: "string" },
    "udp-rate": { type: "string", default: "0" },
    "no-crypto": { type: "boolean", default: false },
    "no-netstack": { type: "boolean", default: false },
    "no-small-mtu": { type: "boolean", default: false },
    compare: { type: "string", default: "" },
    out: { type: "string" },
  },
});

// ICE first: their candidates are gathered before the other tunnels' interfaces exist, so no
// pair can run inside another tunnel.
const CONFIGS = [
  { id: "tswg-ice", label: "tswg native <-> tswg native, ICE host pair", a: "tswg-native", b: "tswg-native", ice: "host" },
  { id: "tswg-ice-relay", label: "tswg native <-> tswg native, ICE relay pair", a: "tswg-native", b: "tswg-native", ice: "relay" },
  { id: "veth", label: "plain veth", a: null, b: null },
  { id: "wggo", label: "wireguard-go <-> wireguard-go", a: "wireguard-go", b: "wireguard-go" },
  { id: "tswg-native", label: "tswg native <-> tswg native", a: "tswg-native", b: "tswg-native" },
  { id: "tswg-portable", label: "tswg portable <-> tswg portable", a: "tswg-portable", b: "tswg-portable" },
  { id: "tswg-wggo", label: "tswg native <-> wireguard-go", a: "tswg-native", b: "wireguard-go" },
];
const TESTS = opt.tests.split(",").filter(Boolean);
const REPS = Number(opt.reps);
const SECONDS = Number(opt.time);
const soakSeconds = opt.soak === undefined ? null : Number(opt.soak);
let configs = CONFIGS;
if (opt.only) {
  const wanted = new Set(opt.only.split(","));
  configs = CONFIGS.filter((c) => wanted.has(c.id));
} else if (soakSeconds !== null) {
  configs = CONFIGS.filter((c) => c.id === "tswg-native");
}
const smallMtuWanted = soakSeconds === null && !opt["no-small-mtu"] && (!opt.only || opt.only.split(",").includes("small-mtu"));
if (configs.length === 0 && !smallMtuWanted) throw new Error(`--only matches none of ${CONFIGS.map((c) => c.id).join(", ")}, small-mtu`);

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? NaN : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const summary = (xs) => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs), n: xs.length });

async function machine() {
  const kernel = (await run(["uname", "-r"])).stdout.trim();
  const wggo = (await run(["sh", "-c", "dpkg-query -W -f '${Version}' wireguard-go 2>/dev/null || true"])).stdout.trim();
  const iperfVersion = (await run(["iperf3", "--version"], { check: false })).stdout.split("\n")[0];
  return {
    cpu: cpus()[0]?.model ?? "unknown",
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel,
    node: process.version,
    wireguardGo: wggo || "unknown",
    iperf3: iperfVersion,
  };
}

const SIGNAL_PORT = 8099;
const TURN = { ip: "192.168.90.1", port: 3478, username: "bench", password: "bench-secret", realm: "tswg.bench" };

/** `tswg signal` and coturn in host a, for the ICE configurations. */
async function startIceServices(a) {
  const signal = a.spawn(["node", join(REPO, "bin/tswg.js"), "signal", "--listen", `192.168.90.1:${SIGNAL_PORT}`]);
  await signal.waitFor(/listening/i, 10_000);
  const services = { signaling: `ws://192.168.90.1:${SIGNAL_PORT}`, turn: null, dirs: [] };
  if (configs.some((c) => c.ice === "relay")) {
    const { coturnConfig } = await import("../dist/testbed/coturn.js");
    const dir = mkdtempSync(join(tmpdir(), "tswgt-bench-turn-"));
    services.dirs.push(dir);
    const conf = join(dir, "turnserver.conf");
    writeFileSync(conf, coturnConfig({ ...TURN, dir, relayPorts: { min: 49152, max: 65535 } }), { mode: 0o600 });
    const turn = a.spawn(["turnserver", "-c", conf]);
    const deadline = Date.now() + 15_000;
    while (!(await a.exec(["ss", "-Hlnu", "sport", "=", `:${TURN.port}`], { check: false })).stdout.includes(TURN.ip)) {
      if (Date.now() > deadline) throw new Error(`coturn did not listen:\n${turn.output.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    services.turn = `turn:${TURN.username}:${TURN.password}@${TURN.ip}:${TURN.port}?transport=udp`;
  }
  return services;
}

/** Brings up every tunnel of the chosen configurations between hosts a and b. */
async function setUp(bed, a, b) {
  await bed.link(a, b, "192.168.90.1/24", "192.168.90.2/24");
  const tunnels = new Map();
  const services = configs.some((c) => c.ice) ? await startIceServices(a) : null;
  tunnels.services = services;
  let n = 0;
  for (const c of configs) {
    n++;
    if (c.a === null) {
      tunnels.set(c.id, { serverIp: "192.168.90.2", ends: [] });
      continue;
    }
    const ka = await keyPair();
    const kb = await keyPair();
    const net = 200 + n;
    const portA = 51000 + 2 * n;
    const portB = portA + 1;
    const ice = c.ice === undefined ? undefined : {
      signaling: services.signaling,
      servers: c.ice === "relay" ? services.turn : undefined,
      types: c.ice === "relay" ? "relay" : "host",
    };
    const endA = await startEnd({
      impl: c.a, host: a, ifname: `b${n}${c.a === "wireguard-go" ? "g" : "t"}-a`, keys: ka, peerPub: kb.pub,
      listenPort: portA, address: `10.${net}.0.1/24`, peerAllowed: `10.${net}.0.2/32`, peerEndpoint: `192.168.90.2:${portB}`, ice,
    });
    const endB = await startEnd({
      impl: c.b, host: b, ifname: `b${n}${c.b === "wireguard-go" ? "g" : "t"}-b`, keys: kb, peerPub: ka.pub,
      listenPort: portB, address: `10.${net}.0.2/24`, peerAllowed: `10.${net}.0.1/32`, peerEndpoint: `192.168.90.1:${portA}`, ice,
    });
    for (const e of [endA, endB]) {
      if (e.impl.startsWith("tswg")) {
        const m = /data path: ([^\n]*)/.exec(e.proc.output);
        e.dataPath = m ? m[1].trim() : "unknown";
      }
    }
    tunnels.set(c.id, { serverIp: `10.${net}.0.2`, ends: [endA, endB], ifnames: [`b${n}t-a`, `b${n}t-b`] });
    // The first packets start the handshake; wait until the tunnel carries traffic (ICE first
    // needs a pair: the relay only after a failed attempt with every candidate type).
    const deadline = Date.now() + (c.ice ? 60_000 : 15_000);
    while ((await a.exec(["ping", "-c", "1", "-W", "1", `10.${net}.0.2`], { check: false })).code !== 0) {
      if (Date.now() > deadline) throw new Error(`${c.label}: no ping through the tunnel`);
    }
  }
  return tunnels;
}

function fmt(x, digits = 2) {
  return Number.isFinite(x) ? x.toFixed(digits) : "-";
}

function printTable(results) {
  const wg = results.configs.find((c) => c.id === "wggo");
  const rows = [];
  for (const c of results.configs) {
    for (const [test, r] of Object.entries(c.tests)) {
      if (test === "ping") continue;
      const base = wg?.tests[test]?.gbps?.median;
      rows.push([
        c.label,
        test,
        `${fmt(r.gbps.median)} (${fmt(r.gbps.min)}-${fmt(r.gbps.max)})`,
        base ? fmt(r.gbps.median / base) + "x" : "-",
        r.lossPercent ? fmt(r.lossPercent.median, 1) + "%" : "",
        r.cpuSecondsPerGB ? fmt(r.cpuSecondsPerGB.median) : "-",
        c.peakRssMiB ? fmt(c.peakRssMiB, 0) : "-",
      ]);
    }
    if (c.tests.ping) rows.push([c.label, "ping", `${fmt(c.tests.ping.avgMs.median, 3)} ms (mdev ${fmt(c.tests.ping.mdevMs.median, 3)})`, "", "", "", ""]);
  }
  const head = ["configuration", "test", "Gbit/s median (min-max)", "vs wg-go", "UDP loss", "CPU s/GB", "peak RSS MiB"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (r) => r.map((x, i) => String(x).padEnd(widths[i])).join("  ");
  console.log(line(head));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const r of rows) console.log(line(r));
}

async function benchmark(a, b, tunnels) {
  const raw = new Map(configs.map((c) => [c.id, {}]));
  for (let rep = 1; rep <= REPS; rep++) {
    for (const test of TESTS) {
      for (const c of configs) {
        const t = tunnels.get(c.id);
        const slot = (raw.get(c.id)[test] ??= []);
        if (test === "ping") {
          slot.push(await ping(a, t.serverIp));
          continue;
        }
        const pids = t.ends.map((e) => e.pid);
        const cpu0 = pids.map(cpuSeconds);
        const r = await iperf(a, b, t.serverIp, test, SECONDS, opt["udp-rate"]);
        const cpu1 = pids.map(cpuSeconds);
        const cpu = cpu1.reduce((s, x, i) => s + (x ?? 0) - (cpu0[i] ?? 0), 0);
        r.cpuSecondsPerGB = pids.length > 0 && r.bytes > 0 ? cpu / (r.bytes / 1e9) : NaN;
        slot.push(r);
        const extra = r.lossPercent !== undefined ? ` loss ${fmt(r.lossPercent, 1)}%` : "";
        console.error(`rep ${rep} ${test.padEnd(4)} ${c.id.padEnd(14)} ${fmt(r.gbps)} Gbit/s${extra}  cpu ${fmt(r.cpuSecondsPerGB)} s/GB`);
      }
    }
  }
  return configs.map((c) => {
    const t = tunnels.get(c.id);
    const tests = {};
    for (const [test, runs] of Object.entries(raw.get(c.id))) {
      if (test === "ping") {
        tests.ping = { avgMs: summary(runs.map((r) => r.avgMs)), mdevMs: summary(runs.map((r) => r.mdevMs)), runs };
        continue;
      }
      tests[test] = {
        gbps: summary(runs.map((r) => r.gbps)),
        cpuSecondsPerGB: t.ends.length ? summary(runs.map((r) => r.cpuSecondsPerGB)) : null,
        lossPercent: test === "udp" ? summary(runs.map((r) => r.lossPercent)) : null,
        runs,
      };
    }
    const tswgEnds = t.ends.filter((e) => e.impl.startsWith("tswg"));
    const peaks = tswgEnds.map((e) => memory(e.pid)?.peakKiB ?? NaN);
    return {
      id: c.id,
      label: c.label,
      dataPaths: tswgEnds.map((e) => e.dataPath),
      peakRssMiB: peaks.length ? Math.max(...peaks) / 1024 : null,
      tests,
    };
  });
}

async function netstackBench(a, b) {
  const ns = await setUpNetstack(a, b, "192.168.90.1", "192.168.90.2");
  const raw = new Map(ns.rows.map((r) => [r.id, []]));
  for (let rep = 1; rep <= REPS; rep++) {
    for (const row of ns.rows) {
      const r = await row.run(SECONDS);
      raw.get(row.id).push(r);
      console.error(`rep ${rep} netstack ${row.id.padEnd(8)} ${fmt(r.gbps)} Gbit/s  cpu ${fmt(r.cpuSecondsPerGB)} s/GB  peak RSS ${fmt(r.peakRssMiB, 0)} MiB`);
    }
  }
  return ns.rows.map((row) => {
    const runs = raw.get(row.id);
    return {
      id: row.id,
      label: row.label,
      dataPath: row.dataPath ?? null,
      gbps: summary(runs.map((r) => r.gbps)),
      cpuSecondsPerGB: summary(runs.map((r) => r.cpuSecondsPerGB)),
      peakRssMiB: Math.max(...runs.map((r) => r.peakRssMiB)),
      runs,
    };
  });
}

function printNetstack(rows) {
  const tun = rows.find((r) => r.id === "tun")?.gbps.median;
  console.log("\nnetwork stack: one TCP download from a source behind a tswg native peer");
  const head = ["path", "Gbit/s median (min-max)", "vs TUN", "CPU s/GB", "peak RSS MiB"];
  const body = rows.map((r) => [
    r.dataPath ? `${r.label} (${r.dataPath} data path)` : r.label,
    `${fmt(r.gbps.median)} (${fmt(r.gbps.min)}-${fmt(r.gbps.max)})`,
    tun ? fmt(r.gbps.median / tun) + "x" : "-",
    fmt(r.cpuSecondsPerGB.median),
    fmt(r.peakRssMiB, 0),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => String(r[i]).length)));
  const line = (r) => r.map((x, i) => String(x).padEnd(widths[i])).join("  ");
  console.log(line(head));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const r of body) console.log(line(r));
}

/** The small-MTU path row, in its own namespaces of the same bed. */
async function smallMtuRow(bed, results) {
  if (!smallMtuWanted) return;
  const compare = opt.compare.split(",").filter(Boolean).map((x) => x.split("="));
  results.smallMtu = await smallMtuBench(bed, { reps: REPS, seconds: SECONDS, compare, summary });
  printSmallMtu(results.smallMtu, fmt);
}

async function soak(a, b, tunnels, seconds) {
  const out = [];
  for (const c of configs) {
    const t = tunnels.get(c.id);
    const pids = t.ends.filter((e) => e.impl.startsWith("tswg")).map((e) => e.pid);
    if (pids.length === 0) continue;
    const rss = () => pids.map((p) => (memory(p)?.rssKiB ?? NaN) / 1024);
    const samples = [{ t: 0, rssMiB: rss() }];
    console.error(`soak ${c.id}: ${seconds} s single TCP stream; RSS before: ${samples[0].rssMiB.map((x) => fmt(x, 1)).join(", ")} MiB`);
    const t0 = Date.now();
    const timer = setInterval(() => {
      const s = { t: Math.round((Date.now() - t0) / 1000), rssMiB: rss() };
      samples.push(s);
      console.error(`  t=${s.t}s RSS ${s.rssMiB.map((x) => fmt(x, 1)).join(", ")} MiB`);
    }, 10_000);
    const r = await iperf(a, b, t.serverIp, "tcp1", seconds).finally(() => clearInterval(timer));
    samples.push({ t: Math.round((Date.now() - t0) / 1000), rssMiB: rss() });
    const warm = samples.find((s) => s.t >= 10) ?? samples[0];
    const end = samples[samples.length - 1];
    out.push({ id: c.id, gbps: r.gbps, seconds, samples, rssStartMiB: samples[0].rssMiB, rssAfter10sMiB: warm.rssMiB, rssEndMiB: end.rssMiB });
    console.log(`${c.label}: ${fmt(r.gbps)} Gbit/s over ${seconds} s; RSS MiB before ${samples[0].rssMiB.map((x) => fmt(x, 1))}, after 10 s ${warm.rssMiB.map((x) => fmt(x, 1))}, at the end ${end.rssMiB.map((x) => fmt(x, 1))}`);
  }
  return out;
}

async function main() {
  const started = new Date();
  const results = {
    date: started.toISOString(),
    machine: await machine(),
    options: { reps: REPS, seconds: SECONDS, tests: TESTS, udpRate: opt["udp-rate"] },
    // Other work on the machine skews absolute figures (ratios measured side by side less so).
    loadAverageAtStart: loadavg(),
  };
  if (!opt["no-crypto"] && soakSeconds === null) {
    results.crypto = await cryptoBench();
    console.log("ChaCha20-Poly1305 seal, 1420-byte packets, one core:");
    for (const r of results.crypto) {
      console.log(r.error ? `  ${r.name}: ${r.error}` : `  ${r.name.padEnd(36)} ${String(r.packetsPerSecond).padStart(9)} packets/s  ${fmt(r.gbps)} Gbit/s`);
    }
    console.log("");
  }
  const bed = new Bed();
  const tunnelDirs = [];
  try {
    const a = await bed.host("a");
    const b = await bed.host("b");
    const tunnels = await setUp(bed, a, b);
    tunnelDirs.push(...(tunnels.services?.dirs ?? []));
    for (const c of configs) {
      for (const e of tunnels.get(c.id).ends) if (e.dataPath) console.log(`${c.label}: ${e.impl} end: data path ${e.dataPath}`);
    }
    // What `tswg show` says of the ICE peers: which plane and which pair carries them.
    results.icePaths = {};
    for (const c of configs.filter((x) => x.ice)) {
      const t = tunnels.get(c.id);
      results.icePaths[c.id] = [];
      for (const name of t.ifnames) {
        const out = (await run(["node", join(REPO, "bin/tswg.js"), "show", name], { check: false })).stdout;
        const field = (k) => new RegExp(`^ {2}${k}: (.*)$`, "m").exec(out)?.[1] ?? "-";
        const line = { end: name, dataPlane: field("data plane"), icePair: field("ice pair"), carriedBy: field("carried by") };
        results.icePaths[c.id].push(line);
        console.log(`${c.label}: ${name}: data plane ${line.dataPlane}; ice pair ${line.icePair}; carried by ${line.carriedBy}`);
      }
    }
    if (soakSeconds !== null) {
      results.soak = await soak(a, b, tunnels, soakSeconds);
    } else {
      results.configs = await benchmark(a, b, tunnels);
      if (!opt["no-netstack"]) results.netstack = await netstackBench(a, b);
      console.log("");
      printTable(results);
      if (results.netstack) printNetstack(results.netstack);
      await smallMtuRow(bed, results);
    }
  } finally {
    await bed.cleanup();
    for (const d of tunnelDirs) rmSync(d, { recursive: true, force: true });
  }
  results.loadAverageAtEnd = loadavg();
  const file = opt.out ?? join(REPO, "results", `bench-${started.toISOString().replace(/[:.]/g, "-")}.json`);
  mkdirSync(join(file, ".."), { recursive: true });
  writeFileSync(file, JSON.stringify(results, null, 2) + "\n");
  console.log(`\nresults written to ${file}`);
}

await main();
