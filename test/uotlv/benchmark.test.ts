/**
 * Throughput over UoTLV/1 against plain UDP, in one run on one machine (iperf3, one TCP stream
 * through the tunnel, server -> client direction reversed with -R as well). Slow, so it only
 * runs when asked for:
 *
 *   TSWG_BENCH_UOTLV=1 npx vitest run test/uotlv/benchmark.test.ts
 *
 * Pairs measured, all between two namespaces on a veth link:
 *   wg-go UDP        wireguard-go <-> wireguard-go over UDP
 *   wg-go UoTLV/1    the same, through `tswg proxyguard client` and `server`
 *   tswg UDP         tswg <-> wireguard-go over UDP
 *   tswg UoTLV/1     tswg (TCP Bind, URL endpoint) <-> `tswg proxyguard server` <-> wireguard-go
 */
import { afterAll, describe, expect, it } from "vitest";
import { netnsUnavailableReason, TestBed, type Host } from "../helpers/netns.js";
import { newKeyPair, pingUntilReply, startNode, type KeyPair } from "../interop/nodes.js";
import { startProxyClient, startProxyServer, startTswg } from "./netns-setup.js";

const wanted = process.env.TSWG_BENCH_UOTLV === "1";
const skip = wanted ? await netnsUnavailableReason() : "set TSWG_BENCH_UOTLV=1 to run";
const SECONDS = Number(process.env.TSWG_BENCH_SECONDS ?? 10);

async function iperf(from: Host, to: Host, ip: string, reverse: boolean): Promise<number> {
  const server = to.spawn(["iperf3", "-s", "-1", "-B", ip, "--forceflush"]);
  await server.waitForOutput("Server listening");
  const r = await from.exec(["iperf3", "-c", ip, "-t", String(SECONDS), "-J", ...(reverse ? ["-R"] : [])], { timeoutMs: (SECONDS + 30) * 1000 });
  await server.exited;
  const j = JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } };
  return j.end.sum_received.bits_per_second / 1e6;
}

describe.skipIf(skip !== null)("UoTLV/1 throughput", () => {
  let bed: TestBed;
  const stops: Array<{ stop(): Promise<unknown> }> = [];
  afterAll(async () => {
    for (const s of stops.reverse()) await s.stop().catch(() => {});
    await bed?.cleanup();
  });

  it("measures UDP and UoTLV/1 side by side", async () => {
    bed = await TestBed.create("pgbench");
    const c = await bed.host("c");
    const s = await bed.host("s");
    await bed.link(c, s, { a: "10.67.0.1/24", b: "10.67.0.2/24" });
    const rows: Array<[string, number, number]> = [];
    const pair = async (tag: string, subnet: number, port: number, viaTcp: boolean, clientImpl: "wireguard-go" | "tswg") => {
      const kc: KeyPair = newKeyPair();
      const ks: KeyPair = newKeyPair();
      const srv = await startNode({
        impl: "wireguard-go", host: s, ifname: bed.ifname(`s${tag}`), keys: ks, listenPort: port,
        addresses: [`10.${subnet}.0.2/24`], peers: [{ publicKey: kc.publicKey, allowedIps: [`10.${subnet}.0.1/32`] }],
      });
      stops.push(srv);
      let endpoint = `10.67.0.2:${port}`;
      if (viaTcp) {
        const p = startProxyServer(s, `10.67.0.2:${port + 1000}`, `127.0.0.1:${port}`);
        stops.push(p);
        await p.waitForOutput("listening on");
        endpoint = `http://10.67.0.2:${port + 1000}/proxyguard`;
      }
      if (clientImpl === "wireguard-go") {
        if (viaTcp) {
          const pc = startProxyClient(c, ["--to", endpoint, "--listen-port", String(port + 2000), "--forward-port", String(port)]);
          stops.push(pc);
          await pc.waitForOutput("listening on");
          endpoint = `127.0.0.1:${port + 2000}`;
        }
        stops.push(await startNode({
          impl: "wireguard-go", host: c, ifname: bed.ifname(`c${tag}`), keys: kc, listenPort: port,
          addresses: [`10.${subnet}.0.1/24`], peers: [{ publicKey: ks.publicKey, allowedIps: [`10.${subnet}.0.2/32`], endpoint, persistentKeepalive: 25 }],
        }));
      } else {
        stops.push(await startTswg(c, bed.ifname(`c${tag}`), `[Interface]\nPrivateKey = ${kc.privateKey}\nAddress = 10.${subnet}.0.1/24\nMTU = 1420\n\n[Peer]\nPublicKey = ${ks.publicKey}\nAllowedIPs = 10.${subnet}.0.2/32\nEndpoint = ${endpoint}\nPersistentKeepalive = 25\n`));
      }
      await pingUntilReply(c, `10.${subnet}.0.2`, { timeoutMs: 20_000 });
      const up = await iperf(c, s, `10.${subnet}.0.2`, false);
      const down = await iperf(c, s, `10.${subnet}.0.2`, true);
      rows.push([`${clientImpl === "tswg" ? "tswg" : "wg-go"} ${viaTcp ? "UoTLV/1" : "UDP"}`, up, down]);
    };
    await pair("a", 81, 52000, false, "wireguard-go");
    await pair("b", 82, 52100, true, "wireguard-go");
    await pair("c", 83, 52200, false, "tswg");
    await pair("d", 84, 52300, true, "tswg");
    const table = ["| path | client -> server (Mbit/s) | server -> client (Mbit/s) |", "| --- | ---: | ---: |", ...rows.map(([n, u, d]) => `| ${n} | ${u.toFixed(0)} | ${d.toFixed(0)} |`)].join("\n");
    console.log(`\n${table}\n`);
    for (const [, u, d] of rows) expect(u > 0 && d > 0).toBe(true);
  }, 600_000);
});
