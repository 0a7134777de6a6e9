/**
 * The command line's own output: everything reaches a slow pipe before the process exits (a
 * pipe holds 64 KiB; the rest used to be dropped by the exit), and a reader that goes away
 * (EPIPE) neither ends `tswg up` nor skips any of its teardown.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hasRoot, netnsUnavailableReason, TestBed, waitFor, type Host } from "../helpers/netns.js";
import { newKeyPair, TSWG_BIN } from "../interop/nodes.js";
import { UapiServer } from "../../src/uapi/server.js";
import type { UapiDeviceState } from "../../src/uapi/types.js";

function sh(script: string, env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile("sh", ["-c", script], { env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) =>
      resolve({ code: err === null ? 0 : typeof err.code === "number" ? err.code : 1, stdout, stderr }),
    );
  });
}

describe.skipIf(!hasRoot())("output through a slow pipe", () => {
  const name = `tswgo${process.pid.toString(36).slice(-5)}`;
  const server = new UapiServer();
  const PEERS = 3000;

  beforeAll(async () => {
    const state: UapiDeviceState = {
      privateKey: new Uint8Array(32).fill(7),
      listenPort: 51820,
      fwmark: 0,
      peers: Array.from({ length: PEERS }, (_, i) => {
        const key = new Uint8Array(32);
        new DataView(key.buffer).setUint32(0, i);
        return {
          publicKey: key,
          endpoint: `192.0.2.${i % 250}:${1024 + i}`,
          persistentKeepalive: 25,
          allowedIps: [`10.${i >> 8}.${i & 255}.0/24`, `fd00::${i.toString(16)}/128`],
          lastHandshakeMs: 0,
          txBytes: 0,
          rxBytes: 0,
          protocolVersion: 1 as const,
        };
      }),
    };
    await server.listen(name, { get: () => state, set: () => {} });
  });
  afterAll(() => server.close());

  it("`tswg show IF dump` writes every line to a reader that is slower than the process", async () => {
    // The reader sleeps first: the pipe fills at 64 KiB and the rest waits in the process.
    const r = await sh(`node ${TSWG_BIN} show ${name} dump | (sleep 1; wc -lc)`);
    expect(r.code).toBe(0);
    const [lines, bytes] = r.stdout.trim().split(/\s+/).map(Number);
    expect(lines).toBe(PEERS + 1);
    expect(bytes).toBeGreaterThan(4 * 64 * 1024);
    // And the same text as when read at full speed.
    const direct = await sh(`node ${TSWG_BIN} show ${name} dump`);
    expect(Buffer.byteLength(direct.stdout)).toBe(bytes);
  }, 30_000);
});

const skip = await netnsUnavailableReason();

describe.skipIf(skip !== null)("a closed stderr (EPIPE)", () => {
  let bed: TestBed;
  let a: Host;
  let dir: string;
  const ka = newKeyPair();
  const kb = newKeyPair();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "tswgt-epipe-"));
    bed = await TestBed.create("epipe");
    a = await bed.host("a");
  }, 30_000);
  afterAll(async () => {
    await bed?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it("neither ends `tswg up` nor skips its teardown: hooks, SaveConfig, rules, socket, pid file", async () => {
    const ifname = bed.ifname("e");
    const conf = join(dir, `${ifname}.conf`);
    const marker = join(dir, "marker");
    const added = newKeyPair();
    writeFileSync(
      conf,
      [
        "[Interface]",
        `PrivateKey = ${ka.privateKey}`,
        "Address = 10.79.0.1/24",
        "SaveConfig = true",
        // Hooks that print, to the pipe whose reader is gone, and then leave a trace.
        `PostUp = echo post-up %i; echo up >> ${marker}; wg set %i peer ${added.publicKey} allowed-ips 10.79.0.9/32`,
        `PreDown = echo pre-down %i; echo pre-down >> ${marker}`,
        `PostDown = echo post-down %i; echo post-down >> ${marker}`,
        "",
        "[Peer]",
        `PublicKey = ${kb.publicKey}`,
        "AllowedIPs = 0.0.0.0/0",
        "Endpoint = 192.0.2.1:51820",
      ].join("\n") + "\n",
      { mode: 0o600 },
    );
    // The reader takes the first 100 bytes and leaves; every later write by tswg fails.
    const proc = a.spawn(["sh", "-c", `node ${TSWG_BIN} up ${conf} --log-level debug 2>&1 | head -c 100 >/dev/null`], {
      env: { TSWG_RUN_DIR: dir, TSWG_LOG_DIR: dir },
    });
    const pidFile = join(dir, `${ifname}.pid`);
    await waitFor(() => existsSync(pidFile), { timeoutMs: 20_000, what: "tswg up to write its pid file" });
    const pid = Number(readFileSync(pidFile, "utf8").trim().split(/\s+/)[0]);
    expect((await a.ip(["-4", "rule", "show"])).stdout).toMatch(/lookup 51820/);
    expect(readFileSync(marker, "utf8")).toBe("up\n");

    // Debug logging keeps writing to the dead pipe for a while; the tunnel stays up.
    await new Promise((r) => setTimeout(r, 500));
    expect((await a.exec(["wg", "show", ifname, "peers"])).stdout).toContain(added.publicKey);

    process.kill(pid, "SIGTERM");
    await waitFor(() => !existsSync(pidFile), { timeoutMs: 20_000, what: "tswg to go down and remove its pid file" });
    await proc.exited;
    expect(readFileSync(marker, "utf8")).toBe("up\npre-down\npost-down\n");
    expect(readFileSync(conf, "utf8")).toContain(`PublicKey = ${added.publicKey}`);
    expect((await a.ip(["-4", "rule", "show"])).stdout).not.toMatch(/lookup 51820|suppress_prefixlength/);
    expect(existsSync(`/var/run/wireguard/${ifname}.sock`)).toBe(false);
    expect((await a.ip(["link", "show", ifname], { check: false })).code).not.toBe(0);
  }, 60_000);
});
