// `npm run test:kernel`: builds the kernel VM image from Debian packages (cached in
// .cache/kernel-vm), boots it under QEMU, runs test/kernel/vm/run.sh inside, and checks the
// RESULT lines. Exit code 0 only when every case passed. Results also go to results/kernel-vm.json.
// Options: --cases proxy,nftables,...   --verbose (console output as it comes)
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildKernelVm, kernelVmUnavailableReason, runKernelVm } from "../../../dist/testbed/kernel-vm.js";

const root = process.cwd();
const args = process.argv.slice(2);
const verbose = args.includes("--verbose");
const cases = args.includes("--cases") ? args[args.indexOf("--cases") + 1] : process.env.TSWG_VM_CASES ?? "";
const why = kernelVmUnavailableReason();
if (why !== null) {
  console.error(`test:kernel: cannot run: ${why}`);
  process.exit(1);
}
const cacheDir = join(root, ".cache/kernel-vm");
const t0 = Date.now();
const image = buildKernelVm({ cacheDir });
const buildMs = Date.now() - t0;
const envFile = join(cacheDir, "env");
rmSync(envFile, { force: true });
const settings = [];
if (cases !== "") settings.push(`export TSWG_VM_CASES=${cases.replace(/[^a-z0-9,-]/g, "")}`);
if (process.env.TSWG_VM_DEBUG) settings.push("export TSWG_VM_DEBUG=1");
if (process.env.TSWG_VM_XFER_BYTES) settings.push(`export TSWG_VM_XFER_BYTES=${Number(process.env.TSWG_VM_XFER_BYTES)}`);
writeFileSync(envFile, settings.join("\n") + "\n");
console.log(`test:kernel: kernel ${image.release}, image ready in ${(buildMs / 1000).toFixed(1)} s; booting`);
const run = await runKernelVm(image, {
  shareDir: root,
  script: "test/kernel/vm/run.sh",
  timeoutMs: 30 * 60_000,
  onOutput: verbose ? (s) => process.stdout.write(s) : undefined,
});
const results = [];
for (const line of run.output.split("\n")) {
  const m = /^RESULT (.*)$/.exec(line.trim());
  if (m) results.push(JSON.parse(m[1]));
}
mkdirSync(join(root, "results"), { recursive: true });
writeFileSync(join(root, "results/kernel-vm.json"), JSON.stringify({ kernel: image.release, bootToPowerOffS: run.durationMs / 1000, results }, null, 2) + "\n");
let failed = run.exitCode !== 0 || results.length === 0;
for (const r of results) {
  const { name, ok, logA, logB, ...detail } = r;
  console.log(`${ok ? "ok  " : "FAIL"} ${name} ${JSON.stringify(detail)}`);
  if (!ok) {
    failed = true;
    if (logA) console.log(`  --- log A ---\n${logA}`);
    if (logB) console.log(`  --- log B ---\n${logB}`);
  }
}
if (run.exitCode !== 0 && !verbose) console.log(`--- VM console (last 60 lines) ---\n${run.output.split("\n").slice(-60).join("\n")}`);
console.log(`test:kernel: VM ran ${(run.durationMs / 1000).toFixed(1)} s (exit ${run.exitCode}${run.timedOut ? ", timed out" : ""}); ${failed ? "FAILED" : "all passed"}`);
process.exit(failed ? 1 : 0);
