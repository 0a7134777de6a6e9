/**
 * The in-process TCP Bind as real `tswg up` processes between two network namespaces whose
 * link drops all UDP: a tswg peer with `Endpoint = http://...` against the standalone server
 * and wireguard-go, and a tswg server with `TCPListen` behind nginx (TLS) against a tswg peer
 * with `Endpoint = https://...`. Pings and TCP transfers checked by SHA-256.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { netnsUnavailableReason, sleep, TestBed, type Host, type TrackedProcess } from "../helpers/netns.js";
import { newKeyPair, pingUntilReply, startNode, transfer, type KeyPair, type WgNode } from "../interop/nodes.js";
import { makeTestPki, type TestPki } from "./helpers.js";
import { blockUdp, MB, startNginx, startProxyServer, startTswg, udpGetsThrough } from "./netns-setup.js";

const skip = await netnsUnavailableReason();
const nginxMissing = await (async () => {
  const { execFileSync } = await import("node:child_process");
  try {
    execFileSync("sh", ["-c", "command -v nginx && command -v wireguard-go && command -v openssl"], { stdio: "ignore" });
    return null;
  } catch {
    return "nginx, wireguard-go or openssl is not installed";
  }
})();
const why = skip ?? nginxMissing;
if (why !== null) console.warn(`skipping the TCP Bind namespace tests: ${why}`);

const C_IP = "10.66.1.1";
const S_IP = "10.66.1.2";

describe.skipIf(why !== null)("the TCP Bind in tswg processes, without UDP between them", () => {
  let bed: TestBed;
  let hc: Host;
  let hs: Host;
  let keysC: KeyPair;
  let keysS: KeyPair;
  let wgS: WgNode;
  let server: TrackedProcess;
  let pki: TestPki | undefined;
  const stops: Array<{ stop(): Promise<unknown> }> = [];

  beforeAll(async () => {
    bed = await TestBed.create("tcpbind");
    hc = await bed.host("c");
    hs = await bed.host("s");
    await bed.link(hc, hs, { a: `${C_IP}/24`, b: `${S_IP}/24` });
    await blockUdp(hc, "to-s");
    await blockUdp(hs, "to-c");
    keysC = newKeyPair();
    keysS = newKeyPair();
  });

  afterAll(async () => {
    for (const s of stops.reverse()) await s.stop().catch(() => {});
    await bed?.cleanup();
    pki?.remove();
  });

  it("UDP cannot cross between the namespaces", async () => {
    expect(await udpGetsThrough(hc, hs, S_IP)).toBe(false);
  });

  it("a tswg peer with a URL endpoint reaches wireguard-go through the standalone server", async () => {
    wgS = await startNode({
      impl: "wireguard-go",
      host: hs,
      ifname: bed.ifname("tbs"),
      keys: keysS,
      listenPort: 51820,
      addresses: ["10.78.0.2/24"],
      peers: [{ publicKey: keysC.publicKey, allowedIps: ["10.78.0.1/32"] }],
    });
    stops.push(wgS);
    server = startProxyServer(hs, `${S_IP}:8080`, "127.0.0.1:51820");
    await server.waitForOutput("listening on");
    const ifc = bed.ifname("tbc");
    const tswg = await startTswg(
      hc,
      ifc,
      `[Interface]
PrivateKey = ${keysC.privateKey}
Address = 10.78.0.1/24
MTU = 1420

[Peer]
PublicKey = ${keysS.publicKey}
AllowedIPs = 10.78.0.2/32
Endpoint = http://${S_IP}:8080/proxyguard
PersistentKeepalive = 25
`,
    );
    stops.push(tswg);
    await pingUntilReply(hc, "10.78.0.2", { timeoutMs: 20_000 });
    const r = await transfer(hc, hs, "10.78.0.2", 30 * MB);
    expect(r.received).toBe(r.sent.replace("sent", "received"));
    console.log(`tswg TCP Bind -> proxyguard server -> wireguard-go: 30 MB in ${r.seconds.toFixed(1)} s`);
    // The Bind itself connected: there is no proxy process on the client's side.
    expect(tswg.proc.stderr).toContain(`connected to http://${S_IP}:8080/proxyguard (${S_IP}:8080)`);

    // The server goes away and comes back: the Bind reconnects by itself.
    await server.stop();
    await sleep(500);
    server = startProxyServer(hs, `${S_IP}:8080`, "127.0.0.1:51820");
    await server.waitForOutput("listening on");
    await pingUntilReply(hc, "10.78.0.2", { timeoutMs: 30_000 });
    expect(tswg.proc.stderr).toMatch(/connection to http:\/\/10\.66\.1\.2:8080\/proxyguard ended/);
  }, 120_000);

  it("a tswg server with TCPListen behind nginx (TLS) serves a tswg peer with an https URL", async () => {
    pki = makeTestPki({ ips: [S_IP] });
    const keysA = newKeyPair();
    const keysB = newKeyPair();
    const ifs = bed.ifname("tls");
    const srv = await startTswg(
      hs,
      ifs,
      `[Interface]
PrivateKey = ${keysB.privateKey}
Address = 10.79.0.2/24
ListenPort = 51830
TCPListen = 127.0.0.1:9000
MTU = 1420

[Peer]
PublicKey = ${keysA.publicKey}
AllowedIPs = 10.79.0.1/32
`,
    );
    stops.push(srv);
    expect(srv.proc.stderr).toContain("accepting UoTLV/1 on TCP 127.0.0.1:9000");
    const nginx = await startNginx(hs, { listen: `${S_IP}:8443`, certFile: pki.certFile, keyFile: pki.keyFile, path: "/proxyguard", upstream: "http://127.0.0.1:9000/" });
    stops.push(nginx);
    const cli = await startTswg(
      hc,
      bed.ifname("tlc"),
      `[Interface]
PrivateKey = ${keysA.privateKey}
Address = 10.79.0.1/24
MTU = 1420

[Peer]
PublicKey = ${keysB.publicKey}
AllowedIPs = 10.79.0.2/32
Endpoint = https://${S_IP}:8443/proxyguard
PersistentKeepalive = 25
`,
      { SSL_CERT_FILE: pki.caFile },
    );
    stops.push(cli);
    await pingUntilReply(hc, "10.79.0.2", { timeoutMs: 20_000 });
    // Data from the server side: replies go back over the accepted connection.
    const r = await transfer(hs, hc, "10.79.0.1", 20 * MB);
    expect(r.received).toBe(r.sent.replace("sent", "received"));
    // `wg` reads the server's view: the peer's endpoint is nginx's connection to it.
    const dump = (await hs.exec(["wg", "show", ifs, "endpoints"])).stdout;
    expect(dump).toMatch(new RegExp(`${keysA.publicKey.replace(/[+/]/g, "\\$&")}\\t127\\.0\\.0\\.1:\\d+`));
  }, 90_000);
});
