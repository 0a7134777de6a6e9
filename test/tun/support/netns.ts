// Network namespaces for the TUN tests, and the conditions under which those tests can run.
import { execFile } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { loadNative } from "../../../src/native/load.js";

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program without a shell; never rejects. */
export function run(file: string, args: readonly string[], timeoutMs = 20_000): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: timeoutMs, encoding: "utf8" }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === "number" ? err.code : -1;
      resolve({ code, stdout, stderr: err !== null && code === -1 ? `${stderr}${err.message}` : stderr });
    });
  });
}

async function runOrThrow(file: string, args: readonly string[]): Promise<void> {
  const r = await run(file, args);
  if (r.code !== 0) throw new Error(`${file} ${args.join(" ")} failed (${r.code}): ${r.stderr.trim()}`);
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(program: string): boolean {
  return (process.env.PATH ?? "").split(":").some((dir) => dir !== "" && executable(`${dir}/${program}`));
}

/** Why tests that need a real TUN in a namespace cannot run here, or null when they can. */
export function realTunSkipReason(): string | null {
  if (process.platform !== "linux") return "not Linux";
  if (process.getuid?.() !== 0) return "not running as root";
  try {
    accessSync("/dev/net/tun", constants.R_OK | constants.W_OK);
  } catch {
    return "/dev/net/tun is not accessible";
  }
  const native = loadNative();
  if (native.addon === null) return native.reason;
  if (!onPath("ip")) return "ip (iproute2) is not installed";
  if (!onPath("ping")) return "ping (iputils-ping) is not installed";
  return null;
}

/** A namespace name unique to this process and purpose, with the tests' prefix. */
export function netnsName(purpose: string): string {
  return `tswgt-${purpose}-${process.pid}`;
}

export async function createNetns(name: string): Promise<void> {
  await deleteNetns(name);
  await runOrThrow("ip", ["netns", "add", name]);
  await runOrThrow("ip", ["-n", name, "link", "set", "dev", "lo", "up"]);
}

/** Deletes the namespace if it exists; never throws. */
export async function deleteNetns(name: string): Promise<void> {
  await run("ip", ["netns", "delete", name]);
}

/** Runs a program inside the namespace. */
export function runInNetns(netns: string, file: string, args: readonly string[], timeoutMs?: number): Promise<RunResult> {
  return run("ip", ["netns", "exec", netns, file, ...args], timeoutMs);
}
