import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { UdpBind } from "../../src/bind/udp.js";
import { parseConfig } from "../../src/conf/wgquick.js";
import { describeGrowth } from "../../src/log/counter-summary.js";
import { createLogger } from "../../src/log/logger.js";
import { up } from "../../src/quick/quick.js";
import { MemoryTun } from "../../src/tun/memory.js";
import { waitFor } from "../helpers/wait.js";

const b64 = (byte: number): string => Buffer.from(new Uint8Array(32).fill(byte)).toString("base64");

/** An IPv4 header (no payload) to `dst`. */
function ipv4To(dst: number[]): Uint8Array {
  const p = new Uint8Array(20);
  p[0] = 0x45;
  p[3] = 20;
  p[8] = 64;
  p[9] = 17;
  p.set([10, 85, 0, 1], 12);
  p.set(dst, 16);
  return p;
}

describe("drop summaries at info level", () => {
  it("say how many were dropped, by reason, most first, and nothing when none were", () => {
    expect(describeGrowth({ "bad-mac1": 10 }, { "bad-mac1": 80_010, "no-route": 2314, replay: 0 }, "datagrams", 10)).toBe(
      "dropped 82314 datagrams in the last 10 s: 80000 bad-mac1, 2314 no-route",
    );
    expect(describeGrowth({ a: 3 }, { a: 3 }, "packets", 10)).toBeNull();
  });

  it("are logged by an interface that drops packets", async () => {
    const lines: string[] = [];
    const dir = mkdtempSync(join(tmpdir(), "tswgt-drops-"));
    const tun = new MemoryTun({ name: "drops0", mtu: 1420 });
    const iface = await up({
      name: "drops0",
      config: parseConfig(`[Interface]\nPrivateKey = ${b64(1)}\n[Peer]\nPublicKey = ${b64(2)}\nAllowedIPs = 10.85.0.2/32\n`, "drops0.conf"),
      tun,
      binds: [new UdpBind({ address4: "127.0.0.1" })],
      noNetwork: true,
      uapiDir: dir,
      dropSummaryMs: 200,
      logger: createLogger({ level: "info", sink: (l) => lines.push(l), timestamps: false }),
    });
    try {
      // Packets to an address no peer has: each one is dropped without a log line of its own.
      tun.host.inject(Array.from({ length: 25 }, () => ipv4To([10, 99, 0, 1])));
      await waitFor(() => lines.some((l) => l.includes("dropped")), { what: "a drop summary", timeoutMs: 5000 });
      const summaries = lines.filter((l) => l.includes("dropped"));
      expect(summaries[0]).toMatch(/^info: dropped 25 packets in the last 0\.2 s: 25 no-route$/);
    } finally {
      await iface.down();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
