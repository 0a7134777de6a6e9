/**
 * --fwmark: the mark must be on the TCP connection's very first packet (the SYN), or policy
 * routing would send the SYN into the tunnel. Checked with an nftables counter in a namespace.
 */
import { spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadNative } from "../../src/native/load.js";
import { netnsUnavailableReason, TestBed, type Host } from "../helpers/netns.js";
import { REPO, TSWG_BIN } from "../interop/nodes.js";

const skip = (await netnsUnavailableReason()) ?? (loadNative().addon?.setSocketMark === undefined ? "the native addon has no setSocketMark" : null);
if (skip !== null) console.warn(`skipping the socket mark tests: ${skip}`);

/** Packets counted by the rule for SYNs to `port` that carry mark 0x2a. */
async function markedSyns(h: Host, port: number): Promise<number> {
  const out = (await h.exec(["nft", "list", "chain", "inet", "tswgt_mark", `p${port}`])).stdout;
  return Number(/counter packets (\d+)/.exec(out)?.[1] ?? NaN);
}

describe.skipIf(skip !== null)("SO_MARK on UoTLV/1 connections", () => {
  let bed: TestBed;
  let h: Host;
  beforeAll(async () => {
    bed = await TestBed.create("mark");
    h = await bed.host("h");
    const chain = (p: number): string =>
      `chain p${p} { type filter hook output priority 0; tcp dport ${p} tcp flags & (syn | ack) == syn meta mark 0x2a counter; }`;
    await h.exec(["nft", "-f", "-"], { input: `table inet tswgt_mark {\n${chain(47001)}\n${chain(47002)}\n}\n` });
  });
  afterAll(async () => {
    await bed?.cleanup();
  });

  it("marks the SYN of a connection made with a mark, and not of one without", async () => {
    const script = `
      const net = await import("node:net");
      const { connectMarked } = await import("${REPO}/dist/uotlv/socket-mark.js");
      const srv = net.createServer((s) => s.resume()).listen(47001, "127.0.0.1");
      await new Promise((r) => srv.on("listening", r));
      for (const mark of [42, 0]) {
        const s = mark ? connectMarked({ host: "127.0.0.1", port: 47001, mark }) : net.connect(47001, "127.0.0.1");
        await new Promise((r, j) => { s.on("connect", r); s.on("error", j); });
        s.destroy();
      }
      srv.close();
      console.log("done");
    `;
    const r = await h.exec(["node", "--input-type=module", "-e", script]);
    expect(r.stdout).toContain("done");
    expect(await markedSyns(h, 47001)).toBe(1);
  });

  it("tswg proxyguard client --fwmark marks its connection", async () => {
    const client = h.spawn(["node", TSWG_BIN, "proxyguard", "client", "--to", "http://127.0.0.1:47002/pg", "--fwmark", "42", "--listen-port", "47003"]);
    await client.waitForOutput("listening on 127.0.0.1:47003");
    await h.exec(["node", "-e", `require("dgram").createSocket("udp4").send("x", 47003, "127.0.0.1", (e) => process.exit(e ? 1 : 0))`]);
    await client.waitForOutput(/cannot connect to http:\/\/127\.0\.0\.1:47002\/pg: TCP connect to 127\.0\.0\.1:47002: ECONNREFUSED/);
    await client.stop();
    expect(await markedSyns(h, 47002)).toBeGreaterThanOrEqual(1);
  });
});

describe("--fwmark without socket mark support", () => {
  it("refuses to start with a clear error", () => {
    const r = spawnSync(process.execPath, [TSWG_BIN, "proxyguard", "client", "--to", "http://127.0.0.1:1/", "--fwmark", "7"], {
      encoding: "utf8",
      env: { ...process.env, TSWG_NATIVE: "0" },
      timeout: 10_000,
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^tswg: --fwmark 7 is not supported: setting SO_MARK on TCP sockets needs the native addon \(native addon disabled by TSWG_NATIVE=0\)/);
  });
});
