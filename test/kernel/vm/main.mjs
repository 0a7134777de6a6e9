// The in-VM part of `npm run test:kernel`: runs inside the QEMU guest (real Linux WireGuard
// module), from the checkout, as root in the guest's own network namespaces. Prints one
// "RESULT {json}" line per case; the host side (run-vm.mjs) checks them. Everything here runs in
// the throw-away VM; nothing leaves it (the VM has no network device).
import { execFileSync, spawn } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { createInterface } from "node:readline";

const ROOT = process.cwd();
const TSWG = `${ROOT}/bin/tswg.js`;
const XFER = `${ROOT}/test/kernel/vm/xfer.mjs`;
const NS_A = "tka";
const NS_B = "tkb";
const WORK = "/tmp/tk";
const XFER_BYTES = Number(process.env.TSWG_VM_XFER_BYTES ?? 1 << 20);
const children = new Set();

function result(name, ok, detail = {}) {
  process.stdout.write(`RESULT ${JSON.stringify({ name, ok, ...detail })}\n`);
}

function sh(cmd, { check = true } = {}) {
  try {
    return execFileSync("/bin/sh", ["-c", cmd], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    if (check) throw new Error(`${cmd}: ${e.stderr || e.message}`);
    return e.stdout ?? "";
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A child whose stdout is read line by line. */
class Proc {
  constructor(argv, env = {}) {
    this.argv = argv;
    this.p = spawn(argv[0], argv.slice(1), { env: { ...process.env, ...env }, stdio: ["pipe", "pipe", "pipe"] });
    children.add(this.p);
    this.lines = [];
    this.waiters = [];
    this.log = "";
    this.exited = new Promise((r) => this.p.on("exit", (code, sig) => {
      children.delete(this.p);
      r(code ?? sig);
    }));
    const tag = argv.slice(3, 6).join(" ");
    const onLine = (l) => {
      if (process.env.TSWG_VM_DEBUG) process.stdout.write(`[${tag}] ${l}\n`);
      this.log += l + "\n";
      this.lines.push(l);
      for (const w of this.waiters.splice(0)) w();
    };
    createInterface({ input: this.p.stdout }).on("line", onLine);
    createInterface({ input: this.p.stderr }).on("line", (l) => {
      if (process.env.TSWG_VM_DEBUG) process.stdout.write(`[${tag}] ${l}\n`);
      this.log += l + "\n";
    });
  }
  /** The next stdout line that parses as JSON, within ms. */
  async json(ms = 60_000) {
    const end = Date.now() + ms;
    for (;;) {
      const i = this.lines.findIndex((l) => l.startsWith("{"));
      if (i >= 0) return JSON.parse(this.lines.splice(i, 1)[0]);
      if (Date.now() > end) throw new Error(`no answer from ${this.argv.join(" ")} within ${ms} ms`);
      await new Promise((r) => {
        this.waiters.push(r);
        setTimeout(r, 500);
      });
    }
  }
  async stop(ms = 15_000) {
    this.p.kill("SIGTERM");
    const t = setTimeout(() => this.p.kill("SIGKILL"), ms);
    const code = await this.exited;
    clearTimeout(t);
    return code;
  }
}

function keypair() {
  const { privateKey, publicKey } = generateKeyPairSync("x25519");
  const b64 = (s) => Buffer.from(s, "base64url").toString("base64");
  return { priv: b64(privateKey.export({ format: "jwk" }).d), pub: b64(publicKey.export({ format: "jwk" }).x) };
}

/** Exit code of a command, without blocking the event loop (the children's output must keep draining). */
function status(argv) {
  return new Promise((resolve) => {
    const c = spawn(argv[0], argv.slice(1), { stdio: "ignore" });
    c.on("exit", (code) => resolve(code));
    c.on("error", () => resolve(-1));
  });
}

async function waitPing(ns, ip, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if ((await status(["ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "1", ip])) === 0) return true;
    await sleep(100);
  }
  return false;
}

function leftovers(ns, names) {
  const found = [];
  const links = sh(`ip -n ${ns} -o link show`);
  for (const n of names) if (new RegExp(`: ${n}[:@]`).test(links)) found.push(`interface ${n}`);
  if (/tswg-/.test(sh(`ip netns exec ${ns} nft list tables`, { check: false }))) found.push("nft table");
  if (/TSWG-/.test(sh(`ip netns exec ${ns} iptables-save`, { check: false }))) found.push("iptables chains");
  if (/:51820\b/.test(sh(`ip netns exec ${ns} ss -uan`, { check: false }))) found.push("UDP socket on 51820");
  return found;
}

function conf(i, peer, extra) {
  return [
    "[Interface]",
    `PrivateKey = ${i.keys.priv}`,
    `Address = ${i.tunnel}/24`,
    "ListenPort = 51820",
    ...extra.iface,
    "",
    "[Peer]",
    `PublicKey = ${peer.keys.pub}`,
    `AllowedIPs = ${peer.tunnel}/32`,
    ...extra.peer,
    "",
  ].join("\n");
}

const A = { ns: NS_A, name: "wga", tunnel: "10.88.0.1", under: "10.77.0.1", keys: keypair() };
const B = { ns: NS_B, name: "wgb", tunnel: "10.88.0.2", under: "10.77.0.2", keys: keypair() };
let sender;
let sink;

function up(side, text) {
  const dir = `${WORK}/${side.name}`;
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${dir}/${side.name}.conf`, text, { mode: 0o600 });
  return new Proc(["ip", "netns", "exec", side.ns, "node", TSWG, "up", `${dir}/${side.name}.conf`, "--log-level", "debug"], { TSWG_RUN_DIR: `${dir}/run` });
}

async function transfer() {
  sender.p.stdin.write(`${B.tunnel} 7000 ${XFER_BYTES}\n`);
  const sent = await sender.json(300_000);
  if (sent.error) return { ok: false, error: sent.error };
  const got = await sink.json(30_000);
  return { ok: got.sha256 === sent.sha256 && got.bytes === sent.bytes, mbps: +((sent.bytes * 8) / sent.ms / 1000).toFixed(1), ms: sent.ms };
}

/** Two kernel interfaces with ICE beside each; checks ping, transfer, reported mode, wg/tswg show, cleanup. */
async function icePair(name, mode, expectMode, extra = []) {
  const t0 = Date.now();
  const ice = ["Signaling = ws://10.77.0.1:8080", "Kernel = on", `PortShare = ${mode}`, ...extra];
  const pa = up(A, conf(A, B, { iface: ice, peer: [] }));
  const pb = up(B, conf(B, A, { iface: ice, peer: [] }));
  const detail = { mode, expectMode };
  try {
    if (process.env.TSWG_VM_DEBUG) {
      await sleep(25_000);
      process.stdout.write(sh("ps -eo pid,stat,pcpu,rss,etime,args | cut -c1-150; cat /proc/loadavg; free -m"));
    }
    detail.pingOk = await waitPing(NS_A, B.tunnel, 180_000);
    detail.firstPingS = +((Date.now() - t0) / 1000).toFixed(1);
    if (!detail.pingOk) {
      if (process.env.TSWG_VM_DEBUG) {
        for (const ns of [NS_A, NS_B]) process.stdout.write(sh(`ip netns exec ${ns} sh -c 'wg show; iptables -t nat -L -v -n; iptables -t raw -L -v -n; conntrack -L -p udp; nft list ruleset' 2>&1`, { check: false }));
      }
      throw new Error("no ping through the tunnel");
    }
    const x = await transfer();
    Object.assign(detail, { transferOk: x.ok, mbps: x.mbps, transferMs: x.ms, transferError: x.error });
    const show = sh(`ip netns exec ${NS_A} env TSWG_RUN_DIR=${WORK}/${A.name}/run node ${TSWG} show ${A.name}`);
    const dump = sh(`ip netns exec ${NS_A} wg show ${A.name} dump`).trim().split("\n");
    const wgPeer = dump[1].split("\t");
    const share = /port share: (\S+)/.exec(show)?.[1] ?? null;
    detail.share = share;
    detail.showAgrees =
      show.includes(`listening port: ${dump[0].split("\t")[2]}`) && show.includes(`peer: ${wgPeer[0]}`) && show.includes(`endpoint: ${wgPeer[2]}`) && show.includes("device: kernel module");
    if (expectMode === "nftables") {
      const j = JSON.parse(sh(`ip netns exec ${NS_A} nft -j list table inet tswg-${A.name}`));
      const count = (chain) => j.nftables.filter((i) => i.rule?.chain === chain).reduce((n, i) => n + i.rule.expr.reduce((m, e) => m + (e.counter?.packets ?? 0), 0), 0);
      detail.kernelPackets = { ingress: count("ingress"), egress: count("egress") };
    } else if (expectMode === "iptables") {
      const n = (t, c) => sh(`ip netns exec ${NS_A} iptables -t ${t} -L ${c} -v -n -x`).split("\n").slice(2).filter((l) => l.trim() !== "").reduce((s, l) => s + Number(l.trim().split(/\s+/)[0]), 0);
      detail.kernelPackets = { natPre: n("nat", `TSWG-${A.name}-pre`), natPost: n("nat", `TSWG-${A.name}-post`) };
    }
  } catch (e) {
    detail.error = e.message;
  }
  detail.exitA = await pa.stop();
  detail.exitB = await pb.stop();
  detail.leftovers = [...leftovers(NS_A, [A.name]), ...leftovers(NS_B, [B.name])];
  // nftables rewrites every packet both ways; with iptables only a flow's first packet meets the
  // nat rules (PREROUTING on the side that receives it first, POSTROUTING on the one that sends it).
  const kp = detail.kernelPackets;
  const kernelOk = kp === undefined || (expectMode === "iptables" ? kp.natPre + kp.natPost > 0 : Object.values(kp).every((v) => v > 0));
  const ok = detail.pingOk && detail.transferOk && detail.share === expectMode && detail.showAgrees && kernelOk && detail.exitA === 0 && detail.exitB === 0 && detail.leftovers.length === 0;
  if (!ok) detail.logA = pa.log.split("\n").slice(-25).join("\n");
  if (!ok) detail.logB = pb.log.split("\n").slice(-15).join("\n");
  result(name, ok, detail);
}

async function detectCase() {
  const { detectKernelWireGuard } = await import(`${ROOT}/dist/kernel/detect.js`);
  const before = sh("cat /proc/modules").includes("wireguard ");
  const r = detectKernelWireGuard();
  result("detect", r.available && !before, { ...r, loadedBefore: before });
}

async function netlinkCase() {
  const { Rtnl } = await import(`${ROOT}/dist/kernel/rtnl.js`);
  const { KernelWireGuard } = await import(`${ROOT}/dist/kernel/wireguard-genl.js`);
  const rtnl = new Rtnl();
  const name = "wgbig";
  const detail = {};
  try {
    rtnl.createLink(name, "wireguard");
    const wg = new KernelWireGuard(name);
    const peers = [];
    for (let i = 0; i < 1000; i++) {
      const allowedIps = [`10.${100 + (i >> 8)}.${i & 255}.0/24`, `fd00:${i.toString(16)}::/64`];
      peers.push({ publicKey: randomBytes(32), remove: false, updateOnly: false, presharedKey: i === 0 ? randomBytes(32) : undefined, endpoint: `192.0.2.${1 + (i % 250)}:${10000 + i}`, persistentKeepalive: i % 2 === 0 ? 25 : 0, replaceAllowedIps: true, allowedIps, removeAllowedIps: [] });
    }
    const t0 = process.hrtime.bigint();
    wg.setSync({ privateKey: randomBytes(32), listenPort: 51999, fwmark: 0x51, replacePeers: true, peers });
    detail.set1000Ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const t1 = process.hrtime.bigint();
    const state = wg.getSync();
    detail.get1000Ms = Number(process.hrtime.bigint() - t1) / 1e6;
    const dump = sh(`wg show ${name} dump`).trim().split("\n");
    const byKey = new Map(state.peers.map((p) => [Buffer.from(p.publicKey).toString("base64"), p]));
    let agree = dump.length === 1001 && state.peers.length === 1000 && state.listenPort === 51999 && state.fwmark === 0x51 && dump[0].split("\t")[2] === "51999";
    for (const line of dump.slice(1)) {
      const [key, psk, endpoint, ips, , , , ka] = line.split("\t");
      const p = byKey.get(key);
      if (p === undefined || p.endpoint !== endpoint || p.allowedIps.join(",") !== ips || String(p.persistentKeepalive || "off") !== ka || (psk !== "(none)") !== (p.presharedKey !== undefined)) agree = false;
    }
    detail.wgAgrees = agree;
    // Removing one allowed IP (rewritten as a replace on this kernel) and one peer.
    const first = peers[0];
    wg.setSync({ replacePeers: false, peers: [{ ...first, replaceAllowedIps: false, allowedIps: [], removeAllowedIps: [first.allowedIps[1]], updateOnly: true }, { ...peers[1], remove: true }] });
    const after = wg.getSync();
    detail.afterRemove = after.peers.length === 999 && after.peers.find((p) => Buffer.from(p.publicKey).equals(first.publicKey))?.allowedIps.join(",") === first.allowedIps[0];
    wg.close();
    rtnl.addAddress(name, "10.250.0.1/24");
    rtnl.setLink(name, { up: true, mtu: 1380 });
    rtnl.addRoute(name, "10.251.0.0/16");
    const link = rtnl.getLink(name);
    detail.linkOk = link.up && link.mtu === 1380 && link.kind === "wireguard" && sh("ip -o addr show dev wgbig").includes("10.250.0.1/24") && sh("ip route show dev wgbig").includes("10.251.0.0/16");
  } catch (e) {
    detail.error = e.message;
  } finally {
    try {
      rtnl.deleteLink(name);
    } catch (e) {
      detail.deleteError = e.message;
    }
    rtnl.close();
  }
  result("netlink-1000-peers", detail.wgAgrees === true && detail.afterRemove === true && detail.linkOk === true && detail.error === undefined, detail);
}

/** Kernel WireGuard (B) and tswg's in-process device (A), static endpoints, PSK; handshakes both ways. */
async function userspaceInterop() {
  const psk = randomBytes(32).toString("base64");
  const aConf = conf(A, B, { iface: ["Kernel = off"], peer: [`Endpoint = ${B.under}:51820`, `PresharedKey = ${psk}`] });
  const bConf = conf(B, A, { iface: ["Kernel = on"], peer: [`Endpoint = ${A.under}:51820`, `PresharedKey = ${psk}`] });
  const detail = {};
  let pa = up(A, aConf);
  const pb = up(B, bConf);
  try {
    detail.aInitiatesOk = await waitPing(NS_A, B.tunnel, 60_000);
    const x = await transfer();
    Object.assign(detail, { transferOk: x.ok, mbps: x.mbps, transferError: x.error });
    detail.exitA1 = await pa.stop();
    // A new in-process device has no session: B's kernel must initiate this time.
    pa = up(A, aConf);
    await sleep(1500);
    detail.bInitiatesOk = await waitPing(NS_B, A.tunnel, 60_000);
    detail.pskSet = sh(`ip netns exec ${NS_B} wg show ${B.name} preshared-keys`).includes(psk);
    detail.handshakeSeen = !/\t0$/.test(sh(`ip netns exec ${NS_B} wg show ${B.name} latest-handshakes`).trim());
  } catch (e) {
    detail.error = e.message;
  }
  detail.exitA = await pa.stop();
  detail.exitB = await pb.stop();
  detail.leftovers = [...leftovers(NS_A, [A.name]), ...leftovers(NS_B, [B.name])];
  const ok = detail.aInitiatesOk && detail.bInitiatesOk && detail.transferOk && detail.pskSet && detail.handshakeSeen && detail.exitA === 0 && detail.exitB === 0 && detail.leftovers.length === 0;
  if (!ok) detail.logA = pa.log.split("\n").slice(-20).join("\n");
  result("kernel-vs-userspace", ok, detail);
}

async function main() {
  const only = (process.env.TSWG_VM_CASES ?? "").split(",").filter((s) => s !== "");
  const want = (n) => only.length === 0 || only.includes(n);
  const t0 = Date.now();
  await detectCase();
  if (want("netlink")) await netlinkCase();
  sh(`ip netns add ${NS_A}; ip netns add ${NS_B}`);
  sh(`ip -n ${NS_A} link set lo up; ip -n ${NS_B} link set lo up`);
  sh(`ip link add va netns ${NS_A} type veth peer name vb netns ${NS_B}`);
  sh(`ip -n ${NS_A} addr add ${A.under}/24 dev va; ip -n ${NS_B} addr add ${B.under}/24 dev vb; ip -n ${NS_A} link set va up; ip -n ${NS_B} link set vb up`);
  mkdirSync(`${WORK}/turn`, { recursive: true });
  const signal = new Proc(["ip", "netns", "exec", NS_A, "node", TSWG, "signal", "--listen", "10.77.0.1:8080"]);
  const { coturnConfig } = await import(`${ROOT}/dist/testbed/coturn.js`);
  writeFileSync(`${WORK}/turn/turnserver.conf`, coturnConfig({ ip: A.under, port: 3478, username: "tk", password: "tk-secret", realm: "tswg.test", dir: `${WORK}/turn`, relayPorts: { min: 49152, max: 49200 } }));
  const turn = new Proc(["ip", "netns", "exec", NS_A, "turnserver", "-c", `${WORK}/turn/turnserver.conf`]);
  sink = new Proc(["ip", "netns", "exec", NS_B, "node", XFER, "sink", "7000"]);
  sender = new Proc(["ip", "netns", "exec", NS_A, "node", XFER, "send"]);
  await sink.json(60_000);
  try {
    for (const m of ["proxy", "nftables", "iptables"]) if (want(m)) await icePair(`ice-${m}`, m, m);
    if (want("auto")) await icePair("ice-auto", "auto", "nftables");
    if (want("relay")) await icePair("ice-relay-fallback", "nftables", "proxy", ["ICEServers = turn:tk:tk-secret@10.77.0.1:3478", "ICECandidateTypes = relay"]);
    if (want("userspace")) await userspaceInterop();
  } finally {
    for (const p of [sender, sink, turn, signal]) await p.stop(3000);
  }
  result("vm-duration", true, { seconds: +((Date.now() - t0) / 1000).toFixed(1) });
}

main().then(
  () => process.exit(0),
  (e) => {
    result("fatal", false, { error: e.stack ?? String(e) });
    for (const c of children) c.kill("SIGKILL");
    process.exit(1);
  },
);
