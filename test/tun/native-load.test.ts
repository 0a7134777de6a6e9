import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { NATIVE_ABI_VERSION } from "../../src/native/addon.js";
import { NATIVE_ADDON_PATH, loadNative, loadNativeFrom } from "../../src/native/load.js";

describe("loadNative", () => {
  it("reports a missing build with the fix, without throwing", () => {
    const result = loadNativeFrom("/nonexistent/tswg_native.node");
    expect(result.addon).toBeNull();
    expect(result.reason).toMatch(/not built: \/nonexistent\/tswg_native\.node is missing \(run "npm rebuild"/);
  });

  it("refuses a module that is not this addon, naming the ABI mismatch", () => {
    const result = loadNativeFrom(new URL("../../package.json", import.meta.url).pathname);
    expect(result.addon).toBeNull();
    expect(result.reason).toMatch(
      new RegExp(`has ABI version undefined, expected ${NATIVE_ABI_VERSION} \\(rebuild it with "npm rebuild"\\)`),
    );
  });

  it.skipIf(!existsSync(NATIVE_ADDON_PATH))("loads the built addon once and caches it", () => {
    const first = loadNative();
    expect(first.reason).toBeNull();
    expect(first.addon?.abiVersion).toBe(NATIVE_ABI_VERSION);
    if (process.platform === "linux") expect(typeof first.addon?.Tun).toBe("function");
    expect(loadNative()).toBe(first);
  });
});
