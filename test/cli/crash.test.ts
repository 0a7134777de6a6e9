/**
 * What a killed `tswg up` leaves behind, and the pid files it leaves: after `kill -9`, the next
 * `up` or `down` of the name removes the rules and the socket (no duplicates pile up), `show`
 * says what happened; and a pid file whose pid now belongs to another process is never
 * signalled.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isAlive, netnsUnavailableReason, TestBed, type Host } from "../helpers/netns.js";
import { newKeyPair, TSWG_BIN } from "../interop/nodes.js";

const skip = await netnsUnavailableReason();

describe.skipIf(skip !== null)("after a crash", () => {
  let bed: TestBed;
  let a: Host;
  let dir: string;
  const ka = newKeyPair();
  const kb = newKeyPair();
  const run = (argv: string[], check = true) => a.exec(["node", TSWG_BIN, ...argv], { env: { TSWG_RUN_DIR: dir, TSWG_LOG_DIR: dir }, check });
  const count = (text: string, re: RegExp) => text.split("\n").filter((l) => re.test(l)).length;
  const rules = async () => (await a.ip(["-4", "rule", "show"])).stdout + (await a.ip(["-6", "rule", "show"])).stdout;
  const pidOf = (name: string) => Number(readFileSync(join(dir, `${name}.pid`), "utf8").trim().split(/\s+/)[0]);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "tswgt-crash-"));
    bed = await TestBed.create("crash");
    a = await bed.host("a");
  }, 30_000);
  afterAll(async () => {
    await bed?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it("kill -9: show recognises it, the next up and down undo what it left", async () => {
    const name = bed.ifname("k");
    const conf = join(dir, `${name}.conf`);
    writeFileSync(
      conf,
      ["[Interface]", `PrivateKey = ${ka.privateKey}`, "Address = 10.80.0.1/24", "", "[Peer]", `PublicKey = ${kb.publicKey}`, "AllowedIPs = 0.0.0.0/0, ::/0"].join("\n") + "\n",
      { mode: 0o600 },
    );
    const sock = `/var/run/wireguard/${name}.sock`;
    const killHard = async () => {
      const pid = pidOf(name);
      process.kill(pid, "SIGKILL");
      for (let i = 0; i < 100 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 50));
      expect(isAlive(pid)).toBe(false);
    };

    await run(["up", conf, "--detach"]);
    expect(count(await rules(), /lookup 51820/)).toBe(2);
    await killHard();
    // The crash leaves the rules (one pair per family) and the socket file.
    expect(count(await rules(), /lookup 51820/)).toBe(2);
    expect(existsSync(sock)).toBe(true);

    const show = await run(["show", name], false);
    expect(show.code).toBe(1);
    expect(show.stderr).toContain(`${name} is not running`);
    expect(show.stderr).toContain(`tswg down ${name}`);

    // The next up cleans up first: one copy of each rule, not two.
    await run(["up", conf, "--detach"]);
    const r = await rules();
    expect(count(r, /lookup 51820/)).toBe(2);
    expect(count(r, /suppress_prefixlength 0/)).toBe(2);
    await killHard();

    // down of the crashed interface removes everything.
    const down = await run(["down", name]);
    expect(down.stderr).toMatch(/was not running; cleaned up what it left/);
    expect(await rules()).not.toMatch(/51820|suppress_prefixlength/);
    expect(existsSync(sock)).toBe(false);
    expect(existsSync(join(dir, `${name}.pid`))).toBe(false);
    expect(existsSync(join(dir, `${name}.json`))).toBe(false);
    const again = await run(["down", name], false);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/is not a tswg interface that is up/);
  }, 60_000);

  it("down never signals a process whose pid a stale pid file names", async () => {
    const name = bed.ifname("s");
    const sleeper = a.spawn(["sleep", "300"]);
    await new Promise((r) => setTimeout(r, 200));
    const pid = sleeper.pid;
    // As a crash leaves it, and as older versions wrote it (no start time) ...
    writeFileSync(join(dir, `${name}.pid`), `${pid}\n`);
    const r = await run(["down", name], false);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/is not a tswg interface that is up/);
    expect(isAlive(pid)).toBe(true);
    expect(existsSync(join(dir, `${name}.pid`))).toBe(false);
    // ... and with the start time of a process that has since ended.
    writeFileSync(join(dir, `${name}.pid`), `${pid} 1\n`);
    expect((await run(["down", name], false)).code).toBe(1);
    expect(isAlive(pid)).toBe(true);
    // A stale pid file does not stop `up` either.
    writeFileSync(join(dir, `${name}.pid`), `${pid}\n`);
    const conf = join(dir, `${name}.conf`);
    writeFileSync(conf, ["[Interface]", `PrivateKey = ${ka.privateKey}`, "Address = 10.81.0.1/24"].join("\n") + "\n", { mode: 0o600 });
    await run(["up", conf, "--detach"]);
    expect(pidOf(name)).not.toBe(pid);
    await run(["down", name]);
    expect(isAlive(pid)).toBe(true);
    await sleeper.stop();
  }, 60_000);
});
