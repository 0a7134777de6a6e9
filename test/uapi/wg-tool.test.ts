/**
 * The real `wg` tool (wireguard-tools) against a UapiServer backed by an in-memory device.
 * Sockets go to the standard /var/run/wireguard under a name unique to this process.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, promises as fs } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { UapiServer } from "../../src/uapi/server.js";
import { FakeDevice, publicKeyOf } from "./fake-device.js";

const WG = ["/usr/bin/wg", "/usr/local/bin/wg"].find((p) => existsSync(p));
const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
const IFACE = `tswgt${process.pid % 100000}`;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function wg(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(WG!, args, { timeout: 10_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === "number" ? err.code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}

async function wgOk(...args: string[]): Promise<string> {
  const r = await wg(...args);
  if (r.code !== 0) throw new Error(`wg ${args.join(" ")} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

const b64 = (k: Uint8Array): string => Buffer.from(k).toString("base64");
function privateKey(): Uint8Array {
  const k = randomBytes(32);
  k[0]! &= 248;
  k[31]! &= 127;
  k[31]! |= 64;
  return new Uint8Array(k);
}

describe.skipIf(WG === undefined || !isRoot)("the wg tool against UapiServer", () => {
  let server: UapiServer;
  let device: FakeDevice;
  let scratch: string;
  const devKey = privateKey();
  const peerA = publicKeyOf(privateKey());
  const peerB = publicKeyOf(privateKey());
  const peerC = publicKeyOf(privateKey());
  const psk = new Uint8Array(randomBytes(32));

  beforeAll(async () => {
    scratch = await fs.mkdtemp(join(tmpdir(), "tswgt-wg-"));
    await fs.writeFile(join(scratch, "private"), b64(devKey) + "\n", { mode: 0o600 });
    await fs.writeFile(join(scratch, "psk"), b64(psk) + "\n", { mode: 0o600 });
  });

  afterAll(async () => {
    await server?.close();
    await fs.rm(scratch, { recursive: true, force: true });
  });

  beforeEach(async () => {
    await server?.close();
    server = new UapiServer();
    device = new FakeDevice();
    await server.listen(IFACE, device);
  });

  /** The state most tests start from, set up with one `wg set` call. */
  async function configure(): Promise<void> {
    await wgOk(
      "set", IFACE,
      "private-key", join(scratch, "private"),
      "listen-port", "51999",
      "fwmark", "0x10",
      "peer", b64(peerA),
      "allowed-ips", "10.9.0.0/24,fd00:9::/64",
      "endpoint", "127.0.0.1:1234",
      "persistent-keepalive", "25",
      "preshared-key", join(scratch, "psk"),
    );
  }

  it("lists the interface", async () => {
    expect((await wgOk("show", "interfaces")).trim().split(/\s+/)).toContain(IFACE);
  });

  it("applies wg set to the device", async () => {
    await configure();
    expect(device.privateKey).toEqual(devKey);
    expect(device.listenPort).toBe(51999);
    expect(device.fwmark).toBe(16);
    expect([...device.peers.values()]).toEqual([
      {
        publicKey: peerA,
        presharedKey: psk,
        endpoint: "127.0.0.1:1234",
        persistentKeepalive: 25,
        allowedIps: ["10.9.0.0/24", "fd00:9::/64"],
        lastHandshakeMs: 0,
        txBytes: 0,
        rxBytes: 0,
        protocolVersion: 1,
      },
    ]);
    // wg replaces the allowed IPs of a peer it names with allowed-ips.
    expect(device.requests.at(-1)!.peers[0]!.replaceAllowedIps).toBe(true);
  });

  it("prints wg show", async () => {
    await configure();
    const peer = device.peers.get(Buffer.from(peerA).toString("hex"))!;
    peer.lastHandshakeMs = Date.now() - 5000;
    peer.rxBytes = 2048;
    peer.txBytes = 1024n;
    const out = await wgOk("show", IFACE);
    expect(out).toContain(`interface: ${IFACE}\n`);
    expect(out).toContain(`public key: ${b64(publicKeyOf(devKey))}\n`);
    expect(out).toContain("private key: (hidden)\n");
    expect(out).toContain("listening port: 51999\n");
    expect(out).toContain("fwmark: 0x10\n");
    expect(out).toContain(`peer: ${b64(peerA)}\n`);
    expect(out).toContain("preshared key: (hidden)\n");
    expect(out).toContain("endpoint: 127.0.0.1:1234\n");
    expect(out).toContain("allowed ips: 10.9.0.0/24, fd00:9::/64\n");
    expect(out).toMatch(/latest handshake: \d+ seconds ago\n/);
    expect(out).toContain("transfer: 2.00 KiB received, 1.00 KiB sent\n");
    expect(out).toContain("persistent keepalive: every 25 seconds\n");
  });

  it("prints wg show dump", async () => {
    await configure();
    const peer = device.peers.get(Buffer.from(peerA).toString("hex"))!;
    peer.lastHandshakeMs = 1_700_000_000_250;
    peer.rxBytes = 123;
    peer.txBytes = 2n ** 40n;
    const out = await wgOk("show", IFACE, "dump");
    expect(out).toBe(
      `${b64(devKey)}\t${b64(publicKeyOf(devKey))}\t51999\t0x10\n` +
        `${b64(peerA)}\t${b64(psk)}\t127.0.0.1:1234\t10.9.0.0/24,fd00:9::/64\t1700000000\t123\t${2 ** 40}\t25\n`,
    );
  });

  it("prints single fields", async () => {
    await configure();
    expect(await wgOk("show", IFACE, "listen-port")).toBe("51999\n");
    expect(await wgOk("show", IFACE, "fwmark")).toBe("0x10\n");
    expect(await wgOk("show", IFACE, "private-key")).toBe(b64(devKey) + "\n");
    expect(await wgOk("show", IFACE, "peers")).toBe(b64(peerA) + "\n");
    expect(await wgOk("show", IFACE, "allowed-ips")).toBe(`${b64(peerA)}\t10.9.0.0/24 fd00:9::/64\n`);
    expect(await wgOk("show", IFACE, "latest-handshakes")).toBe(`${b64(peerA)}\t0\n`);
  });

  it("prints wg showconf", async () => {
    await configure();
    expect(await wgOk("showconf", IFACE)).toBe(
      "[Interface]\nListenPort = 51999\nFwMark = 0x10\n" +
        `PrivateKey = ${b64(devKey)}\n\n` +
        `[Peer]\nPublicKey = ${b64(peerA)}\nPresharedKey = ${b64(psk)}\n` +
        "AllowedIPs = 10.9.0.0/24, fd00:9::/64\nEndpoint = 127.0.0.1:1234\nPersistentKeepalive = 25\n",
    );
  });

  it("removes a peer", async () => {
    await configure();
    await wgOk("set", IFACE, "peer", b64(peerB), "allowed-ips", "10.8.0.1/32");
    expect(device.peers.size).toBe(2);
    await wgOk("set", IFACE, "peer", b64(peerA), "remove");
    expect([...device.peers.values()].map((p) => b64(p.publicKey))).toEqual([b64(peerB)]);
    expect(await wgOk("show", IFACE, "peers")).toBe(b64(peerB) + "\n");
  });

  it("clears the private key and the pre-shared key", async () => {
    await configure();
    const empty = join(scratch, "empty");
    await fs.writeFile(empty, "");
    await wgOk("set", IFACE, "private-key", empty, "peer", b64(peerA), "preshared-key", empty);
    expect(device.privateKey).toBeUndefined();
    expect([...device.peers.values()][0]!.presharedKey).toBeUndefined();
    expect(await wgOk("show", IFACE, "private-key")).toBe("(none)\n");
  });

  it("syncs a configuration file with wg syncconf", async () => {
    await configure();
    await wgOk("set", IFACE, "peer", b64(peerB), "allowed-ips", "10.8.0.1/32");
    const conf = join(scratch, "sync.conf");
    await fs.writeFile(
      conf,
      `[Interface]\nPrivateKey = ${b64(devKey)}\nListenPort = 52000\n\n` +
        `[Peer]\nPublicKey = ${b64(peerB)}\nAllowedIPs = 10.8.0.0/24\n\n` +
        `[Peer]\nPublicKey = ${b64(peerC)}\nAllowedIPs = 10.7.0.0/16, fd00:7::/48\nEndpoint = [::1]:5555\n`,
    );
    await wgOk("syncconf", IFACE, conf);
    const last = device.requests.at(-1)!;
    // syncconf keeps existing peers' sessions: no replace_peers, explicit removal instead.
    expect(last.replacePeers).toBe(false);
    expect(last.peers.find((p) => b64(p.publicKey) === b64(peerA))?.remove).toBe(true);
    expect(device.listenPort).toBe(52000);
    expect(device.fwmark).toBe(0);
    expect([...device.peers.values()].map((p) => [b64(p.publicKey), p.allowedIps, p.endpoint])).toEqual([
      [b64(peerB), ["10.8.0.0/24"], undefined],
      [b64(peerC), ["10.7.0.0/16", "fd00:7::/48"], "[::1]:5555"],
    ]);
  });

  it("replaces everything with wg setconf", async () => {
    await configure();
    const conf = join(scratch, "set.conf");
    await fs.writeFile(conf, `[Interface]\nPrivateKey = ${b64(devKey)}\n\n[Peer]\nPublicKey = ${b64(peerC)}\nAllowedIPs = 0.0.0.0/0\n`);
    await wgOk("setconf", IFACE, conf);
    expect(device.requests.at(-1)!.replacePeers).toBe(true);
    expect(device.listenPort).toBe(0);
    expect([...device.peers.values()].map((p) => [b64(p.publicKey), p.allowedIps])).toEqual([[b64(peerC), ["0.0.0.0/0"]]]);
  });

  it("reports the device's errors", async () => {
    device.busyPorts.add(4000);
    const r = await wg("set", IFACE, "listen-port", "4000");
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("Address already in use");
    expect(device.listenPort).toBe(0);
  });
});
