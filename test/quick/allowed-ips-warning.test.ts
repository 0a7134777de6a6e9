import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { allowedIpConflicts } from "../../src/conf/checks.js";
import { parseConfig } from "../../src/conf/wgquick.js";
import { createLogger } from "../../src/log/logger.js";
import { up } from "../../src/quick/quick.js";
import { MemoryTun } from "../../src/tun/memory.js";
import { UdpBind } from "../../src/bind/udp.js";

const b64 = (byte: number): string => Buffer.from(new Uint8Array(32).fill(byte)).toString("base64");
const text = `[Interface]
PrivateKey = ${b64(1)}

[Peer]
PublicKey = ${b64(2)}
AllowedIPs = 10.0.0.2/32, 10.9.0.0/16

[Peer]
PublicKey = ${b64(3)}
AllowedIPs = 10.0.0.3/32, 10.9.0.0/16, 10.9.1.0/24

[Peer]
PublicKey = ${b64(4)}
AllowedIPs = 10.9.0.7/16
`;

describe("AllowedIPs given to several peers", () => {
  it("are found, with the peer that ends up with each; nested prefixes are fine", () => {
    const warnings = allowedIpConflicts(parseConfig(text, "wg0.conf"));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toBe(`AllowedIPs 10.9.0.0/16 is given to 3 peers (${b64(2).slice(0, 8)}…, ${b64(3).slice(0, 8)}…, ${b64(4).slice(0, 8)}…): only the last, ${b64(4).slice(0, 8)}…, gets it`);
    expect(allowedIpConflicts(parseConfig(text.replace(/, 10\.9\.0\.0\/16/g, "").replace("10.9.0.7/16", "10.8.0.0/16"), "wg0.conf"))).toEqual([]);
  });

  it("are reported as a warning when the interface comes up", async () => {
    const lines: string[] = [];
    const dir = mkdtempSync(join(tmpdir(), "tswgt-overlap-"));
    const iface = await up({
      name: "overlap0",
      config: parseConfig(text, "overlap0.conf"),
      tun: new MemoryTun({ name: "overlap0", mtu: 1420 }),
      binds: [new UdpBind({ address4: "127.0.0.1" })],
      noNetwork: true,
      uapiDir: dir,
      logger: createLogger({ level: "warn", sink: (l) => lines.push(l), timestamps: false }),
    });
    try {
      expect(lines.filter((l) => l.startsWith("warn: AllowedIPs 10.9.0.0/16 is given to 3 peers"))).toHaveLength(1);
    } finally {
      await iface.down();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
