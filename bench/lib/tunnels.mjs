// Starting one end of a tunnel inside a bench host: wireguard-go configured with `wg`, or a
// `tswg up` process on a generated wg-quick file (native or portable data path).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { run } from "./netns.mjs";

export const REPO = resolve(import.meta.dirname, "../..");
const TSWG = join(REPO, "bin/tswg.js");

export async function keyPair() {
  const priv = (await run(["wg", "genkey"])).stdout.trim();
  const pub = (await run(["sh", "-c", `echo ${priv} | wg pubkey`])).stdout.trim();
  return { priv, pub };
}

/**
 * Starts one end. `impl` is "wireguard-go", "tswg-native" or "tswg-portable". With `ice`
 * ({ signaling, servers?, types? }) a tswg end reaches its peer through ICE instead of
 * `peerEndpoint`. `bin` runs another build of tswg (a comparison). Returns { pid, proc, stop() }.
 */
export async function startEnd({ impl, host, ifname, keys, peerPub, listenPort, address, peerAllowed, peerEndpoint, mtu = 1420, ice, bin = TSWG }) {
  const dir = mkdtempSync(join(tmpdir(), "tswgt-bench-"));
  const conf = join(dir, `${ifname}.conf`);
  const lines = ["[Interface]", `PrivateKey = ${keys.priv}`, `ListenPort = ${listenPort}`];
  if (impl !== "wireguard-go") lines.push(`Address = ${address}`, `MTU = ${mtu}`);
  if (ice) {
    lines.push(`Signaling = ${ice.signaling}`);
    if (ice.servers) lines.push(`ICEServers = ${ice.servers}`);
    if (ice.types) lines.push(`ICECandidateTypes = ${ice.types}`);
    peerEndpoint = undefined;
  }
  lines.push("", "[Peer]", `PublicKey = ${peerPub}`, `AllowedIPs = ${peerAllowed}`);
  if (peerEndpoint) lines.push(`Endpoint = ${peerEndpoint}`);
  writeFileSync(conf, lines.join("\n") + "\n", { mode: 0o600 });
  let proc;
  if (impl === "wireguard-go") {
    proc = host.spawn(["wireguard-go", "-f", ifname], { LOG_LEVEL: "error" });
    const deadline = Date.now() + 10_000;
    while ((await host.exec(["wg", "show", ifname], { check: false })).code !== 0) {
      if (Date.now() > deadline) throw new Error(`wireguard-go ${ifname} did not come up:\n${proc.output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    await host.exec(["wg", "setconf", ifname, conf]);
    await host.ip(["addr", "add", address, "dev", ifname]);
    await host.ip(["link", "set", "mtu", String(mtu), "up", "dev", ifname]);
  } else {
    const env = { TSWG_RUN_DIR: dir, TSWG_DATAPATH: impl === "tswg-portable" ? "portable" : "native" };
    proc = host.spawn(["node", bin, "up", conf], env);
    await proc.waitFor(`interface ${ifname} is up`, 20_000);
  }
  return {
    impl,
    pid: proc.pid,
    proc,
    async stop() {
      await proc.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
