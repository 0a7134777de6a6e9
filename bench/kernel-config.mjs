// How long tswg's JavaScript takes to turn a large WireGuard configuration into the kernel's
// generic netlink messages (WG_CMD_SET_DEVICE), and to read a dump of that size back: the part of
// configuring a kernel interface that is tswg's own (the kernel's share is the same as `wg`'s).
// Needs neither the WireGuard module nor root: nothing is sent.
//
//   node bench/kernel-config.mjs [--peers 1000,10000] [--runs 7] [--out FILE]
//
// Each run is a fresh Node process (the first call is what a `tswg up` pays); it reports the first
// build, the median of the following builds (warm code) and the parse of the result. Figures are
// the median and range over the runs. Results go to FILE, by default results/kernel-config-<time>.json.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const REPO = join(dirname(fileURLToPath(import.meta.url)), "..");
const { values: opt } = parseArgs({
  options: {
    peers: { type: "string", default: "1000,10000" },
    runs: { type: "string", default: "7" },
    out: { type: "string" },
    child: { type: "boolean", default: false },
  },
});
const counts = opt.peers.split(",").map(Number);

/** `n` peers as the VM test configures them: two prefixes, an endpoint, every other one a keepalive, one PSK. */
function request(n) {
  const peers = [];
  for (let i = 0; i < n; i++) {
    const allowedIps = [`10.${100 + (i >> 8)}.${i & 255}.0/24`, `fd00:${i.toString(16)}::/64`];
    peers.push({ publicKey: randomBytes(32), remove: false, updateOnly: false, presharedKey: i === 0 ? randomBytes(32) : undefined, endpoint: `192.0.2.${1 + (i % 250)}:${10000 + (i % 50000)}`, persistentKeepalive: i % 2 === 0 ? 25 : 0, replaceAllowedIps: true, allowedIps, removeAllowedIps: [] });
  }
  return { privateKey: randomBytes(32), listenPort: 51999, fwmark: 0x51, replacePeers: true, peers };
}

const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function child() {
  const genl = await import(join(REPO, "dist/kernel/wireguard-genl.js"));
  const out = {};
  for (const n of counts) {
    const req = request(n);
    const t0 = process.hrtime.bigint();
    const messages = genl.setDeviceMessages(0x15, "wgbench", req);
    const first = ms(t0);
    const warm = [];
    for (let k = 0; k < (n <= 1000 ? 9 : 3); k++) {
      const t = process.hrtime.bigint();
      genl.setDeviceMessages(0x15, "wgbench", req);
      warm.push(ms(t));
    }
    // What a GET_DEVICE dump of this size looks like to the parser: the attributes after the headers.
    const parts = messages.map((m) => m.subarray(20));
    const tp = process.hrtime.bigint();
    const state = genl.parseDeviceDump(parts);
    const parse = ms(tp);
    if (state.peers.length !== n) throw new Error(`parsed ${state.peers.length} peers of ${n}`);
    out[n] = { firstBuildMs: first, warmBuildMs: median(warm), parseMs: parse, messages: messages.length, bytes: messages.reduce((s, m) => s + m.length, 0) };
  }
  process.stdout.write(JSON.stringify(out));
}

async function main() {
  const runs = Number(opt.runs);
  const loadBefore = loadavg();
  const all = [];
  for (let r = 0; r < runs; r++) {
    all.push(JSON.parse(execFileSync(process.execPath, [fileURLToPath(import.meta.url), "--child", "--peers", opt.peers], { encoding: "utf8" })));
  }
  const loadAfter = loadavg();
  const summary = {};
  for (const n of counts) {
    const row = { messages: all[0][n].messages, bytes: all[0][n].bytes };
    for (const k of ["firstBuildMs", "warmBuildMs", "parseMs"]) {
      const xs = all.map((a) => a[n][k]);
      row[k] = { median: +median(xs).toFixed(2), min: +Math.min(...xs).toFixed(2), max: +Math.max(...xs).toFixed(2) };
    }
    summary[n] = row;
  }
  console.log(`kernel config messages (WG_CMD_SET_DEVICE), ${runs} fresh processes, load ${loadBefore[0].toFixed(2)} -> ${loadAfter[0].toFixed(2)}`);
  console.log("peers   messages  bytes     first build ms (range)     warm build ms (range)     parse ms (range)");
  const f = (x) => `${x.median} (${x.min}–${x.max})`.padEnd(27);
  for (const n of counts) {
    const s = summary[n];
    console.log(`${String(n).padEnd(8)}${String(s.messages).padEnd(10)}${String(s.bytes).padEnd(10)}${f(s.firstBuildMs)}${f(s.warmBuildMs)}${f(s.parseMs)}`);
  }
  const file = opt.out ?? join(REPO, "results", `kernel-config-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), node: process.version, runs, load: { before: loadBefore, after: loadAfter }, summary, raw: all }, null, 2) + "\n");
  console.log(`written to ${file}`);
}

if (opt.child) await child();
else await main();
