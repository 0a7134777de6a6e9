#!/usr/bin/env node
// `npm run demo`: a real WireGuard tunnel on this machine, built from an embedded default.
//
// Two network namespaces joined by a veth pair: "left" runs `tswg up` on a wg-quick file written
// from the template below, "right" runs Debian's wireguard-go configured with `wg`. The demo pings
// across the tunnel, prints `tswg show` and `wg show` for both ends, and removes everything again
// (also on Ctrl-C or failure). Needs root, /dev/net/tun, wireguard-go, wg and ip.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const tswgBin = join(repo, "bin/tswg.js");
const id = (process.pid % 100000).toString(36);
const nsL = `tswgd-${id}-left`;
const nsR = `tswgd-${id}-right`;
const ifL = `tswgdl${id}`;
const ifR = `tswgdr${id}`;
const dir = mkdtempSync(join(tmpdir(), "tswg-demo-"));
const children = [];

function run(argv, { input, quiet } = {}) {
  const r = spawnSync(argv[0], argv.slice(1), { input, encoding: "utf8" });
  if (r.status !== 0) {
    throw new Error(`${argv.join(" ")} failed${r.error ? `: ${r.error.message}` : ""}\n${r.stderr ?? ""}`);
  }
  if (!quiet && r.stdout) process.stdout.write(r.stdout);
  return r.stdout;
}
const inNs = (ns, argv, opts) => run(["ip", "netns", "exec", ns, ...argv], opts);
const say = (s) => console.log(`\n=== ${s}`);

function cleanup() {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGTERM");
  for (const ns of [nsL, nsR]) spawnSync("ip", ["netns", "del", ns]);
  for (const i of [ifL, ifR]) rmSync(`/var/run/wireguard/${i}.sock`, { force: true });
  rmSync(dir, { recursive: true, force: true });
}

function preflight() {
  const problems = [];
  if (process.getuid?.() !== 0) problems.push("run as root (network namespaces and TUN devices need it)");
  if (!existsSync("/dev/net/tun")) problems.push("/dev/net/tun is missing");
  for (const cmd of ["ip", "wg", "wireguard-go", "ping"]) {
    if (spawnSync("sh", ["-c", `command -v ${cmd}`]).status !== 0) problems.push(`${cmd} is not installed (see README: scripts/setup.sh)`);
  }
  if (!existsSync(join(repo, "dist/cli/main.js"))) problems.push("tswg is not built: run `npm run build`");
  if (problems.length > 0) {
    console.error("demo: cannot run:\n  - " + problems.join("\n  - "));
    process.exit(1);
  }
}

/** Echoes a child's output stream line by line, each line prefixed (chunks need not end at a newline). */
function echoLines(stream, prefix) {
  let partial = "";
  stream.on("data", (d) => {
    const lines = (partial + d.toString()).split("\n");
    partial = lines.pop();
    for (const line of lines) process.stdout.write(`${prefix}${line}\n`);
  });
  stream.on("end", () => {
    if (partial !== "") process.stdout.write(`${prefix}${partial}\n`);
  });
}

function waitForLine(child, text, ms) {
  return new Promise((resolve, reject) => {
    let seen = "";
    const timer = setTimeout(() => reject(new Error(`timed out waiting for "${text}"; output so far:\n${seen}`)), ms);
    const onData = (d) => {
      seen += d.toString();
      if (seen.includes(text)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stderr.on("data", onData);
    child.stdout.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`tswg exited (${code}) before "${text}":\n${seen}`));
    });
  });
}

async function main() {
  preflight();
  const key = () => run(["node", tswgBin, "genkey"], { quiet: true }).trim();
  const pub = (k) => run(["node", tswgBin, "pubkey"], { input: k + "\n", quiet: true }).trim();
  const privL = key();
  const privR = key();

  say("two hosts: network namespaces joined by a veth pair (192.168.240.1 <-> 192.168.240.2)");
  run(["ip", "netns", "add", nsL]);
  run(["ip", "netns", "add", nsR]);
  run(["ip", "link", "add", "veth-l", "netns", nsL, "type", "veth", "peer", "name", "veth-r", "netns", nsR]);
  inNs(nsL, ["ip", "addr", "add", "192.168.240.1/24", "dev", "veth-l"]);
  inNs(nsR, ["ip", "addr", "add", "192.168.240.2/24", "dev", "veth-r"]);
  for (const [ns, dev] of [[nsL, "veth-l"], [nsR, "veth-r"]]) {
    inNs(ns, ["ip", "link", "set", "lo", "up"]);
    inNs(ns, ["ip", "link", "set", dev, "up"]);
  }

  // The embedded default: a wg-quick file, exactly what an operator would write.
  const leftConf = join(dir, `${ifL}.conf`);
  writeFileSync(
    leftConf,
    `[Interface]
PrivateKey = ${privL}
Address = 10.240.0.1/24
ListenPort = 51820

[Peer]
PublicKey = ${pub(privR)}
AllowedIPs = 10.240.0.2/32
Endpoint = 192.168.240.2:51820
PersistentKeepalive = 25
`,
    { mode: 0o600 },
  );
  const rightConf = join(dir, `${ifR}.conf`);
  writeFileSync(
    rightConf,
    `[Interface]
PrivateKey = ${privR}
ListenPort = 51820

[Peer]
PublicKey = ${pub(privL)}
AllowedIPs = 10.240.0.1/32
`,
    { mode: 0o600 },
  );

  say(`right: wireguard-go ${ifR}, configured with wg setconf`);
  const wgGo = spawn("ip", ["netns", "exec", nsR, "wireguard-go", "-f", ifR], { stdio: ["ignore", "ignore", "pipe"] });
  children.push(wgGo);
  for (let i = 0; i < 100 && !existsSync(`/var/run/wireguard/${ifR}.sock`); i++) await new Promise((r) => setTimeout(r, 50));
  inNs(nsR, ["wg", "setconf", ifR, rightConf]);
  inNs(nsR, ["ip", "addr", "add", "10.240.0.2/24", "dev", ifR]);
  inNs(nsR, ["ip", "link", "set", "mtu", "1420", "up", "dev", ifR]);

  say(`left: tswg up ${leftConf}`);
  const tswg = spawn("ip", ["netns", "exec", nsL, process.execPath, tswgBin, "up", leftConf], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, TSWG_RUN_DIR: dir },
  });
  children.push(tswg);
  echoLines(tswg.stdout, "  [tswg] ");
  echoLines(tswg.stderr, "  [tswg] ");
  await waitForLine(tswg, "is up", 20_000);

  say("ping through the tunnel, left (tswg) -> right (wireguard-go)");
  inNs(nsL, ["ping", "-c", "3", "-i", "0.3", "10.240.0.2"]);
  say("and back, right -> left");
  inNs(nsR, ["ping", "-c", "3", "-i", "0.3", "10.240.0.1"]);

  say("tswg show (left)");
  inNs(nsL, ["node", tswgBin, "show", ifL]);
  say("wg show (left: the standard tool against tswg)");
  inNs(nsL, ["wg", "show", ifL]);
  say("wg show (right: wireguard-go)");
  inNs(nsR, ["wg", "show", ifR]);

  say("tswg down (SIGTERM), then removing the namespaces");
  tswg.kill("SIGTERM");
  await new Promise((r) => (tswg.exitCode !== null ? r() : tswg.once("exit", r)));
  console.log("\ndemo: the tunnel worked.");
}

process.on("SIGINT", () => {
  cleanup();
  process.exit(130);
});
main()
  .then(() => {
    cleanup();
  })
  .catch((err) => {
    console.error(`\ndemo failed: ${err.message}`);
    cleanup();
    process.exitCode = 1;
  });
