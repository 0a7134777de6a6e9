/**
 * Router mode (`Netstack = router`) as an unprivileged user: a wireguard-go client routes an
 * upstream subnet through the tswg router, whose flows leave through its own sockets to a
 * third namespace. 200 concurrent TCP flows, the window scale the stack announces on them, DNS
 * over UDP, refused destinations, the flow limit, and a flood of connection attempts to a black
 * hole (bounded memory, still serving).
 */
import { readFileSync, rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { netnsUnavailableReason, TestBed, type Host } from "../helpers/netns.js";
import { newKeyPair, startNode, type KeyPair } from "../interop/nodes.js";
import { loadNetstackAddon } from "../../src/netstack/addon.js";
import { asUser, dnsServer, userDir, writeUserFile } from "./fixtures.js";
import { TSWG_BIN } from "../interop/nodes.js";

const skip = await netnsUnavailableReason();
const addon = loadNetstackAddon();
const tools = await (async () => {
  const { execFileSync } = await import("node:child_process");
  try {
    execFileSync("sh", ["-c", "command -v wireguard-go && command -v setpriv"], { stdio: "ignore" });
    return null;
  } catch {
    return "wireguard-go or setpriv is missing";
  }
})();
const why = skip ?? addon.reason ?? tools;
if (why !== null) console.warn(`skipping the router mode tests: ${why}`);

const CR_C = "10.68.1.1";
const CR_R = "10.68.1.2";
const RU_R = "10.68.2.1";
const RU_U = "10.68.2.2";
const BLACK_HOLE = "10.68.2.3";

/** A Node script run in the client namespace: `n` concurrent echo round trips of `bytes` each. */
function echoFlows(n: number, bytes: number, host: string, port: number): string {
  return `const net = require("net"), crypto = require("crypto");
    let ok = 0, refused = 0, failed = 0, done = 0;
    const finish = () => { if (++done === ${n}) { console.log(JSON.stringify({ ok, refused, failed })); process.exit(0); } };
    for (let i = 0; i < ${n}; i++) {
      const payload = crypto.randomBytes(${bytes});
      const c = net.connect(${port}, "${host}");
      const got = [];
      c.on("connect", () => c.end(payload));
      c.on("data", (d) => got.push(d));
      c.on("error", (e) => { if (e.code === "ECONNREFUSED" || e.code === "ECONNRESET") refused++; else failed++; });
      c.on("close", (hadError) => { if (!hadError) { if (Buffer.concat(got).equals(payload)) ok++; else failed++; } finish(); });
    }
    setTimeout(() => { console.log(JSON.stringify({ ok, refused, failed, timeout: ${n} - done })); process.exit(0); }, 60000);`;
}

describe.skipIf(why !== null)("router mode as an unprivileged user", () => {
  let bed: TestBed;
  let hc: Host;
  let hr: Host;
  let hu: Host;
  let keysC: KeyPair;
  let keysR: KeyPair;
  let routerPid = 0;
  let routerLog: () => string;
  const stops: Array<{ stop(): Promise<unknown> }> = [];

  beforeAll(async () => {
    bed = await TestBed.create("router");
    hc = await bed.host("c");
    hr = await bed.host("r");
    hu = await bed.host("u");
    await bed.link(hc, hr, { a: `${CR_C}/24`, b: `${CR_R}/24` });
    await bed.link(hr, hu, { a: `${RU_R}/24`, b: `${RU_U}/24` });
    keysC = newKeyPair();
    keysR = newKeyPair();
    const echo = hu.spawn(["node", "-e", `require("net").createServer({ allowHalfOpen: true }, (s) => { s.pipe(s); s.on("error", () => {}); }).listen(9000, "${RU_U}", () => console.log("ready"));`]);
    await echo.waitForOutput("ready");
    stops.push(echo);
    const dns = dnsServer(hu, RU_U, "192.0.2.7");
    await dns.waitForOutput("ready");
    stops.push(dns);

    const dir = userDir();
    const conf = writeUserFile(
      dir,
      "rtr.conf",
      `[Interface]
PrivateKey = ${keysR.privateKey}
Address = 10.81.0.1/24
ListenPort = 51820
Netstack = router

[Peer]
PublicKey = ${keysC.publicKey}
AllowedIPs = 10.81.0.2/32
`,
    );
    const proc = hr.spawn(asUser(["node", TSWG_BIN, "up", conf, "--log-level", "debug"]), {
      env: { XDG_RUNTIME_DIR: dir, TSWG_RUN_DIR: dir, TSWG_LOG_DIR: dir, TSWG_ROUTER_MAX_FLOWS: "300" },
    });
    await proc.waitForOutput("interface rtr is up", { timeoutMs: 20_000 });
    routerPid = proc.child.pid!;
    routerLog = () => proc.stderr;
    stops.push({
      stop: async () => {
        await proc.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    });

    const wgC = await startNode({
      impl: "wireguard-go",
      host: hc,
      ifname: bed.ifname("rtc"),
      keys: keysC,
      listenPort: 51821,
      addresses: ["10.81.0.2/24"],
      peers: [{ publicKey: keysR.publicKey, allowedIps: ["10.81.0.1/32", "10.68.2.0/24"], endpoint: `${CR_R}:51820`, persistentKeepalive: 25 }],
    });
    stops.push(wgC);
  }, 90_000);

  afterAll(async () => {
    for (const s of stops.reverse()) await s.stop().catch(() => {});
    await bed?.cleanup();
  });

  it("the router answers ping on its own address", async () => {
    const r = await hc.exec(["ping", "-c", "3", "-i", "0.3", "-W", "2", "10.81.0.1"], { check: false, timeoutMs: 20_000 });
    expect(r.stdout).toMatch(/[1-3] received/u);
  }, 30_000);

  it("200 concurrent TCP flows reach a server behind the router, bytes intact", async () => {
    const r = await hc.exec(["node", "-e", echoFlows(200, 32 * 1024, RU_U, 9000)], { timeoutMs: 90_000 });
    expect(JSON.parse(r.stdout.trim())).toEqual({ ok: 200, refused: 0, failed: 0 });
  }, 120_000);

  it("a flow's connection on the stack announces window scale 7 and a window beyond 128 KiB", async () => {
    // The router answers the client's SYN as the foreign destination; what the client's kernel
    // took from that SYN-ACK and the window updates after it (Debian's lwIP alone: 1, 131070).
    const { waitFor } = await import("../helpers/netns.js");
    const client = hc.spawn(["node", "-e", `require("net").connect(9000, "${RU_U}").on("connect", () => console.log("open")); setTimeout(() => process.exit(0), 15000);`]);
    try {
      await client.waitForOutput("open", { timeoutMs: 10_000 });
      const seen = await waitFor(
        async () => {
          const out = (await hc.exec(["ss", "-tinH", "state", "established", "( dport = :9000 )"])).stdout;
          const scale = /wscale:(\d+),\d+/u.exec(out);
          const wnd = /snd_wnd:(\d+)/u.exec(out);
          return scale && wnd && Number(wnd[1]) > 131_070 ? { scale: Number(scale[1]), wnd: Number(wnd[1]) } : null;
        },
        { timeoutMs: 10_000, intervalMs: 200, what: "the flow's connection with a window beyond 128 KiB" },
      );
      expect(seen.scale).toBe(7);
      expect(seen.wnd).toBeGreaterThan(1024 * 1024);
      // No more than the stack's 2 MiB: a larger figure would mean its segments are shifted by
      // other than the announced 7.
      expect(seen.wnd).toBeLessThanOrEqual(2 * 1024 * 1024);
    } finally {
      await client.stop();
    }
  }, 30_000);

  it("DNS queries over UDP are answered by a server behind the router", async () => {
    const script = `const s = require("dgram").createSocket("udp4"); let got = 0;
      s.on("message", (m) => { if (m.subarray(-4).join(".") === "192.0.2.7") got++; if (got === 20) { console.log(got); process.exit(0); } });
      for (let i = 0; i < 20; i++) {
        const q = Buffer.from([i, i, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 7, ...Buffer.from("example"), 4, ...Buffer.from("test"), 0, 0, 1, 0, 1]);
        setTimeout(() => s.send(q, 53, "${RU_U}"), i * 20);
      }
      setTimeout(() => { console.log(got); process.exit(0); }, 8000);`;
    const r = await hc.exec(["node", "-e", script], { timeoutMs: 20_000 });
    expect(Number(r.stdout.trim())).toBe(20);
  }, 30_000);

  it("a closed upstream port is refused with a RST", async () => {
    const r = await hc.exec(["node", "-e", echoFlows(3, 100, RU_U, 9999)], { timeoutMs: 90_000 });
    expect(JSON.parse(r.stdout.trim())).toEqual({ ok: 0, refused: 3, failed: 0 });
  }, 120_000);

  it("past the flow limit new flows are refused and counted; the router keeps serving", async () => {
    // 400 dials to an address nobody answers: 300 wait for their dial, the rest are refused.
    const hang = hc.spawn(["node", "-e", `const net = require("net"); let refused = 0;
      for (let i = 0; i < 400; i++) { const c = net.connect(80, "${BLACK_HOLE}"); c.on("error", (e) => { if (e.code === "ECONNREFUSED" || e.code === "ECONNRESET") refused++; }); }
      setInterval(() => console.log("refused " + refused), 500);`]);
    try {
      await hang.waitForOutput(/refused (?:[5-9]\d|1\d\d)/u, { timeoutMs: 30_000 });
      expect(routerLog()).toMatch(/router: 300 flows open, new flows refused/u);
    } finally {
      await hang.stop();
    }
    // The dials time out (10 s) and the router serves again.
    const { waitFor } = await import("../helpers/netns.js");
    await waitFor(async () => {
      const r = await hc.exec(["node", "-e", echoFlows(5, 1000, RU_U, 9000)], { timeoutMs: 90_000 });
      return JSON.parse(r.stdout.trim()).ok === 5;
    }, { timeoutMs: 40_000, intervalMs: 2000, what: "the router to serve again" });
  }, 120_000);

  it("a flood of connection attempts leaves memory bounded and the router alive", async () => {
    const rss = () => Number(/^VmRSS:\s+(\d+)/mu.exec(readFileSync(`/proc/${routerPid}/status`, "utf8"))![1]) / 1024;
    const before = rss();
    // 3000 SYNs to a black hole in waves: each is a half-open flow the router must bound.
    const flood = await hc.exec(["node", "-e", `const net = require("net"); let n = 0;
      const wave = () => { for (let i = 0; i < 500; i++) { const c = net.connect({ port: 1 + (n++ % 60000), host: "${BLACK_HOLE}" }); c.on("error", () => {}); setTimeout(() => c.destroy(), 1500); } };
      const t = setInterval(() => { wave(); if (n >= 3000) { clearInterval(t); setTimeout(() => process.exit(0), 2000); } }, 300);`], { timeoutMs: 60_000 });
    expect(flood.code).toBe(0);
    const after = rss();
    console.log(`router RSS: ${before.toFixed(0)} MiB before the flood, ${after.toFixed(0)} MiB after`);
    expect(after - before).toBeLessThan(150);
    const { waitFor } = await import("../helpers/netns.js");
    await waitFor(async () => {
      const r = await hc.exec(["node", "-e", echoFlows(5, 1000, RU_U, 9000)], { timeoutMs: 90_000 });
      return JSON.parse(r.stdout.trim()).ok === 5;
    }, { timeoutMs: 40_000, intervalMs: 2000, what: "the router to serve again" });
  }, 150_000);
});
