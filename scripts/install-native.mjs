// `npm install` runs this. The package carries the addons prebuilt for linux-x64
// (prebuilds/, see scripts/prebuild.mjs); where the prebuilt tswg_native loads, it is used and
// nothing is compiled. Otherwise (another platform, a libc too old, a development checkout) the
// addons are built from source with node-gyp into build/Release. TSWG_BUILD_FROM_SOURCE=1 or
// `npm install --build-from-source` builds even when the prebuilt loads.
//
// Without a C++ toolchain and without a usable prebuilt the build fails and the install still
// succeeds: every command that needs no TUN device works, and `tswg up` says that it needs the
// addon. TSWG_REQUIRE_NATIVE=1 makes a failed build fail the install instead.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const platform = `${process.platform}-${process.arch}`;
const say = (text) => process.stderr.write(`tswg: ${text}\n`);

/** Loads the prebuilt addons through the package's own loaders (dist/ exists in a packed package). */
async function tryPrebuilt() {
  let native, netstack;
  try {
    native = await import("../dist/native/load.js");
    netstack = await import("../dist/netstack/addon.js");
  } catch {
    return false; // a development checkout before its first build
  }
  if (!existsSync(native.NATIVE_PREBUILT_PATH)) return false;
  const r = native.loadNativeFrom(native.NATIVE_PREBUILT_PATH);
  if (r.addon === null) {
    say(`the prebuilt native addon for ${platform} does not load here (${r.reason}); building from source`);
    return false;
  }
  say(`using the prebuilt native addon for ${platform}: TUN devices and the native data path are available`);
  const stackPath = native.NATIVE_PREBUILT_PATH.replace(/tswg_native\.node$/u, "tswg_netstack.node");
  if (existsSync(stackPath)) {
    const s = netstack.loadNetstackAddonFrom(stackPath);
    say(s.addon !== null ? "the network stack (lwIP) is available" : `the network stack is unavailable: ${s.reason}`);
  }
  return true;
}

// A git checkout builds its own sources: prebuilds/ there may be older than native/.
const checkout = existsSync(new URL("../.git", import.meta.url));
const fromSource = checkout || process.env.TSWG_BUILD_FROM_SOURCE === "1" || process.env.npm_config_build_from_source === "true";
if (!fromSource && (await tryPrebuilt())) process.exit(0);

let gyp;
try {
  gyp = [process.execPath, require.resolve("node-gyp/bin/node-gyp.js")];
} catch {
  // npm passes the node-gyp it bundles.
  gyp = process.env.npm_config_node_gyp ? [process.execPath, process.env.npm_config_node_gyp] : ["node-gyp"];
}
const r = spawnSync(gyp[0], [...gyp.slice(1), "rebuild"], { stdio: "inherit" });
if (r.status !== 0) {
  const why = r.error ? r.error.message : `node-gyp exited with ${r.status ?? r.signal}`;
  process.stderr.write(
    `tswg: the native addon was not built (${why}; see node-gyp's output above). Building it needs a C++ compiler, make,\n` +
      "python3 and Node's headers (npm's nodedir setting, or a download from nodejs.org).\n" +
      "Until it is built, `tswg up` cannot open a TUN device; show, ping, netcheck, signal, proxyguard and the key\n" +
      "commands work. Install the tools, then run `npm rebuild -g tswg`.\n",
  );
  if (process.env.TSWG_REQUIRE_NATIVE === "1") process.exit(1);
}
