/**
 * WireGuard endpoints for interop tests: a tswg process (`tswg up` on a generated config) or a
 * wireguard-go process configured with `wg`, each inside a test-bed host. Both expose the same
 * small surface so scenarios run unchanged for every pairing.
 */
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { defaultBackend } from "../../src/crypto/index.js";
import { keyToBase64 } from "../../src/crypto/keys.js";
import type { Host, Link, TestBed, TrackedProcess } from "../helpers/netns.js";
import { waitFor } from "../helpers/netns.js";

export type Impl = "tswg" | "wireguard-go";

export const REPO = resolve(import.meta.dirname, "../..");
export const TSWG_BIN = join(REPO, "bin/tswg.js");
export const TRANSFER = join(REPO, "test/interop/fixtures/transfer.mjs");

export interface KeyPair {
  privateKey: string;
  publicKey: string;
}

export function newKeyPair(): KeyPair {
  const b = defaultBackend();
  const priv = b.generatePrivateKey();
  return { privateKey: keyToBase64(priv), publicKey: keyToBase64(b.publicKey(priv)) };
}

export function newPsk(): string {
  return keyToBase64(defaultBackend().generatePrivateKey());
}

export interface PeerSpec {
  publicKey: string;
  presharedKey?: string;
  endpoint?: string;
  allowedIps: string[];
  persistentKeepalive?: number;
}

export interface NodeSpec {
  impl: Impl;
  host: Host;
  ifname: string;
  keys: KeyPair;
  listenPort: number;
  /** Tunnel addresses with prefix, e.g. ["10.77.0.1/24", "fd77::1/64"]. */
  addresses: string[];
  peers: PeerSpec[];
  /** Extra environment for the tswg process (e.g. TSWG_CRYPTO). */
  env?: Record<string, string>;
  /** Extra [Interface] lines for tswg (e.g. "MSSClamp = auto"). */
  interfaceLines?: string[];
}

export interface WgNode {
  spec: NodeSpec;
  proc: TrackedProcess;
  /** `wg show <if> dump` fields of each peer, keyed by public key. */
  peerDump(): Promise<Map<string, { endpoint: string; latestHandshake: number; rx: number; tx: number }>>;
  wg(args: string[]): Promise<string>;
  stop(): Promise<void>;
}

function quickConfig(s: NodeSpec): string {
  const lines = ["[Interface]", `PrivateKey = ${s.keys.privateKey}`, `ListenPort = ${s.listenPort}`];
  if (s.impl === "tswg") lines.push(`Address = ${s.addresses.join(", ")}`, "MTU = 1420", ...(s.interfaceLines ?? []));
  for (const p of s.peers) {
    lines.push("", "[Peer]", `PublicKey = ${p.publicKey}`, `AllowedIPs = ${p.allowedIps.join(", ")}`);
    if (p.presharedKey) lines.push(`PresharedKey = ${p.presharedKey}`);
    if (p.endpoint) lines.push(`Endpoint = ${p.endpoint}`);
    if (p.persistentKeepalive) lines.push(`PersistentKeepalive = ${p.persistentKeepalive}`);
  }
  return lines.join("\n") + "\n";
}

export async function startNode(s: NodeSpec): Promise<WgNode> {
  const dir = mkdtempSync(join(tmpdir(), "tswgt-conf-"));
  const confPath = join(dir, `${s.ifname}.conf`);
  writeFileSync(confPath, quickConfig(s), { mode: 0o600 });
  const wg = async (args: string[]) => (await s.host.exec(["wg", ...args])).stdout;
  let proc: TrackedProcess;
  if (s.impl === "tswg") {
    proc = s.host.spawn(["node", TSWG_BIN, "up", confPath, "--log-level", "debug"], {
      env: { TSWG_RUN_DIR: dir, ...(s.env ?? {}) },
    });
    await proc.waitForOutput(`interface ${s.ifname} is up`, { timeoutMs: 20_000 });
  } else {
    proc = s.host.spawn(["wireguard-go", "-f", s.ifname], { env: { LOG_LEVEL: "error" } });
    await waitFor(async () => (await s.host.exec(["wg", "show", s.ifname], { check: false })).code === 0, {
      timeoutMs: 10_000,
      what: `wireguard-go ${s.ifname} to answer on its UAPI socket`,
    });
    await wg(["setconf", s.ifname, confPath]);
    for (const a of s.addresses) await s.host.ip([a.includes(":") ? "-6" : "-4", "addr", "add", a, "dev", s.ifname, ...(a.includes(":") ? ["nodad"] : [])]);
    await s.host.ip(["link", "set", "mtu", "1420", "up", "dev", s.ifname]);
    for (const p of s.peers) {
      for (const a of p.allowedIps) {
        await s.host.ip([a.includes(":") ? "-6" : "-4", "route", "replace", a, "dev", s.ifname]);
      }
    }
  }
  return {
    spec: s,
    proc,
    wg,
    async peerDump() {
      const out = await wg(["show", s.ifname, "dump"]);
      const m = new Map<string, { endpoint: string; latestHandshake: number; rx: number; tx: number }>();
      for (const line of out.trim().split("\n").slice(1)) {
        const f = line.split("\t");
        m.set(f[0]!, { endpoint: f[2]!, latestHandshake: Number(f[4]), rx: Number(f[5]), tx: Number(f[6]) });
      }
      return m;
    },
    async stop() {
      await proc.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Pings `dst` from `host` until one reply arrives or `timeoutMs` passes; returns the ping output. */
export async function pingUntilReply(host: Host, dst: string, opts: { timeoutMs?: number; src?: string } = {}): Promise<void> {
  const argv = ["ping", "-c", "1", "-W", "1", ...(opts.src ? ["-I", opts.src] : []), dst];
  await waitFor(async () => (await host.exec(argv, { check: false })).code === 0, {
    timeoutMs: opts.timeoutMs ?? 15_000,
    what: `${host.label} to get a ping reply from ${dst}`,
  });
}

/** Moves `bytes` over TCP from `from` to `to` (listening on `toIp`) and returns both hashes. */
export async function transfer(
  from: Host,
  to: Host,
  toIp: string,
  bytes: number,
  opts: { port?: number; timeoutMs?: number; during?: () => Promise<void>; mbps?: number } = {},
): Promise<{ sent: string; received: string; seconds: number }> {
  const port = opts.port ?? 5201;
  const server = to.spawn(["node", TRANSFER, "serve", toIp, String(port)]);
  await server.waitForOutput("listening", { timeoutMs: 10_000 });
  const t0 = performance.now();
  const client = from.spawn(["node", TRANSFER, "send", toIp, String(port), String(bytes), ...(opts.mbps ? [String(opts.mbps)] : [])]);
  if (opts.during) await opts.during();
  const sent = await client.waitForOutput(/sent \d+ [0-9a-f]{64}|error .*/, { timeoutMs: opts.timeoutMs ?? 120_000 });
  const received = await server.waitForOutput(/received \d+ [0-9a-f]{64}|error .*/, { timeoutMs: 30_000 });
  const seconds = (performance.now() - t0) / 1000;
  await client.exited;
  await server.exited;
  return { sent: sent.trim(), received: received.trim(), seconds };
}

export interface SimplePair {
  a: Host;
  b: Host;
  link: Link;
  keysA: KeyPair;
  keysB: KeyPair;
  /** tswg on host a (10.77.0.1), with B's endpoint. */
  na: WgNode;
  /** `peerImpl` on host b (10.77.0.2), without an endpoint: it learns A's from the handshake. */
  nb: WgNode;
}

/**
 * The common two-host set-up: hosts a (192.168.77.1) and b (192.168.77.2) on one veth, tswg on a,
 * `peerImpl` on b, and a first ping through the tunnel. Nodes are pushed to `nodes` for cleanup.
 */
export async function startSimplePair(bed: TestBed, peerImpl: Impl, nodes: WgNode[]): Promise<SimplePair> {
  const a = await bed.host("a");
  const b = await bed.host("b");
  const link = await bed.link(a, b, { a: "192.168.77.1/24", b: "192.168.77.2/24" });
  const keysA = newKeyPair();
  const keysB = newKeyPair();
  const na = await startNode({
    impl: "tswg",
    host: a,
    ifname: bed.ifname("a"),
    keys: keysA,
    listenPort: 51820,
    addresses: ["10.77.0.1/24"],
    peers: [{ publicKey: keysB.publicKey, allowedIps: ["10.77.0.2/32"], endpoint: "192.168.77.2:51821" }],
  });
  nodes.push(na);
  const nb = await startNode({
    impl: peerImpl,
    host: b,
    ifname: bed.ifname("b"),
    keys: keysB,
    listenPort: 51821,
    addresses: ["10.77.0.2/24"],
    peers: [{ publicKey: keysA.publicKey, allowedIps: ["10.77.0.1/32"] }],
  });
  nodes.push(nb);
  await pingUntilReply(a, "10.77.0.2");
  return { a, b, link, keysA, keysB, na, nb };
}
