// How configuring many peers scales: N peers (one /32 AllowedIP and an endpoint each) sent to a
// running device in one UAPI `set` request, as `wg setconf`/`wg addconf` do, then 1 000 more
// added to them (addconf). Each size runs in a fresh process so RSS is its own.
// Prints peers/s and the RSS the peers added, per peer.
//
//   node bench/peer-scale.mjs [--sizes 1000,5000,10000,20000] [--tun memory,linux] [--out FILE]
//
// "memory" uses an in-memory TUN (portable data path); "linux" a real TUN created inside a
// namespace this script makes and removes, so the native data path and its route table run.
// Endpoints are 127.0.0.1 ports; nothing is sent to them.
import { spawn } from "node:child_process";
import { createConnection } from "node:net";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Bed } from "./lib/netns.mjs";
import { REPO } from "./lib/tunnels.mjs";

const { values: opt } = parseArgs({
  options: {
    sizes: { type: "string", default: "1000,5000,10000,20000" },
    tun: { type: "string", default: "memory,linux" },
    out: { type: "string" },
    child: { type: "string" },
    netns: { type: "string" },
  },
});

const hex = (n, salt) => {
  const b = Buffer.alloc(32);
  b.writeUInt32BE(n, 0);
  b.writeUInt32BE(salt, 4);
  b[31] = 0x40; // any 32 bytes are a valid Curve25519 public key
  return b.toString("hex");
};
const ipOf = (i) => `10.${(i >> 16) & 0xff}.${(i >> 8) & 0xff}.${i & 0xff}`;

function setRequest(from, count, salt) {
  const lines = ["set=1"];
  for (let i = from; i < from + count; i++) {
    lines.push(`public_key=${hex(i, salt)}`, "replace_allowed_ips=true", `allowed_ip=${ipOf(i + 1)}/32`, `endpoint=127.0.0.1:${10000 + (i % 50000)}`);
  }
  return lines.join("\n") + "\n\n";
}

async function child(n, tunKind, netns) {
  const api = await import(join(REPO, "dist/index.js"));
  const { parseGet } = await import(join(REPO, "dist/uapi/client.js"));
  const dir = mkdtempSync(join(tmpdir(), "tswg-peerscale-"));
  const tun = tunKind === "linux" ? await api.createLinuxTun("tswgscale0", { netns }) : new api.MemoryTun({ name: "scale0" });
  const device = new api.Device({ tun, binds: [new api.UdpBind({ address4: "127.0.0.1" })] });
  await device.up();
  const server = new api.UapiServer();
  await server.listen(device.name, api.deviceUapiHandler(device), { dir, maxRequestBytes: 64 << 20, maxLines: 1 << 22 });
  const privateKey = Buffer.alloc(32, 7).toString("hex");
  // Not uapiRequest: its 5 s timeout is what a slow device must be measured past.
  const req = (text) =>
    new Promise((resolve, reject) => {
      const sock = createConnection(join(dir, `${device.name}.sock`));
      let reply = "";
      sock.on("data", (d) => {
        reply += d;
        if (reply.endsWith("\n\n")) sock.end();
      });
      sock.on("error", reject);
      sock.on("close", () => resolve(reply));
      sock.write(text);
    });
  await req(`set=1\nprivate_key=${privateKey}\n\n`);
  global.gc?.();
  const rss0 = process.memoryUsage().rss;
  let t = performance.now();
  const r1 = await req(setRequest(0, n, 1));
  const setMs = performance.now() - t;
  global.gc?.();
  const rss1 = process.memoryUsage().rss;
  t = performance.now();
  const r2 = await req(setRequest(n, 1000, 1));
  const addMs = performance.now() - t;
  t = performance.now();
  const state = parseGet(await req("get=1\n\n"));
  const getMs = performance.now() - t;
  if (!r1.includes("errno=0") || !r2.includes("errno=0")) throw new Error(`set failed: ${r1} ${r2}`);
  if (state.peers.length !== n + 1000) throw new Error(`expected ${n + 1000} peers, got ${state.peers.length}`);
  await server.close();
  await device.close();
  rmSync(dir, { recursive: true, force: true });
  process.stdout.write(
    JSON.stringify({ n, tun: tunKind, dataPath: tunKind === "linux" ? "native" : "portable", setMs, addMs, getMs, rssPerPeerBytes: (rss1 - rss0) / n, rssMiB: rss1 / 2 ** 20 }) + "\n",
  );
}

function runChild(n, tunKind, netns) {
  return new Promise((resolve, reject) => {
    const args = ["--expose-gc", import.meta.filename, "--child", String(n), "--tun", tunKind];
    if (netns) args.push("--netns", netns);
    const p = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    p.stdout.on("data", (d) => (out += d));
    p.on("exit", (code) => (code === 0 ? resolve(JSON.parse(out.trim().split("\n").pop())) : reject(new Error(`child for ${n} ${tunKind} exited ${code}`))));
  });
}

async function main() {
  const sizes = opt.sizes.split(",").map(Number);
  const kinds = opt.tun.split(",").filter(Boolean);
  const bed = new Bed();
  const results = [];
  try {
    const host = kinds.includes("linux") ? await bed.host("scale") : null;
    for (const kind of kinds) {
      for (const n of sizes) {
        const r = await runChild(n, kind, host?.ns);
        results.push(r);
        console.log(
          `${kind.padEnd(6)} ${String(n).padStart(6)} peers: set ${r.setMs.toFixed(0).padStart(6)} ms (${Math.round((n / r.setMs) * 1000)} peers/s), ` +
            `+1000 ${r.addMs.toFixed(0)} ms, get ${r.getMs.toFixed(0)} ms, ${Math.round(r.rssPerPeerBytes)} B RSS/peer, RSS ${r.rssMiB.toFixed(0)} MiB`,
        );
      }
    }
  } finally {
    await bed.cleanup();
  }
  if (opt.out) writeFileSync(opt.out, JSON.stringify({ date: new Date().toISOString(), results }, null, 2));
  return results;
}

if (opt.child !== undefined) {
  await child(Number(opt.child), opt.tun, opt.netns);
} else {
  await main();
}
