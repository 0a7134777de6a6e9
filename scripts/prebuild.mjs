// `npm pack` runs this (prepack): put the addons built on this machine into
// prebuilds/<platform>-<arch>/, which the package ships, so that installing it on a machine
// without a compiler still gives a TUN device and the native data path. The addons use N-API
// (NAPI_VERSION in binding.gyp), whose ABI is stable across Node versions, so one build serves
// every Node >= 20 on the same platform. Builds first when build/Release has no tswg_native.
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const built = join(root, "build/Release");
const out = join(root, "prebuilds", `${process.platform}-${process.arch}`);

if (!existsSync(join(built, "tswg_native.node"))) {
  const gyp = createRequire(import.meta.url).resolve("node-gyp/bin/node-gyp.js");
  const r = spawnSync(process.execPath, [gyp, "rebuild"], { cwd: root, stdio: "inherit" });
  if (r.status !== 0) {
    process.stderr.write("prebuild: node-gyp rebuild failed; the package would carry no prebuilt addon\n");
    process.exit(1);
  }
}
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
for (const name of ["tswg_native", "tswg_kernel", "tswg_netstack"]) {
  const file = join(built, `${name}.node`);
  if (existsSync(file)) {
    copyFileSync(file, join(out, `${name}.node`));
    process.stdout.write(`prebuild: ${name}.node -> prebuilds/${process.platform}-${process.arch}/\n`);
  }
}
