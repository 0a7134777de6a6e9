// The in-VM part of `npm run test:kernel`: runs inside the QEMU guest (real Linux WireGuard
// module), from the checkout, as root in the guest's own network namespaces. Prints one
// "RESULT {json}" line per case; the host side (run-vm.mjs) checks them. Everything here runs in
// the throw-away VM; nothing leaves it (the VM has no network device).
//
// The ICE cases share one pair of namespaces on a bridge, with the signaling server and TURN in
// the VM's root namespace, and run one after the other: under emulation on a loaded machine,
// running them side by side made every case slower than the sum (Node's start-up is CPU-bound).
import { execFileSync, spawn } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { createInterface } from "node:readline";

const ROOT = process.cwd();
const TSWG = `${ROOT}/bin/tswg.js`;
const XFER = `${ROOT}/test/kernel/vm/xfer.mjs`;
const WORK = "/tmp/tk";
const HUB = "10.77.0.254";
const XFER_BYTES = Number(process.env.TSWG_VM_XFER_BYTES ?? 512 << 10);
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
    /** Every output line with the time it arrived, for the timelines of the pair-change phases. */
    this.timed = [];
    this.exited = new Promise((r) => this.p.on("exit", (code, sig) => {
      children.delete(this.p);
      r(code ?? sig);
    }));
    const tag = argv.slice(3, 6).join(" ");
    const onLine = (l) => {
      if (process.env.TSWG_VM_DEBUG) process.stdout.write(`[${tag}] ${l}\n`);
      this.log += l + "\n";
      this.timed.push({ at: Date.now(), l });
      this.lines.push(l);
      for (const w of this.waiters.splice(0)) w();
    };
    createInterface({ input: this.p.stdout }).on("line", onLine);
    createInterface({ input: this.p.stderr }).on("line", (l) => {
      if (process.env.TSWG_VM_DEBUG) process.stdout.write(`[${tag}] ${l}\n`);
      this.log += l + "\n";
      this.timed.push({ at: Date.now(), l });
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
  async stop(ms = 40_000) {
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
  if (/TSWG-/.test(sh(`ip netns exec ${ns} ip6tables-save`, { check: false }))) found.push("ip6tables chains");
  if (/:51820\b/.test(sh(`ip netns exec ${ns} ss -uan`, { check: false }))) found.push("UDP socket on 51820");
  if (/:(17|udp)\s/.test(sh(`ip netns exec ${ns} ss -wan`, { check: false }).split("\n").slice(1).join("\n"))) found.push("raw UDP socket");
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

/** One lane: two namespaces (A, B) on the hub bridge, with a transfer sender in A and a sink in B. */
function makeLane(n) {
  const base = 1 + 10 * n;
  const A = { ns: `tk${n}a`, name: "wga", tunnel: `10.88.${n}.1`, under: `10.77.0.${base}`, under6: `fd77::${base}`, keys: keypair(), dir: `${WORK}/${n}a` };
  const B = { ns: `tk${n}b`, name: "wgb", tunnel: `10.88.${n}.2`, under: `10.77.0.${base + 1}`, under6: `fd77::${base + 1}`, keys: keypair(), dir: `${WORK}/${n}b` };
  for (const [side, dev] of [
    [A, "va"],
    [B, "vb"],
  ]) {
    const hub = `tk${n}${dev}`;
    sh(`ip netns add ${side.ns}; ip -n ${side.ns} link set lo up`);
    sh(`ip link add ${hub} type veth peer name ${dev} netns ${side.ns}`);
    sh(`ip link set ${hub} master tkbr; ip link set ${hub} up`);
    // Removing the first address must not take the others of its subnet with it (pair change).
    sh(`ip netns exec ${side.ns} sysctl -qw net.ipv4.conf.all.promote_secondaries=1 net.ipv4.conf.default.promote_secondaries=1`);
    sh(`ip -n ${side.ns} addr add ${side.under}/24 dev ${dev}; ip -n ${side.ns} link set ${dev} up`);
    side.dev = dev;
  }
  const sink = new Proc(["ip", "netns", "exec", B.ns, "node", XFER, "sink", "7000"]);
  const sender = new Proc(["ip", "netns", "exec", A.ns, "node", XFER, "send"]);
  return { n, A, B, sink, sender, ready: sink.json(120_000) };
}

function up(side, text) {
  mkdirSync(side.dir, { recursive: true });
  writeFileSync(`${side.dir}/${side.name}.conf`, text, { mode: 0o600 });
  return new Proc(["ip", "netns", "exec", side.ns, "node", TSWG, "up", `${side.dir}/${side.name}.conf`, "--log-level", "debug"], { TSWG_RUN_DIR: `${side.dir}/run` });
}

async function transfer(lane, bytes = XFER_BYTES) {
  lane.sender.p.stdin.write(`${lane.B.tunnel} 7000 ${bytes}\n`);
  const sent = await lane.sender.json(300_000);
  if (sent.error) return { ok: false, error: sent.error };
  const got = await lane.sink.json(30_000);
  return { ok: got.sha256 === sent.sha256 && got.bytes === sent.bytes, mbps: +((sent.bytes * 8) / sent.ms / 1000).toFixed(1), ms: sent.ms };
}

function tswgShow(side) {
  return sh(`ip netns exec ${side.ns} env TSWG_RUN_DIR=${side.dir}/run node ${TSWG} show ${side.name}`);
}

function endpointOf(side) {
  return sh(`ip netns exec ${side.ns} wg show ${side.name} endpoints`).trim().split("\t")[1];
}

/** Packets the nft table's rules moved, per chain. */
function nftCounters(side) {
  const j = JSON.parse(sh(`ip netns exec ${side.ns} nft -j list table inet tswg-${side.name}`));
  const count = (chain) => j.nftables.filter((i) => i.rule?.chain === chain).reduce((n, i) => n + i.rule.expr.reduce((m, e) => m + (e.counter?.packets ?? 0), 0), 0);
  return { ingress: count("ingress"), egress: count("egress") };
}

/** A side's ICE and port-sharing events from `at` on (seconds after it), for the case's report. */
function timeline(proc, at) {
  const interesting = /device endpoint|generation \d+:|restarting ICE|path:|no path|no direct path|local addresses changed|failed for this pair/;
  // The line's own time stamp where it has one: this process reads its children's output late
  // while it waits for a command.
  const when = (e) => {
    const t = /^(\d{4}-\d\d-\d\dT[\d:.]+Z) /.exec(e.l);
    return t === null ? e.at : Date.parse(t[1]);
  };
  return proc.timed
    .filter((e) => when(e) >= at - 1000 && interesting.test(e.l))
    .slice(0, 16)
    .map((e) => `+${((when(e) - at) / 1000).toFixed(1)} ${e.l.replace(/^.*?(peer |generation |restarting|local|no |direct path|relay path)/, "$1").slice(0, 160)}`);
}

/** The peer's latest handshake (unix seconds) as the kernel reports it. */
function handshakeOf(side) {
  return Number(sh(`ip netns exec ${side.ns} wg show ${side.name} latest-handshakes`).trim().split("\t")[1]);
}

/**
 * The kernel kept its session across a change: no handshake since `before`, or only the
 * scheduled one (REKEY_AFTER_TIME, 120 s after the last); a new handshake sooner means the
 * tunnel had to be re-established (the kernel does that itself after 15 s without an answer).
 * Reported, not required: how long the tunnel stayed dark is the bound the cases report.
 */
function sessionKept(before, after) {
  return after === before || after - before >= 110;
}

/**
 * Cuts the direct path between the lane's namespaces where a broken network would: on arrival
 * (each side's input hook, a table of the test's own), so both kernels still send. Signaling and
 * TURN (the hub) stay reachable. `family` 4 cuts IPv4 only (the IPv6 case), 6 IPv6 only.
 */
function block(lane, family = 4, wholeSubnet = false) {
  for (const [me, other] of [
    [lane.A, lane.B],
    [lane.B, lane.A],
  ]) {
    // The whole subnet but the hub, when an address may have moved (after an ICE restart case).
    const v4 = wholeSubnet ? `ip saddr 10.77.0.0/24 ip saddr != ${HUB}` : `ip saddr ${other.under}`;
    const from = family === 4 ? v4 : `ip6 saddr ${other.under6}`;
    sh(`ip netns exec ${me.ns} nft 'add table inet tkblock; add chain inet tkblock in { type filter hook input priority 0; policy accept; }; add rule inet tkblock in ${from} counter drop'`);
  }
}

function unblock(lane) {
  for (const side of [lane.A, lane.B]) sh(`ip netns exec ${side.ns} nft delete table inet tkblock`, { check: false });
}

/** Polls `f` every 250 ms until it is true; the seconds it took, or null after `ms`. */
async function waitFor(f, ms) {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if (f()) return +((Date.now() - t0) / 1000).toFixed(1);
    await sleep(250);
  }
  return null;
}

/** A ping every 0.5 s through the tunnel, with the time of each reply (-D). */
class Pinger {
  constructor(ns, ip) {
    this.out = "";
    this.p = spawn("ip", ["netns", "exec", ns, "ping", "-D", "-i", "0.5", "-W", "1", ip], { stdio: ["ignore", "pipe", "ignore"] });
    children.add(this.p);
    this.exited = new Promise((r) => this.p.on("exit", r));
    this.p.stdout.on("data", (d) => (this.out += d));
  }
  replies() {
    return [...this.out.matchAll(/^\[(\d+\.\d+)\].*icmp_seq=(\d+)/gm)].map((m) => ({ at: Number(m[1]) * 1000, seq: Number(m[2]) }));
  }
  /** Waits for a reply sent after `t` (ms since the epoch); true if one came within `ms`. */
  async replyAfter(t, ms) {
    return (await waitFor(() => this.replies().some((r) => r.at > t), ms)) !== null;
  }
  /**
   * Stops; the figures around an event at `at`: pings lost from a second before it on, the
   * longest time without a reply from then on, and all pings sent and answered.
   */
  async stop(at) {
    this.p.kill("SIGINT");
    await this.exited;
    children.delete(this.p);
    const replies = this.replies();
    const sent = Number(/(\d+) packets transmitted/.exec(this.out)?.[1] ?? 0);
    const before = replies.filter((r) => r.at < at - 1000);
    const fromSeq = before.length > 0 ? before[before.length - 1].seq : 0;
    const after = replies.filter((r) => r.at >= at - 1000);
    let gap = 0;
    let prev = before.length > 0 ? before[before.length - 1].at : at - 1000;
    for (const r of after) {
      gap = Math.max(gap, r.at - prev);
      prev = r.at;
    }
    const rtts = [...this.out.matchAll(/icmp_seq=\d+ .*time=([\d.]+) ms/g)].map((m) => Number(m[1]));
    return { sent, answered: replies.length, lostAround: sent - fromSeq - after.length, longestGapS: +(gap / 1000).toFixed(1), maxRttMs: Math.round(Math.max(0, ...rtts)) };
  }
}

/**
 * A ping from A to B's tunnel address, left running `settleMs` before a phase changes anything,
 * and A's handshake time then (to tell a kept session from a new one).
 */
async function pingThroughout(lane, settleMs = 1500) {
  const handshakeBefore = handshakeOf(lane.A);
  const ping = new Pinger(lane.A.ns, lane.B.tunnel);
  await sleep(settleMs);
  return { handshakeBefore, ping };
}

/**
 * The pair changes under a running tunnel: B's address moves (an ICE restart, since B's local
 * addresses changed), so A's device endpoint must follow the new pair; the WireGuard session is
 * kept. A pings B throughout; only A's endpoint update can bring the replies back (B sends
 * nothing on its own that would let A's kernel roam). With nftables the table must be rewritten
 * for the new pair (new ICE ports, B's new address) in the same step.
 */
async function pairChange(lane, pa, mode, detail) {
  const { A, B } = lane;
  const moved = B.under.replace(/\.(\d+)$/, (_, d) => `.${Number(d) + 100}`);
  const table = () => sh(`ip netns exec ${A.ns} nft list table inet tswg-${A.name}`, { check: false });
  const rulesBefore = mode === "nftables" ? table() : "";
  const { handshakeBefore, ping } = await pingThroughout(lane, 2000);
  sh(`ip -n ${B.ns} addr add ${moved}/24 dev ${B.dev}; ip -n ${B.ns} addr del ${B.under}/24 dev ${B.dev}`);
  // Times are taken from when the change is complete.
  const at = Date.now();
  const followed = (ep) => (mode === "raw" ? ep === `${moved}:51820` : ep?.startsWith(`${moved}:`) === true);
  detail.changeEndpointS = await waitFor(() => followed(endpointOf(A)), 150_000);
  const updated = detail.changeEndpointS !== null;
  const resumed = updated && (await ping.replyAfter(Date.now(), 60_000));
  await sleep(2000);
  const p = await ping.stop(at);
  detail.changeEvents = { A: timeline(lane.pa, at), B: timeline(lane.pb, at) };
  const x = resumed ? await transfer(lane, 128 << 10) : { ok: false, error: "no ping after the change" };
  const target = endpointOf(A);
  const show = tswgShow(A);
  Object.assign(detail, {
    changeEndpoint: target,
    changeResumed: resumed,
    changePings: p,
    changeTransferOk: x.ok,
    // The new remote candidate may be learnt from B's checks (prflx) before B signals it (host).
    changeShowAgrees: show.includes(`endpoint: ${target}`) && new RegExp(`(host|prflx) ${moved.replace(/\./g, "\\.")}:`).test(show),
    changeLogged: pa.log.includes(`device endpoint ${target}`),
    changeSameSession: sessionKept(handshakeBefore, handshakeOf(A)),
  });
  let rulesOk = true;
  if (mode === "nftables") {
    // Egress: B's new address and port, source port set to A's new ICE port; ingress: that port.
    const rulesAfter = table();
    const icePort = (t) => /udp sport set (\d+)/.exec(t)?.[1] ?? null;
    detail.changeRules = { before: { icePort: icePort(rulesBefore), toOld: rulesBefore.includes(`ip daddr ${B.under} `) }, after: { icePort: icePort(rulesAfter), toNew: rulesAfter.includes(`ip daddr ${moved} udp sport 51820 udp dport ${target.split(":")[1]}`), toOld: rulesAfter.includes(`ip daddr ${B.under} `) } };
    const r = detail.changeRules;
    rulesOk = r.before.toOld && r.after.toNew && !r.after.toOld && r.after.icePort !== null && rulesAfter.includes(`udp dport ${r.after.icePort} `);
  }
  return updated && resumed && x.ok && detail.changeShowAgrees && detail.changeLogged && rulesOk;
}

/**
 * Relay first, then direct: the lane starts with the direct path cut (block), so the first pair
 * goes through TURN and the proxy carries it; then the path opens under a running ping, and A's
 * device endpoint must move from the proxy's socket to B's direct candidate (raw: B's device
 * port itself), with the kernel's session kept.
 */
async function relayToDirect(lane, pa, mode, detail, { relayTransfer }) {
  const { A, B } = lane;
  detail.relayEndpoint = endpointOf(A);
  detail.relayByProxy = detail.relayEndpoint?.startsWith("127.0.0.1:") === true && pa.log.includes(": proxy (the pair goes through a TURN relay");
  if (relayTransfer) {
    const x = await transfer(lane, 128 << 10);
    Object.assign(detail, { relayTransferOk: x.ok, relayMbps: x.mbps, relayTransferError: x.error });
  }
  const { handshakeBefore, ping } = await pingThroughout(lane);
  unblock(lane);
  const at = Date.now();
  const direct = (ep, to) => (mode === "raw" ? ep === `${to.under}:51820` : ep?.startsWith(`${to.under}:`) === true);
  detail.upgradeEndpointS = await waitFor(() => direct(endpointOf(A), B), 150_000);
  detail.upgradeEndpointBS = detail.upgradeEndpointS === null ? null : await waitFor(() => direct(endpointOf(B), A), 30_000);
  await sleep(2000);
  detail.upgradePings = await ping.stop(at);
  detail.upgradeEvents = { A: timeline(lane.pa, at), B: timeline(lane.pb, at) };
  detail.upgradeEndpoint = endpointOf(A);
  detail.upgradeSameSession = sessionKept(handshakeBefore, handshakeOf(A));
  return detail.relayByProxy && (!relayTransfer || detail.relayTransferOk) && detail.upgradeEndpointS !== null && detail.upgradeEndpointBS !== null;
}

/**
 * Direct, then cut: the direct path is blocked under a running ping; the kernel keeps sending
 * into the void, which tswg sees in the device's counters, so ICE moves to its relay lane and
 * A's device endpoint to the proxy. Replies must come back over the relay.
 */
async function directToRelay(lane, mode, detail) {
  const { A } = lane;
  const { handshakeBefore, ping } = await pingThroughout(lane);
  // Every direct path, whichever address and family the pair is on (a case may have moved it).
  block(lane, 4, true);
  if (lane.v6) block(lane, 6);
  const at = Date.now();
  detail.cutEndpointS = await waitFor(() => endpointOf(A)?.startsWith("127.0.0.1:") === true, 90_000);
  const resumed = detail.cutEndpointS !== null && (await ping.replyAfter(at + 500, 60_000));
  await sleep(2000);
  detail.cutPings = await ping.stop(at);
  detail.cutEvents = { A: timeline(lane.pa, at), B: timeline(lane.pb, at) };
  detail.cutResumed = resumed;
  detail.cutSameSession = sessionKept(handshakeBefore, handshakeOf(A));
  // nftables: the proxy carries the peer now, so its rules (the whole table, the only peer) are gone.
  if (mode === "nftables") detail.cutTableGone = !/tswg-/.test(sh(`ip netns exec ${A.ns} nft list tables`, { check: false }));
  return resumed && (mode !== "nftables" || detail.cutTableGone);
}

/**
 * IPv4 to IPv6: both sides get an IPv6 address (an ICE restart) while IPv4 between them is cut,
 * so the new pair is IPv6. The peer's rules must move to IPv6 (iptables: from iptables to
 * ip6tables, the IPv4 chains removed; nftables: `ip6` rules in the same table, no `ip` ones left)
 * and carry a ping and a transfer checked by hash.
 */
async function toIPv6(lane, mode, detail) {
  const { A, B } = lane;
  const { handshakeBefore, ping } = await pingThroughout(lane);
  block(lane, 4, true);
  for (const side of [A, B]) sh(`ip -n ${side.ns} addr add ${side.under6}/64 dev ${side.dev} nodad`);
  lane.v6 = true;
  const at = Date.now();
  detail.v6EndpointS = await waitFor(() => endpointOf(A)?.startsWith(`[${B.under6}]:`) === true, 150_000);
  const resumed = detail.v6EndpointS !== null && (await ping.replyAfter(Date.now(), 60_000));
  await sleep(2000);
  detail.v6Pings = await ping.stop(at);
  detail.v6Events = { A: timeline(lane.pa, at), B: timeline(lane.pb, at) };
  detail.v6Endpoint = endpointOf(A);
  detail.v6SameSession = sessionKept(handshakeBefore, handshakeOf(A));
  const x = resumed ? await transfer(lane) : { ok: false, error: "no ping over IPv6" };
  Object.assign(detail, { v6TransferOk: x.ok, v6Mbps: x.mbps, v6TransferError: x.error });
  if (mode === "nftables") {
    // The table is replaced on every change, so its counters are the IPv6 pair's alone.
    detail.v6KernelPackets = nftCounters(A);
    const t = sh(`ip netns exec ${A.ns} nft list table inet tswg-${A.name}`, { check: false });
    detail.v4RulesRemoved = t.includes(`ip6 daddr ${B.under6} udp sport 51820`) && !/\bip daddr /.test(t);
    const kp = detail.v6KernelPackets;
    return resumed && x.ok && kp.ingress > 0 && kp.egress > 0 && detail.v4RulesRemoved;
  }
  const n = (t, c) => sh(`ip netns exec ${A.ns} ip6tables -t ${t} -L ${c} -v -n -x`, { check: false }).split("\n").slice(2).filter((l) => l.trim() !== "").reduce((s, l) => s + Number(l.trim().split(/\s+/)[0]), 0);
  detail.v6KernelPackets = { natPre: n("nat", `TSWG-${A.name}-pre`), natPost: n("nat", `TSWG-${A.name}-post`) };
  detail.v4RulesRemoved = !/TSWG-/.test(sh(`ip netns exec ${A.ns} iptables-save`, { check: false }));
  const kp = detail.v6KernelPackets;
  return resumed && x.ok && kp.natPre + kp.natPost > 0 && detail.v4RulesRemoved;
}

/** Takes the IPv6 addresses off again (the IPv6 case). */
function removeIPv6(lane) {
  lane.v6 = false;
  for (const side of [lane.A, lane.B]) sh(`ip -n ${side.ns} addr del ${side.under6}/64 dev ${side.dev}`, { check: false });
}

/** Puts B back on its lane address after a pair-change case. */
function restoreAddress(lane) {
  const { B } = lane;
  const moved = B.under.replace(/\.(\d+)$/, (_, d) => `.${Number(d) + 100}`);
  sh(`ip -n ${B.ns} addr del ${moved}/24 dev ${B.dev}`, { check: false });
  sh(`ip -n ${B.ns} addr add ${B.under}/24 dev ${B.dev}`, { check: false });
}

/** Two kernel interfaces with ICE beside each; checks ping, transfer, reported mode, wg/tswg show, cleanup. */
async function icePair(lane, name, mode, expectMode, { extra = [], change = false, relayFirst = false, relayTransfer = false, cut = false, ipv6 = false } = {}) {
  const { A, B } = lane;
  const t0 = Date.now();
  if (relayFirst) block(lane);
  const ice = [`Signaling = ws://${HUB}:8080`, "Kernel = on", `PortShare = ${mode}`, ...extra];
  const pa = up(A, conf(A, B, { iface: ice, peer: [] }));
  const pb = up(B, conf(B, A, { iface: ice, peer: [] }));
  Object.assign(lane, { pa, pb });
  const detail = { lane: lane.n, mode, expectMode };
  // Each extra phase's verdict; the case passes only if all of them do.
  const phases = {};
  try {
    detail.pingOk = await waitPing(A.ns, B.tunnel, 180_000);
    detail.firstPingS = +((Date.now() - t0) / 1000).toFixed(1);
    if (!detail.pingOk) {
      if (process.env.TSWG_VM_DEBUG) {
        for (const ns of [A.ns, B.ns]) process.stdout.write(sh(`ip netns exec ${ns} sh -c 'wg show; iptables -t nat -L -v -n; nft list ruleset; ss -wan' 2>&1`, { check: false }));
      }
      throw new Error("no ping through the tunnel");
    }
    if (relayFirst) phases.relayToDirect = await relayToDirect(lane, pa, expectMode, detail, { relayTransfer });
    const x = await transfer(lane);
    Object.assign(detail, { transferOk: x.ok, mbps: x.mbps, transferMs: x.ms, transferError: x.error });
    // The counters first: an ICE restart rewrites the rules (and zeroes them) at any time.
    if (expectMode === "nftables") {
      detail.kernelPackets = nftCounters(A);
    } else if (expectMode === "iptables") {
      const n = (t, c) => sh(`ip netns exec ${A.ns} iptables -t ${t} -L ${c} -v -n -x`).split("\n").slice(2).filter((l) => l.trim() !== "").reduce((s, l) => s + Number(l.trim().split(/\s+/)[0]), 0);
      detail.kernelPackets = { natPre: n("nat", `TSWG-${A.name}-pre`), natPost: n("nat", `TSWG-${A.name}-post`) };
    }
    const show = tswgShow(A);
    const dump = sh(`ip netns exec ${A.ns} wg show ${A.name} dump`).trim().split("\n");
    const wgPeer = dump[1].split("\t");
    const share = /port share: (\S+)/.exec(show)?.[1] ?? null;
    detail.share = share;
    detail.endpoint = wgPeer[2];
    detail.showAgrees =
      show.includes(`listening port: ${dump[0].split("\t")[2]}`) && show.includes(`peer: ${wgPeer[0]}`) && show.includes(`endpoint: ${wgPeer[2]}`) && show.includes("device: kernel module");
    if (expectMode === "raw") {
      // Raw: ICE ran on the device's own port, so the device's endpoint is B's device port itself.
      detail.rawEndpointOk = wgPeer[2] === `${B.under}:51820`;
    }
    if (change) phases.pairChange = await pairChange(lane, pa, expectMode, detail);
    if (ipv6) phases.toIPv6 = await toIPv6(lane, expectMode, detail);
    if (cut) phases.directToRelay = await directToRelay(lane, expectMode, detail);
  } catch (e) {
    detail.error = e.message;
  }
  detail.exitA = await pa.stop();
  detail.exitB = await pb.stop();
  if (change) restoreAddress(lane);
  unblock(lane);
  if (ipv6) removeIPv6(lane);
  detail.phases = phases;
  const changeOk = Object.values(phases).every((v) => v === true);
  detail.leftovers = [...leftovers(A.ns, [A.name]), ...leftovers(B.ns, [B.name])];
  // nftables rewrites every packet both ways; with iptables only a flow's first packet meets the
  // nat rules (PREROUTING on the side that receives it first, POSTROUTING on the one that sends it).
  const kp = detail.kernelPackets;
  const kernelOk = kp === undefined || (expectMode === "iptables" ? kp.natPre + kp.natPost > 0 : Object.values(kp).every((v) => v > 0));
  const rawOk = expectMode !== "raw" || detail.rawEndpointOk === true;
  const ok = detail.pingOk && detail.transferOk && detail.share === expectMode && detail.showAgrees && kernelOk && rawOk && changeOk && detail.exitA === 0 && detail.exitB === 0 && detail.leftovers.length === 0;
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
  const { KernelWireGuard, setDeviceMessages } = await import(`${ROOT}/dist/kernel/wireguard-genl.js`);
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
    const request = { privateKey: randomBytes(32), listenPort: 51999, fwmark: 0x51, replacePeers: true, peers };
    // Where the time goes: building the messages in JavaScript, then the kernel taking them.
    const tb = process.hrtime.bigint();
    const messages = setDeviceMessages(0, name, request);
    detail.build1000Ms = +(Number(process.hrtime.bigint() - tb) / 1e6).toFixed(1);
    detail.messages = messages.length;
    detail.messageBytes = messages.reduce((n, m) => n + m.length, 0);
    const t0 = process.hrtime.bigint();
    wg.setSync(request);
    detail.set1000Ms = +(Number(process.hrtime.bigint() - t0) / 1e6).toFixed(1);
    // The same 1000 peers with `wg setconf` on a second interface, and once more with tswg on a
    // third (warm), in this run: on an emulated machine only the ratio means something.
    const b64 = (b) => Buffer.from(b).toString("base64");
    const confText = ["[Interface]", `PrivateKey = ${b64(randomBytes(32))}`, "ListenPort = 51998", "FwMark = 0x51", ""];
    for (const p of peers) {
      confText.push("[Peer]", `PublicKey = ${b64(p.publicKey)}`, `AllowedIPs = ${p.allowedIps.join(", ")}`, `Endpoint = ${p.endpoint}`);
      if (p.presharedKey !== undefined) confText.push(`PresharedKey = ${b64(p.presharedKey)}`);
      if (p.persistentKeepalive) confText.push(`PersistentKeepalive = ${p.persistentKeepalive}`);
      confText.push("");
    }
    writeFileSync(`${WORK}-wgcmp.conf`, confText.join("\n"), { mode: 0o600 });
    rtnl.createLink("wgcmp", "wireguard");
    const tw = process.hrtime.bigint();
    sh(`wg setconf wgcmp ${WORK}-wgcmp.conf`);
    detail.wgSetconf1000Ms = +(Number(process.hrtime.bigint() - tw) / 1e6).toFixed(1);
    rtnl.deleteLink("wgcmp");
    rtnl.createLink("wgbig2", "wireguard");
    const wg2 = new KernelWireGuard("wgbig2");
    const t2 = process.hrtime.bigint();
    wg2.setSync({ ...request, listenPort: 51997 });
    detail.set1000WarmMs = +(Number(process.hrtime.bigint() - t2) / 1e6).toFixed(1);
    wg2.close();
    rtnl.deleteLink("wgbig2");
    detail.ratioToWg = +(detail.set1000Ms / detail.wgSetconf1000Ms).toFixed(2);
    detail.ratioWarmToWg = +(detail.set1000WarmMs / detail.wgSetconf1000Ms).toFixed(2);
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
async function userspaceInterop(lane) {
  const { A, B } = lane;
  const psk = randomBytes(32).toString("base64");
  const aConf = conf(A, B, { iface: ["Kernel = off"], peer: [`Endpoint = ${B.under}:51820`, `PresharedKey = ${psk}`] });
  const bConf = conf(B, A, { iface: ["Kernel = on"], peer: [`Endpoint = ${A.under}:51820`, `PresharedKey = ${psk}`] });
  const detail = { lane: lane.n };
  let pa = up(A, aConf);
  const pb = up(B, bConf);
  try {
    detail.aInitiatesOk = await waitPing(A.ns, B.tunnel, 180_000);
    const x = await transfer(lane);
    Object.assign(detail, { transferOk: x.ok, mbps: x.mbps, transferError: x.error });
    detail.exitA1 = await pa.stop();
    // A new in-process device has no session: B's kernel must initiate this time.
    pa = up(A, aConf);
    await sleep(1500);
    detail.bInitiatesOk = await waitPing(B.ns, A.tunnel, 180_000);
    detail.pskSet = sh(`ip netns exec ${B.ns} wg show ${B.name} preshared-keys`).includes(psk);
    detail.handshakeSeen = !/\t0$/.test(sh(`ip netns exec ${B.ns} wg show ${B.name} latest-handshakes`).trim());
  } catch (e) {
    detail.error = e.message;
  }
  detail.exitA = await pa.stop();
  detail.exitB = await pb.stop();
  detail.leftovers = [...leftovers(A.ns, [A.name]), ...leftovers(B.ns, [B.name])];
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
  sh(`ip link add tkbr type bridge; ip addr add ${HUB}/24 dev tkbr; ip link set tkbr up; ip link set lo up`);
  mkdirSync(`${WORK}/turn`, { recursive: true });
  const signal = new Proc(["node", TSWG, "signal", "--listen", `${HUB}:8080`]);
  const { coturnConfig } = await import(`${ROOT}/dist/testbed/coturn.js`);
  writeFileSync(`${WORK}/turn/turnserver.conf`, coturnConfig({ ip: HUB, port: 3478, username: "tk", password: "tk-secret", realm: "tswg.test", dir: `${WORK}/turn`, relayPorts: { min: 49152, max: 49200 } }));
  const turn = new Proc(["turnserver", "-c", `${WORK}/turn/turnserver.conf`]);
  const turnServer = `ICEServers = turn:tk:tk-secret@${HUB}:3478`;
  const lane = makeLane(0);
  await lane.ready;
  // The direct proxy case is left to the host tests (beside wireguard-go): the relay case below
  // runs the proxy in the VM, and each case costs two Node start-ups under emulation.
  const plan = [
    ["auto", () => icePair(lane, "ice-auto-raw-pair-change", "auto", "raw", { change: true })],
    // Relay first (proxy), then direct: nftables, then an ICE restart that rewrites its table, then IPv6, then cut (relay).
    ["nftables", () => icePair(lane, "ice-nftables-relay-direct-restart-ipv6-relay", "nftables", "nftables", { extra: [turnServer], relayFirst: true, change: true, ipv6: true, cut: true })],
    // IPv4, then IPv6 (the rules move from iptables to ip6tables).
    ["iptables", () => icePair(lane, "ice-iptables-ipv4-to-ipv6", "iptables", "iptables", { ipv6: true })],
    // Raw asked for: a relay pair falls back to the proxy, the direct one goes raw, and back when it is cut.
    ["relay", () => icePair(lane, "ice-raw-relay-direct-relay", "raw", "raw", { extra: [turnServer], relayFirst: true, relayTransfer: true, cut: true })],
    ["proxy", () => icePair(lane, "ice-proxy", "proxy", "proxy")],
    ["userspace", () => userspaceInterop(lane)],
  ];
  const skipByDefault = new Set(["proxy"]);
  try {
    for (const [key, run] of plan) if (only.length === 0 ? !skipByDefault.has(key) : only.includes(key)) await run();
  } finally {
    for (const p of [lane.sender, lane.sink, turn, signal]) await p.stop(3000);
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
