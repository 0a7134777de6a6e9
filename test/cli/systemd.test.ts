/**
 * The systemd units as systemd would run them: the ExecStart line of tswg@.service, taken from
 * the file as written (with %i and $VARIABLES substituted as systemd does), brings an interface up;
 * the ExecReload line applies a changed file without dropping it; KillSignal takes it down with
 * exit code 0. The same for tswg-signal.service. `systemd-analyze verify` checks both files.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { netnsUnavailableReason, TestBed, waitFor, type Host } from "../helpers/netns.js";
import { newKeyPair, pingUntilReply, REPO, startNode, TSWG_BIN, type WgNode } from "../interop/nodes.js";

/** `Key=` lines of a unit's [Service] section. */
function serviceKey(unit: string, key: string): string {
  const text = readFileSync(join(REPO, "systemd", unit), "utf8");
  const m = new RegExp(`^${key}=(.*)$`, "m").exec(text);
  if (m === null) throw new Error(`${unit} has no ${key}=`);
  return m[1]!;
}

/** systemd's substitution for these lines: specifiers, then $VAR split on whitespace. */
function commandLine(line: string, vars: Record<string, string>): string[] {
  return line
    .split(/\s+/)
    .flatMap((w) => {
      const v = /^\$([A-Z_]+)$/.exec(w);
      if (v) return (vars[v[1]!] ?? "").split(/\s+/).filter((x) => x !== "");
      return [w.replace(/%i/g, vars["%i"] ?? "%i")];
    });
}

const skip = await netnsUnavailableReason();

describe.skipIf(skip !== null)("systemd units", () => {
  let bed: TestBed;
  let a: Host;
  let dir: string;
  let bin: string;
  let peer: WgNode;
  const ka = newKeyPair();
  const kb = newKeyPair();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "tswgt-unit-"));
    // `tswg` on PATH, as a package install puts it.
    bin = join(dir, "bin");
    mkdirSync(bin);
    symlinkSync(TSWG_BIN, join(bin, "tswg"));
    bed = await TestBed.create("unit");
    a = await bed.host("a");
    const b = await bed.host("b");
    await bed.link(a, b, { a: "192.168.79.1/24", b: "192.168.79.2/24" });
    peer = await startNode({
      impl: "wireguard-go",
      host: b,
      ifname: bed.ifname("p"),
      keys: kb,
      listenPort: 51841,
      addresses: ["10.79.0.2/24"],
      peers: [{ publicKey: ka.publicKey, allowedIps: ["10.79.0.1/32"] }],
    });
  }, 60_000);

  afterAll(async () => {
    await peer?.stop().catch(() => {});
    await bed?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it("tswg@.service: ExecStart brings the interface up, ExecReload applies changes, KillSignal takes it down", async () => {
    const name = bed.ifname("u");
    const conf = (extra: string[]) =>
      ["[Interface]", `PrivateKey = ${ka.privateKey}`, "Address = 10.79.0.1/24", "", "[Peer]", `PublicKey = ${kb.publicKey}`, "AllowedIPs = 10.79.0.2/32", "Endpoint = 192.168.79.2:51841", ...extra].join("\n") + "\n";
    writeFileSync(join(dir, `${name}.conf`), conf([]), { mode: 0o600 });
    const env = { PATH: `${bin}:${process.env.PATH}`, TSWG_CONFIG_PATH: dir, TSWG_RUN_DIR: dir };
    const start = commandLine(serviceKey("tswg@.service", "ExecStart"), { "%i": name });
    expect(start).toEqual(["tswg", "up", name]);
    const proc = a.spawn(start, { env });
    await proc.waitForOutput(`interface ${name} is up`, { timeoutMs: 20_000 });
    await pingUntilReply(a, "10.79.0.2");

    const kc = newKeyPair();
    writeFileSync(join(dir, `${name}.conf`), conf(["", "[Peer]", `PublicKey = ${kc.publicKey}`, "AllowedIPs = 10.79.0.3/32"]), { mode: 0o600 });
    const reload = commandLine(serviceKey("tswg@.service", "ExecReload"), { MAINPID: String(proc.pid) });
    execFileSync(reload[0]!, reload.slice(1));
    await waitFor(async () => (await a.exec(["wg", "show", name, "peers"])).stdout.includes(kc.publicKey), { timeoutMs: 10_000, what: "the reload" });
    await pingUntilReply(a, "10.79.0.2");

    proc.signal(serviceKey("tswg@.service", "KillSignal") as NodeJS.Signals);
    expect(await proc.exited).toEqual({ code: 0, signal: null });
    expect((await a.ip(["link", "show", name], { check: false })).code).not.toBe(0);
  }, 60_000);

  it("tswg-signal.service: ExecStart with its default arguments runs the server until SIGTERM", async () => {
    const vars = { TSWG_SIGNAL_ARGS: "--listen 127.0.0.1:18443 --metrics 127.0.0.1:19587" };
    const start = commandLine(serviceKey("tswg-signal.service", "ExecStart"), vars);
    expect(start.slice(0, 2)).toEqual(["tswg", "signal"]);
    // The unit's default is a sane one: all addresses on 8443.
    expect(serviceKey("tswg-signal.service", "Environment")).toBe('"TSWG_SIGNAL_ARGS=--listen :8443"');
    await a.ip(["link", "set", "lo", "up"]);
    const proc = a.spawn(start, { env: { PATH: `${bin}:${process.env.PATH}` } });
    await proc.waitForOutput(/listening on ws:\/\/127\.0\.0\.1:18443/, { timeoutMs: 10_000 });
    const metrics = (await a.exec(["curl", "-sf", "http://127.0.0.1:19587/metrics"])).stdout;
    expect(metrics).toMatch(/^tswg_signal_connections 0$/m);
    proc.signal("SIGTERM");
    expect(await proc.exited).toEqual({ code: 0, signal: null });
  });

  it.skipIf(!existsSync("/usr/bin/systemd-analyze"))("systemd-analyze verify accepts both units", () => {
    const units = mkdtempSync(join(tmpdir(), "tswgt-units-"));
    try {
      writeFileSync(join(units, "tswg@wg0.service"), readFileSync(join(REPO, "systemd/tswg@.service")));
      writeFileSync(join(units, "tswg-signal.service"), readFileSync(join(REPO, "systemd/tswg-signal.service")));
      // verify insists that `tswg` is found where systemd searches (/usr/local/bin ...): give it one
      // in a private mount namespace, so the machine's own /usr/local/bin is never touched.
      const script = `mount -t tmpfs tmpfs /usr/local/bin && ln -s ${TSWG_BIN} /usr/local/bin/tswg && exec systemd-analyze verify ${units}/tswg@wg0.service ${units}/tswg-signal.service`;
      const out = execFileSync("unshare", ["--mount", "--propagation", "private", "sh", "-c", script], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
      expect(out).toBe("");
    } finally {
      rmSync(units, { recursive: true, force: true });
    }
  });
});
