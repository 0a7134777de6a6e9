/**
 * The network stack addon links Debian's liblwip; a prebuilt copy installed where that library
 * is missing must leave tswg working with the stack unavailable and a reason that names the fix.
 * The library is hidden in a private mount namespace (a bind mount of /dev/null over it).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { NETSTACK_ADDON_PATH } from "../../src/netstack/addon.js";
import { REPO } from "../interop/nodes.js";

/** The liblwip file the built addon resolves to, or null. */
function lwipLibrary(): string | null {
  if (!existsSync(NETSTACK_ADDON_PATH)) return null;
  const m = /liblwip\.so[.\d]* => (\S+)/u.exec(execFileSync("ldd", [NETSTACK_ADDON_PATH], { encoding: "utf8" }));
  return m?.[1] ?? null;
}

const lib = process.getuid?.() === 0 ? lwipLibrary() : null;

describe.skipIf(lib === null)("the network stack addon where liblwip is missing", () => {
  it("is unavailable with a reason naming the package, while the native addon still loads", () => {
    const script = [
      `const s = await import(${JSON.stringify(`${REPO}/dist/netstack/addon.js`)});`,
      `const n = await import(${JSON.stringify(`${REPO}/dist/native/load.js`)});`,
      "console.log(JSON.stringify({ stack: s.loadNetstackAddon().reason, native: n.loadNative().reason }));",
    ].join("\n");
    const r = spawnSync("unshare", ["-m", "sh", "-c", `mount --bind /dev/null "$0" && exec "${process.execPath}" --input-type=module -e "$1"`, lib!, script], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { stack: string | null; native: string | null };
    expect(out.stack).toMatch(/^the network stack needs lwIP, which is not installed \(apt-get install liblwip0\): .*liblwip\.so/);
    expect(out.stack).not.toContain("; "); // one reason, not the same one per file
    expect(out.native).toBeNull();
  });
});
