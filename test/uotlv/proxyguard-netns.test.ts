/**
 * `tswg proxyguard client` and `tswg proxyguard server` as real processes between two network
 * namespaces whose link drops all UDP, carrying wireguard-go <-> wireguard-go: pings and TCP
 * transfers checked by SHA-256, a connection killed mid-transfer, a server restart, TLS through
 * nginx, and bad input against the running server.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { netnsUnavailableReason, sleep, TestBed, waitFor, type Host, type TrackedProcess } from "../helpers/netns.js";
import { newKeyPair, pingUntilReply, startNode, transfer, type KeyPair, type WgNode } from "../interop/nodes.js";
import { makeTestPki, type TestPki } from "./helpers.js";
import { blockUdp, MB, startNginx, startProxyClient, startProxyServer, udpGetsThrough } from "./netns-setup.js";

const skip = (await netnsUnavailableReason()) ?? (await missing(["wireguard-go", "wg", "nft", "openssl"]));
const BIG = Number(process.env.TSWG_INTEROP_BYTES ?? 100 * MB);

async function missing(cmds: string[]): Promise<string | null> {
  const { execFileSync } = await import("node:child_process");
  for (const c of cmds) {
    try {
      execFileSync("sh", ["-c", `command -v ${c}`], { stdio: "ignore" });
    } catch {
      return `${c} is not installed`;
    }
  }
  return null;
}
if (skip !== null) console.warn(`skipping the proxyguard namespace tests: ${skip}`);

const C_IP = "10.66.0.1";
const S_IP = "10.66.0.2";
const SERVER_URL = `http://${S_IP}:8080/proxyguard`;

describe.skipIf(skip !== null)("tswg proxyguard between namespaces without UDP", () => {
  let bed: TestBed;
  let hc: Host;
  let hs: Host;
  let keysC: KeyPair;
  let keysS: KeyPair;
  let wgC: WgNode;
  let wgS: WgNode;
  let server: TrackedProcess;
  let client: TrackedProcess;
  let pki: TestPki | undefined;
  const extra: Array<{ stop(): Promise<unknown> }> = [];

  beforeAll(async () => {
    bed = await TestBed.create("pg");
    hc = await bed.host("c");
    hs = await bed.host("s");
    await bed.link(hc, hs, { a: `${C_IP}/24`, b: `${S_IP}/24` });
    await blockUdp(hc, "to-s");
    await blockUdp(hs, "to-c");
    keysC = newKeyPair();
    keysS = newKeyPair();
    // Client side: WireGuard's peer is the local proxy client (UDP 127.0.0.1:51821); replies
    // come back to WireGuard's own port 51820 (--forward-port's default).
    wgC = await startNode({
      impl: "wireguard-go",
      host: hc,
      ifname: bed.ifname("pgc"),
      keys: keysC,
      listenPort: 51820,
      addresses: ["10.77.0.1/24"],
      peers: [{ publicKey: keysS.publicKey, allowedIps: ["10.77.0.2/32"], endpoint: "127.0.0.1:51821", persistentKeepalive: 25 }],
    });
    wgS = await startNode({
      impl: "wireguard-go",
      host: hs,
      ifname: bed.ifname("pgs"),
      keys: keysS,
      listenPort: 51820,
      addresses: ["10.77.0.2/24"],
      peers: [{ publicKey: keysC.publicKey, allowedIps: ["10.77.0.1/32"] }],
    });
    server = startProxyServer(hs, `${S_IP}:8080`, "127.0.0.1:51820");
    await server.waitForOutput("listening on");
    client = startProxyClient(hc, ["--to", SERVER_URL]);
    await client.waitForOutput("listening on 127.0.0.1:51821");
  });

  afterAll(async () => {
    for (const e of extra) await e.stop().catch(() => {});
    for (const n of [wgC, wgS]) await n?.stop().catch(() => {});
    await bed?.cleanup();
    pki?.remove();
  });

  it("UDP cannot cross between the namespaces", async () => {
    expect(await udpGetsThrough(hc, hs, S_IP)).toBe(false);
  });

  it("carries pings and a 100 MB transfer, checked by hash", async () => {
    await pingUntilReply(hc, "10.77.0.2", { timeoutMs: 20_000 });
    expect(client.stderr).toContain(`connected to ${SERVER_URL} (${S_IP}:8080)`);
    const r = await transfer(hc, hs, "10.77.0.2", BIG);
    expect(r.received).toBe(r.sent.replace("sent", "received"));
    expect(r.sent).toMatch(new RegExp(`^sent ${BIG} [0-9a-f]{64}$`));
    console.log(`proxyguard client/server: ${BIG / MB} MB in ${r.seconds.toFixed(1)} s`);
    // the server's WireGuard sees the client through the proxy's own UDP socket
    const dump = await wgS.peerDump();
    expect(dump.get(keysC.publicKey)!.endpoint).toMatch(/^127\.0\.0\.1:\d+$/);
  }, 120_000);

  it("resumes a transfer when the TCP connection is killed in the middle", async () => {
    const connectsBefore = client.stderr.split("connected to").length;
    const reset = async (): Promise<void> => {
      await sleep(500);
      // The server's host answers the client's next segment with a reset; the client's
      // kernel then resets the server's side when it next sends.
      await hs.exec(["nft", "-f", "-"], {
        input: `table inet tswgt_reset {
  chain in { type filter hook input priority 0; tcp dport 8080 reject with tcp reset; }
}
`,
      });
      try {
        await waitFor(() => /connection to .* ended/.test(client.stderr), { what: "the client to see the reset", timeoutMs: 10_000 });
      } finally {
        await hs.exec(["nft", "delete", "table", "inet", "tswgt_reset"]);
      }
    };
    const r = await transfer(hc, hs, "10.77.0.2", 60 * MB, { during: reset, timeoutMs: 90_000 });
    expect(r.received).toBe(r.sent.replace("sent", "received"));
    expect(client.stderr.split("connected to").length).toBeGreaterThan(connectsBefore);
  }, 120_000);

  it("comes back after the server restarts", async () => {
    await server.stop();
    await waitFor(() => /connection to .* ended/.test(client.stderr.split("connected to").at(-1)!), { what: "the client to lose the server", timeoutMs: 10_000 });
    await sleep(1000);
    server = startProxyServer(hs, `${S_IP}:8080`, "127.0.0.1:51820");
    await server.waitForOutput("listening on");
    await pingUntilReply(hc, "10.77.0.2", { timeoutMs: 30_000 });
    await waitFor(() => /connected, relaying/.test(server.stderr), { what: "the restarted server to relay", timeoutMs: 5000 });
  }, 60_000);

  it("answers plain HTTP and a WebSocket upgrade as specified, and keeps relaying", async () => {
    const ask = async (request: string): Promise<string> =>
      (
        await hc.exec(["node", "-e", `
          const s = require("net").connect(8080, "${S_IP}", () => s.write(${JSON.stringify(request)}));
          let out = ""; s.on("data", (d) => (out += d)); s.on("close", () => { console.log(out); process.exit(0); });
          setTimeout(() => { console.log(out + "\\n[still open]"); process.exit(0); }, 3000);
        `])
      ).stdout;
    const plain = await ask("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    expect(plain).toMatch(/^HTTP\/1\.1 426 Upgrade Required\r\n/);
    expect(plain).not.toContain("[still open]");
    const ws = await ask("GET /proxyguard HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
    expect(ws).toMatch(/^HTTP\/1\.1 426 [^]*UoTLV\/1/);
    const post = await ask("POST /proxyguard HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    expect(post).toMatch(/^HTTP\/1\.1 501 /);
    await pingUntilReply(hc, "10.77.0.2", { timeoutMs: 10_000 });
  }, 60_000);

  it("works through nginx as a TLS reverse proxy, trusting a custom CA", async () => {
    pki = makeTestPki({ dns: ["vpn.test"] });
    const nginx = await startNginx(hs, { listen: `${S_IP}:8443`, certFile: pki.certFile, keyFile: pki.keyFile, path: "/proxyguard", upstream: `http://${S_IP}:8080/` });
    extra.push(nginx);
    await client.stop();
    // vpn.test is in no DNS: --peer-ips gives its address, the name is still checked in the certificate.
    client = startProxyClient(hc, ["--to", "https://vpn.test:8443/proxyguard", "--peer-ips", S_IP, "--ca", pki.caFile]);
    await client.waitForOutput("listening on 127.0.0.1:51821");
    await pingUntilReply(hc, "10.77.0.2", { timeoutMs: 20_000 });
    expect(client.stderr).toContain(`connected to https://vpn.test:8443/proxyguard (${S_IP}:8443)`);
    const r = await transfer(hc, hs, "10.77.0.2", 20 * MB);
    expect(r.received).toBe(r.sent.replace("sent", "received"));
    // Without the CA the same server is refused.
    const untrusting = startProxyClient(hc, ["--to", "https://vpn.test:8443/proxyguard", "--peer-ips", S_IP, "--listen-port", "51899", "--forward-port", "51898"]);
    await untrusting.waitForOutput("listening on 127.0.0.1:51899");
    await hc.exec(["node", "-e", `require("dgram").createSocket("udp4").send("x", 51899, "127.0.0.1", (e) => process.exit(e ? 1 : 0))`]);
    await untrusting.waitForOutput(/cannot connect to https:\/\/vpn\.test:8443\/proxyguard: TLS handshake with [^:]+:8443: .*(certificate|issuer)/i, { timeoutMs: 15_000 });
    await untrusting.stop();
  }, 90_000);
});
