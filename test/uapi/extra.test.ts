import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { UapiServer } from "../../src/uapi/server.js";
import { parseGet } from "../../src/uapi/client.js";
import { formatGet, formatStatus } from "../../src/uapi/protocol.js";
import type { UapiDeviceState } from "../../src/uapi/types.js";

const key = (n: number) => new Uint8Array(32).fill(n);

const state: UapiDeviceState = {
  privateKey: key(1),
  listenPort: 51820,
  fwmark: 0,
  extra: { tswg_datapath: "native" },
  peers: [
    {
      publicKey: key(2),
      persistentKeepalive: 0,
      allowedIps: ["10.0.0.2/32"],
      lastHandshakeMs: 0,
      txBytes: 5n,
      rxBytes: 7n,
      protocolVersion: 1,
      extra: { tswg_transport: "ice", tswg_ice_state: "connected" },
    },
  ],
};

describe("tswg's own get-only keys", () => {
  it("round-trip through formatGet and parseGet, on the device and on each peer", () => {
    const parsed = parseGet(formatGet(state) + formatStatus(0));
    expect(parsed.extra).toEqual({ tswg_datapath: "native" });
    expect(parsed.peers[0]!.extra).toEqual({ tswg_transport: "ice", tswg_ice_state: "connected" });
    expect(parsed.peers[0]!.rxBytes).toBe(7n);
  });

  it("refuse keys without the prefix and values with line breaks", () => {
    expect(() => formatGet({ ...state, extra: { datapath: "x" } })).toThrow(/invalid extra UAPI key/);
    expect(() => formatGet({ ...state, extra: { tswg_x: "a\nprivate_key=00" } })).toThrow();
  });

  it.skipIf(process.getuid?.() !== 0)("are ignored by the real wg tool", async () => {
    const name = `tswgx${process.pid % 100000}`;
    const server = new UapiServer();
    await server.listen(name, { get: () => state, set: () => {} });
    try {
      // Asynchronously: the server answering wg runs on this very event loop.
      const run = promisify(execFile);
      const dump = (await run("wg", ["show", name, "dump"], { timeout: 10_000 })).stdout.trim().split("\n");
      expect(dump).toHaveLength(2);
      expect(dump[1]!.split("\t")[3]).toBe("10.0.0.2/32");
      expect((await run("wg", ["showconf", name], { timeout: 10_000 })).stdout).toContain("AllowedIPs = 10.0.0.2/32");
    } finally {
      await server.close();
    }
  });
});
