// How long a legitimate peer needs for a handshake while the responder is flooded with
// initiations that carry a valid mac1 (random content): the flood comes from one address or
// from many, at several rates. The responder is wireguard-go, tswg (native plane) or tswg
// (portable plane), each measured in the same run on the same machine. The legitimate peer is
// wireguard-go, restarted while the flood runs; its handshake time is from its restart to the
// first handshake it records (`wg show … latest-handshakes`), traffic being a ping every 0.2 s.
// Also reported: the flood rate reached and the responder's UDP sends per second during the
// flood (cookie replies, nearly all of them).
//
//   node bench/handshake-flood.mjs [--rates 0,20000,100000,200000] [--sources 1,64]
//        [--impls wireguard-go,tswg-native,tswg-portable] [--trials 3] [--limit 30] [--out FILE]
//
// Results go to FILE, by default results/handshake-flood-<time>.json.
//
// Everything runs in namespaces this script makes and removes; nothing leaves them.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Bed } from "./lib/netns.mjs";
import { REPO, keyPair, startEnd } from "./lib/tunnels.mjs";

const { values: opt } = parseArgs({
  options: {
    rates: { type: "string", default: "0,20000,100000,200000" },
    sources: { type: "string", default: "1,64" },
    impls: { type: "string", default: "wireguard-go,tswg-native,tswg-portable" },
    trials: { type: "string", default: "3" },
    limit: { type: "string", default: "30" },
    out: { type: "string" },
  },
});
const rates = opt.rates.split(",").map(Number);
const sourceCounts = opt.sources.split(",").map(Number);
const impls = opt.impls.split(",");
const trials = Number(opt.trials);
const limitMs = Number(opt.limit) * 1000;
const FLOODER = join(REPO, "test/flood/fixtures/flooder.mjs");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const bed = new Bed();
try {
  const s = await bed.host("s");
  const l = await bed.host("l");
  const f = await bed.host("f");
  await bed.link(s, l, "192.168.77.1/24", "192.168.77.2/24");
  await bed.link(s, f, "192.168.78.1/24", "192.168.78.2/24");
  const manySources = Array.from({ length: Math.max(...sourceCounts) }, (_, i) => `192.168.78.${10 + i}`);
  for (const a of manySources) await f.ip(["addr", "add", `${a}/24`, "dev", "v-s"]);
  const keysS = await keyPair();
  const keysL = await keyPair();

  const cases = [];
  for (const rate of rates) for (const n of rate === 0 ? [1] : sourceCounts) cases.push({ rate, sources: n });
  const results = [];
  for (const impl of impls) {
    const server = await startEnd({
      impl,
      host: s,
      ifname: "tswgfs",
      keys: keysS,
      peerPub: keysL.pub,
      listenPort: 51820,
      address: "10.77.0.1/24",
      peerAllowed: "10.77.0.2/32",
    });
    try {
      for (const c of cases) {
        const times = [];
        const replies = [];
        const floods = [];
        for (let t = 0; t < trials; t++) {
          const r = await measure(impl, c, { s, l, f, keysS, keysL, manySources });
          times.push(r.seconds);
          if (r.repliesPerSecond !== null) replies.push(r.repliesPerSecond);
          if (r.floodPerSecond !== null) floods.push(r.floodPerSecond);
          process.stdout.write(
            `${impl} ${c.rate}/s from ${c.sources}: handshake ${r.seconds === null ? `none in ${limitMs / 1000} s` : `${r.seconds.toFixed(1)} s`}` +
              (r.floodPerSecond === null ? "\n" : `, flood ${(r.floodPerSecond / 1000).toFixed(0)} k/s, replies ${(r.repliesPerSecond / 1000).toFixed(1)} k/s\n`),
          );
        }
        results.push({ impl, ...c, handshakeSeconds: times, floodPerSecond: floods, repliesPerSecond: replies });
      }
    } finally {
      await server.stop();
    }
  }
  printTable(results);
  const file = opt.out ?? join(REPO, "results", `handshake-flood-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
  mkdirSync(join(file, ".."), { recursive: true });
  writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), trials, limitSeconds: limitMs / 1000, results }, null, 2));
  console.log(`written to ${file}`);
} finally {
  await bed.cleanup();
}

async function udpOut(host) {
  const lines = (await host.exec(["cat", "/proc/net/snmp"])).stdout.split("\n").filter((x) => x.startsWith("Udp:"));
  const names = lines[0].split(/\s+/);
  const values = lines[1].split(/\s+/);
  return Number(values[names.indexOf("OutDatagrams")]);
}

/** One trial: flood (if any), restart the legitimate peer, time its handshake. */
async function measure(impl, c, { s, l, f, keysS, keysL, manySources }) {
  let flooder = null;
  let out0 = 0;
  let t0 = 0;
  if (c.rate > 0) {
    const sources = c.sources === 1 ? ["192.168.78.2"] : manySources.slice(0, c.sources);
    flooder = f.spawn(["node", FLOODER, "192.168.78.1", "51820", keysS.pub, String(c.rate), sources.join(",")]);
    await flooder.waitFor("flooding", 10_000);
    // Long enough for the responder to be under load before the peer comes back.
    await sleep(2000);
    out0 = await udpOut(s);
    t0 = performance.now();
  }
  const legit = await startLegit({
    impl: "wireguard-go",
    host: l,
    ifname: "tswgfl",
    keys: keysL,
    peerPub: keysS.pub,
    listenPort: 51821,
    address: "10.77.0.2/24",
    peerAllowed: "10.77.0.1/32",
    peerEndpoint: "192.168.77.1:51820",
  });
  const start = performance.now();
  const ping = l.spawn(["ping", "-q", "-i", "0.2", "-w", String(limitMs / 1000 + 1), "10.77.0.1"]);
  let seconds = null;
  while (performance.now() - start < limitMs) {
    const hs = (await l.exec(["wg", "show", "tswgfl", "latest-handshakes"])).stdout.trim().split(/\s+/)[1];
    if (Number(hs) > 0) {
      seconds = (performance.now() - start) / 1000;
      break;
    }
    await sleep(100);
  }
  await ping.stop();
  await legit.stop();
  let floodPerSecond = null;
  let repliesPerSecond = null;
  if (flooder !== null) {
    const out1 = await udpOut(s);
    repliesPerSecond = (out1 - out0) / ((performance.now() - t0) / 1000);
    await flooder.stop();
    const m = /sent (\d+) in ([\d.]+) s/.exec(flooder.output);
    floodPerSecond = m === null ? null : Number(m[1]) / Number(m[2]);
    // Let the responder leave its under-load state before the next case.
    await sleep(1500);
  }
  return { seconds, floodPerSecond, repliesPerSecond };
}

/** Starts wireguard-go, trying again if it fails to come up (its UAPI directory is shared with the host). */
async function startLegit(spec) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startEnd(spec);
    } catch (err) {
      if (attempt >= 3) throw err;
      await sleep(500);
    }
  }
}

function median(xs) {
  const v = xs.filter((x) => x !== null).sort((a, b) => a - b);
  if (v.length === 0) return null;
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
}

function printTable(results) {
  console.log("\nlegitimate handshake under a valid-mac1 initiation flood (median [min–max] of trials; '∞' = none within the limit)");
  const fmt = (xs) => {
    const v = xs.map((x) => (x === null ? Infinity : x));
    const m = median(v);
    return `${m === Infinity ? "∞" : m.toFixed(1)} s [${Math.min(...v) === Infinity ? "∞" : Math.min(...v).toFixed(1)}–${Math.max(...v) === Infinity ? "∞" : Math.max(...v).toFixed(1)}]`;
  };
  for (const r of results) {
    const flood = r.rate === 0 ? "no flood" : `${r.rate / 1000} k/s from ${r.sources === 1 ? "1 address" : `${r.sources} addresses`}`;
    const extra = r.rate === 0 ? "" : `  (flood reached ${(median(r.floodPerSecond) / 1000).toFixed(0)} k/s; replies ${(median(r.repliesPerSecond) / 1000).toFixed(1)} k/s)`;
    console.log(`${r.impl.padEnd(14)} ${flood.padEnd(28)} ${fmt(r.handshakeSeconds)}${extra}`);
  }
}
