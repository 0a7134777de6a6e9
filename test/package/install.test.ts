/**
 * tswg as a user installs it: `npm pack` (which puts the addons built here into prebuilds/),
 * then `npm install -g` of the tarball into a temporary prefix, and `tswg up` from that prefix
 * against a wireguard-go peer. Once with the compilers and make taken off PATH, as on a machine
 * without build tools: the prebuilt addon is used, so `tswg up` opens a TUN device and the native
 * data path moves the packets. Once building from source (`--build-from-source`), as before
 * prebuilt addons existed: the addon is compiled into build/Release and used. And once with
 * neither a compiler nor the prebuilt: the install succeeds and says why, and `tswg up` says
 * what it needs.
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { netnsUnavailableReason, TestBed, type Host } from "../helpers/netns.js";
import { newKeyPair, pingUntilReply, REPO, startNode, type WgNode } from "../interop/nodes.js";

/** What a machine without build tools lacks (Debian's build-essential and friends). */
const BUILD_TOOLS = /^(make|gmake|cc|c\+\+|gcc|g\+\+|cpp|clang.*|tcc|ld|ld\..*|(gcc|g\+\+|cpp)-.*|.*-(gcc|g\+\+|cc|c\+\+|cpp|ld)(-.*)?|c89.*|c99.*)$/;

/** A PATH directory with every command of the usual PATH except compilers, linkers and make. */
function pathWithoutBuildTools(dir: string): string {
  mkdirSync(dir);
  for (const d of (process.env.PATH ?? "/usr/bin:/bin").split(":")) {
    if (!existsSync(d)) continue;
    for (const f of readdirSync(d)) {
      if (BUILD_TOOLS.test(f) || existsSync(join(dir, f))) continue;
      symlinkSync(join(d, f), join(dir, f));
    }
  }
  return dir;
}

/**
 * Runs npm without blocking this worker: a synchronous install of a minute or two starves the
 * test runner's own messages, which it then reports as a timeout.
 */
function npm(args: string[], env: NodeJS.ProcessEnv): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("npm", args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill(), 600_000);
    child.on("error", reject);
    child.on("close", (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

const skip = await netnsUnavailableReason();

describe.skipIf(skip !== null)("npm pack, npm install -g, tswg up", () => {
  let work: string;
  let tarball: string;
  let bed: TestBed;
  let a: Host;
  let peer: WgNode;
  const ka = newKeyPair();
  const kb = newKeyPair();

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), "tswgt-pkg-"));
    // dist/ is already built (npm test builds first); --ignore-scripts keeps `prepack` from
    // rebuilding it under the feet of tests running in parallel, so its last step, copying the
    // addons built here into prebuilds/, runs by itself.
    execFileSync(process.execPath, [join(REPO, "scripts/prebuild.mjs")], { cwd: REPO, stdio: "ignore" });
    const name = execFileSync("npm", ["pack", "--ignore-scripts", "--silent", "--pack-destination", work], { cwd: REPO, encoding: "utf8" }).trim().split("\n").pop()!;
    tarball = join(work, name);
    bed = await TestBed.create("pkg");
    a = await bed.host("a");
    const b = await bed.host("b");
    await bed.link(a, b, { a: "192.168.80.1/24", b: "192.168.80.2/24" });
    peer = await startNode({
      impl: "wireguard-go",
      host: b,
      ifname: bed.ifname("p"),
      keys: kb,
      listenPort: 51851,
      addresses: ["10.80.0.2/24"],
      peers: [{ publicKey: ka.publicKey, allowedIps: ["10.80.0.1/32"] }],
    });
  }, 120_000);

  afterAll(async () => {
    await peer?.stop().catch(() => {});
    await bed?.cleanup();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("the tarball holds what runs, not the tests or vectors", () => {
    const files = execFileSync("tar", ["tzf", tarball], { encoding: "utf8" }).trim().split("\n");
    expect(files).toContain("package/bin/tswg.js");
    expect(files).toContain("package/dist/cli/main.js");
    expect(files).toContain("package/binding.gyp");
    // Every source binding.gyp names is packed, or a from-source install cannot build it.
    const gyp = readFileSync(join(REPO, "binding.gyp"), "utf8");
    const sources = [...gyp.matchAll(/"(native\/[^"]+\.cc)"/gu)].map((m) => m[1]!);
    expect(sources).toContain("native/netstack/stack.cc");
    for (const source of sources) expect(files).toContain(`package/${source}`);
    expect(files).toContain("package/native/netstack/data_blocks.h");
    expect(files).toContain("package/schema/tswg-show.schema.json");
    expect(files).toContain("package/systemd/tswg@.service");
    expect(files).toContain(`package/prebuilds/${process.platform}-${process.arch}/tswg_native.node`);
    expect(files.filter((f) => /^package\/(test|vectors|bench|src)\//.test(f))).toEqual([]);
  });

  /** Installs into a fresh prefix with `path` as PATH, brings an interface up, returns `tswg show`. */
  async function installAndUp(tag: string, path: string, extraArgs: string[] = []): Promise<{ show: string; prefix: string; output: string }> {
    const prefix = join(work, `prefix-${tag}`);
    const started = performance.now();
    const r = await npm(["install", "-g", "--prefer-offline", "--no-audit", "--no-fund", "--foreground-scripts", ...extraArgs, "--prefix", prefix, tarball], {
      ...process.env,
      PATH: path,
      TSWG_REQUIRE_NATIVE: "0",
    });
    expect(r.status, r.stderr).toBe(0);
    console.log(`npm install -g (${tag}): ${((performance.now() - started) / 1000).toFixed(1)} s`);
    const tswg = join(prefix, "bin/tswg");
    const name = bed.ifname(tag);
    const conf = join(work, `${name}.conf`);
    writeFileSync(
      conf,
      ["[Interface]", `PrivateKey = ${ka.privateKey}`, "Address = 10.80.0.1/24", "", "[Peer]", `PublicKey = ${kb.publicKey}`, "AllowedIPs = 10.80.0.2/32", "Endpoint = 192.168.80.2:51851"].join("\n") + "\n",
      { mode: 0o600 },
    );
    const env = { TSWG_RUN_DIR: work, TSWG_LOG_DIR: work, PATH: path };
    await a.exec([tswg, "up", conf, "--detach"], { env });
    try {
      await pingUntilReply(a, "10.80.0.2");
      const show = (await a.exec([tswg, "show", name], { env })).stdout;
      return { show, prefix, output: r.stdout + r.stderr };
    } finally {
      await a.exec([tswg, "down", name], { env });
    }
  }

  it("building from source with a compiler: the addon is built and moves the packets", async () => {
    const { show, prefix, output } = await installAndUp("n", process.env.PATH ?? "/usr/bin:/bin", ["--build-from-source"]);
    expect(output).not.toMatch(/using the prebuilt native addon/);
    expect(existsSync(join(prefix, "lib/node_modules/tswg/build/Release/tswg_native.node"))).toBe(true);
    // binding.gyp builds the network stack wherever lwIP's headers are installed.
    if (existsSync("/usr/include/lwip/lwip/tcp.h")) {
      expect(existsSync(join(prefix, "lib/node_modules/tswg/build/Release/tswg_netstack.node"))).toBe(true);
    }
    expect(show).toMatch(/data path: native\n/);
  }, 600_000);

  it("without build tools: the prebuilt addon is used, `tswg up` opens a TUN device and says its data path", async () => {
    const path = pathWithoutBuildTools(join(work, "path-without-build-tools"));
    expect(spawnSync("sh", ["-c", "command -v g++ || command -v make || command -v cc"], { env: { PATH: path } }).status).not.toBe(0);
    const { show, prefix, output } = await installAndUp("q", path);
    expect(output).toMatch(/using the prebuilt native addon for linux-x64/);
    expect(output).not.toMatch(/the native addon was not built/);
    expect(existsSync(join(prefix, "lib/node_modules/tswg/build/Release/tswg_native.node"))).toBe(false);
    expect(show).toMatch(/data path: native\n/);
    expect(show).toMatch(/latest handshake: /);
    // The tools that need no TUN device work too: keys, and status of another running interface.
    const tswg = join(prefix, "bin/tswg");
    const key = execFileSync(tswg, ["genkey"], { encoding: "utf8", env: { ...process.env, PATH: path } }).trim();
    expect(Buffer.from(key, "base64")).toHaveLength(32);
    const json = (await peer.spec.host.exec([tswg, "show", peer.spec.ifname, "--json"], { env: { TSWG_RUN_DIR: work, PATH: path } })).stdout;
    expect(JSON.parse(json)).toMatchObject({ interfaces: [{ name: peer.spec.ifname, public_key: kb.publicKey }] });
  }, 600_000);

  it("without build tools and without the prebuilt: the install succeeds and says why; `tswg up` says what it needs", async () => {
    // TSWG_BUILD_FROM_SOURCE=1 passes over the prebuilt, as on a platform it was not made for.
    const path = join(work, "path-without-build-tools");
    if (!existsSync(path)) pathWithoutBuildTools(path);
    const prefix = join(work, "prefix-s");
    const r = await npm(["install", "-g", "--prefer-offline", "--no-audit", "--no-fund", "--foreground-scripts", "--prefix", prefix, tarball], {
      ...process.env,
      PATH: path,
      TSWG_REQUIRE_NATIVE: "0",
      TSWG_BUILD_FROM_SOURCE: "1",
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).toMatch(/the native addon was not built/);
    expect(existsSync(join(prefix, "lib/node_modules/tswg/build/Release/tswg_native.node"))).toBe(false);
    const tswg = join(prefix, "bin/tswg");
    const name = bed.ifname("s");
    const conf = join(work, `${name}.conf`);
    writeFileSync(conf, ["[Interface]", `PrivateKey = ${ka.privateKey}`, "Address = 10.80.0.1/24"].join("\n") + "\n", { mode: 0o600 });
    // The installed prebuilt is still there; TSWG_NATIVE=0 stands for a machine where it cannot load.
    const up = await a.exec([tswg, "up", conf], { env: { TSWG_RUN_DIR: work, TSWG_LOG_DIR: work, PATH: path, TSWG_NATIVE: "0" }, check: false });
    expect(up.code).toBe(1);
    expect(up.stderr).toMatch(/needs the native addon/);
    expect((await a.ip(["link", "show", name], { check: false })).code).not.toBe(0);
  }, 600_000);
});
