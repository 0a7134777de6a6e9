// `npm install` runs this: build the native addon (build/Release/tswg_native.node) with node-gyp.
// Without a C++ toolchain the build fails and the install still succeeds: every command that needs
// no TUN device works, and `tswg up` says that it needs the addon. TSWG_REQUIRE_NATIVE=1 makes a
// failed build fail the install instead.
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
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
