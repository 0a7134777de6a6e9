/**
 * `tswg up --detach`: the warnings of starting up reach the user who ran it (not only the log
 * file), and the log file is capped.
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { netnsUnavailableReason, TestBed, type Host } from "../helpers/netns.js";
import { newKeyPair, TSWG_BIN } from "../interop/nodes.js";

const skip = await netnsUnavailableReason();

describe.skipIf(skip !== null)("tswg up --detach", () => {
  let bed: TestBed;
  let a: Host;
  let dir: string;
  const run = (argv: string[], env: Record<string, string> = {}) =>
    a.exec(["node", TSWG_BIN, ...argv], { env: { TSWG_RUN_DIR: dir, TSWG_LOG_DIR: dir, ...env } });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "tswgt-detach-"));
    chmodSync(dir, 0o755);
    bed = await TestBed.create("detach");
    a = await bed.host("a");
  }, 30_000);
  afterAll(async () => {
    await bed?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it("shows the warnings of starting up to the user, and caps the log file", async () => {
    const name = bed.ifname("w");
    const conf = join(dir, `${name}.conf`);
    const [p1, p2] = [newKeyPair(), newKeyPair()];
    writeFileSync(
      conf,
      [
        "[Interface]",
        `PrivateKey = ${newKeyPair().privateKey}`,
        "Address = 10.83.0.1/24",
        // 16 KiB of hook output, well over the cap set below.
        "PostUp = head -c 12288 /dev/zero | tr '\\0' 'x'; echo",
        "",
        "[Peer]",
        `PublicKey = ${p1.publicKey}`,
        "AllowedIPs = 10.83.0.0/24",
        "",
        "[Peer]",
        `PublicKey = ${p2.publicKey}`,
        "AllowedIPs = 10.83.0.0/24",
      ].join("\n") + "\n",
    );
    chmodSync(conf, 0o644);
    const up = await run(["up", conf, "--detach"], { TSWG_LOG_MAX_BYTES: "2048" });
    expect(up.stdout).toMatch(/is up in the background/);
    expect(up.stderr).toMatch(/warn: .*is world accessible/);
    expect(up.stderr).toMatch(/warn: AllowedIPs 10\.83\.0\.0\/24 is given to 2 peers/);
    // Info lines stay in the log file.
    expect(up.stderr).not.toMatch(/info:/);

    await run(["down", name]);
    const log = join(dir, `${name}.log`);
    expect(existsSync(`${log}.1`)).toBe(true);
    expect(statSync(log).size).toBeLessThan(12288);
    expect(readFileSync(`${log}.1`, "utf8").length + readFileSync(log, "utf8").length).toBeGreaterThan(2048);
  }, 60_000);
});
