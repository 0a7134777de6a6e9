import { promises as fs } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ConfigLocateError, DEFAULT_CONFIG_DIRS, resolveConfigPath } from "../../src/conf/locate.js";

let root: string;
let first: string;
let second: string;

beforeEach(async () => {
  root = await fs.mkdtemp(join(tmpdir(), "tswgt-locate-"));
  first = join(root, "tswg");
  second = join(root, "wireguard");
  await fs.mkdir(first, { mode: 0o700 });
  await fs.mkdir(second, { mode: 0o700 });
});

afterEach(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

const write = (path: string, mode = 0o600): Promise<void> => fs.writeFile(path, "[Interface]\n", { mode });

describe("resolveConfigPath", () => {
  it("searches /etc/tswg, then /etc/wireguard, by default", () => {
    expect(DEFAULT_CONFIG_DIRS).toEqual(["/etc/tswg", "/etc/wireguard"]);
  });

  it("finds a bare name in the first directory that has it", async () => {
    await write(join(second, "wg0.conf"));
    const opts = { searchDirs: [first, second] };
    expect(resolveConfigPath("wg0", opts)).toEqual({ path: join(second, "wg0.conf"), interfaceName: "wg0", worldAccessible: false });
    await write(join(first, "wg0.conf"));
    expect(resolveConfigPath("wg0", opts).path).toBe(join(first, "wg0.conf"));
  });

  it("lists the places searched when a name is not found", () => {
    expect(() => resolveConfigPath("wg9", { searchDirs: [first, second] })).toThrow(
      new ConfigLocateError(`no configuration for interface wg9: looked for ${join(first, "wg9.conf")}, ${join(second, "wg9.conf")}`),
    );
  });

  it("does not take a directory for a file", async () => {
    await fs.mkdir(join(first, "wg1.conf"));
    expect(() => resolveConfigPath("wg1", { searchDirs: [first] })).toThrow(/no configuration for interface wg1/);
  });

  it("uses a path with a slash as it is", async () => {
    const path = join(root, "office.conf");
    await write(path);
    const found = resolveConfigPath(path, { searchDirs: [first] });
    expect(found.path).toBe(path);
    expect(found.interfaceName).toBe("office");
  });

  it("uses a name ending in .conf as a path relative to the working directory", async () => {
    const cwd = process.cwd();
    process.chdir(root);
    try {
      await write(join(root, "home.conf"));
      expect(resolveConfigPath("home.conf", { searchDirs: [first] })).toMatchObject({ path: resolve(root, "home.conf"), interfaceName: "home" });
    } finally {
      process.chdir(cwd);
    }
  });

  it("reports a missing path", () => {
    const path = join(root, "nope.conf");
    expect(() => resolveConfigPath(path)).toThrow(`configuration file ${path} does not exist or is not a file`);
  });

  it("requires <interface>.conf names", async () => {
    for (const bad of ["wg0.txt", "sixteen-chars-xx.conf", "a b.conf", ".conf"]) {
      const path = join(root, bad);
      await write(path);
      expect(() => resolveConfigPath(path)).toThrow(/must be named <interface>\.conf/);
    }
  });

  it("refuses bare names that are not interface names", () => {
    for (const bad of ["", "sixteen-chars-xx", "wg 0", "wg0!"]) {
      expect(() => resolveConfigPath(bad, { searchDirs: [first] })).toThrow(/is neither an interface name .* nor a path to a \.conf file/);
    }
  });

  it("accepts every character wg-quick allows in a name", async () => {
    await write(join(first, "a_=+.-9.conf"));
    expect(resolveConfigPath("a_=+.-9", { searchDirs: [first] }).interfaceName).toBe("a_=+.-9");
  });

  it("flags files others can read, as wg-quick warns", async () => {
    await fs.chmod(second, 0o755);
    await write(join(second, "open.conf"), 0o644);
    expect(resolveConfigPath("open", { searchDirs: [second] }).worldAccessible).toBe(true);
    await fs.chmod(join(second, "open.conf"), 0o640);
    expect(resolveConfigPath("open", { searchDirs: [second] }).worldAccessible).toBe(false);
  });
});
