// `npm install` runs this: build the native addon (build/Release/tswg_native.node) with node-gyp.
// Without a C++ toolchain the build fails, and the install still succeeds: tswg then moves
// packets in TypeScript (`tswg show` says "data path: portable"). TSWG_REQUIRE_NATIVE=1 makes a
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
    `tswg: the native addon was not built (${why}); building it needs a C++ compiler, make and python3.\n` +
      "tswg works without it on the portable data path (`tswg show` says \"data path: portable\").\n",
  );
  if (process.env.TSWG_REQUIRE_NATIVE === "1") process.exit(1);
}
