/**
 * `DNS` needs resolvconf, as with wg-quick: without it `tswg up` fails with a clear message, and
 * before anything has changed (no hook run, no interface, no socket).
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { netnsUnavailableReason, TestBed, type Host } from "../helpers/netns.js";
import { newKeyPair, TSWG_BIN } from "../interop/nodes.js";

function hasResolvconf(): boolean {
  try {
    execFileSync("sh", ["-c", "command -v resolvconf"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

const skip = (await netnsUnavailableReason()) ?? (hasResolvconf() ? "resolvconf is installed here" : null);

describe.skipIf(skip !== null)("DNS without resolvconf", () => {
  let bed: TestBed;
  let a: Host;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "tswgt-dns-"));
    bed = await TestBed.create("dns");
    a = await bed.host("a");
  }, 30_000);
  afterAll(async () => {
    await bed?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it("fails like wg-quick, saying what to do, and changes nothing", async () => {
    const name = bed.ifname("d");
    const conf = join(dir, `${name}.conf`);
    const marker = join(dir, "pre-up");
    writeFileSync(
      conf,
      ["[Interface]", `PrivateKey = ${newKeyPair().privateKey}`, "Address = 10.82.0.1/24", "DNS = 10.82.0.53, corp.example", `PreUp = touch ${marker}`].join("\n") + "\n",
      { mode: 0o600 },
    );
    for (const detach of [[], ["--detach"]]) {
      const r = await a.exec(["node", TSWG_BIN, "up", conf, ...detach], { env: { TSWG_RUN_DIR: dir, TSWG_LOG_DIR: dir }, check: false });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/DNS is set but resolvconf is not installed: install resolvconf \(or openresolv\), or remove DNS/);
      expect(existsSync(marker)).toBe(false);
      expect((await a.ip(["link", "show", name], { check: false })).code).not.toBe(0);
      expect(existsSync(`/var/run/wireguard/${name}.sock`)).toBe(false);
      expect(existsSync(join(dir, `${name}.json`))).toBe(false);
    }
  }, 30_000);
});
