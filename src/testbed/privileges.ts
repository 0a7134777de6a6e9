/**
 * Can this process build network namespaces? Tests that need them skip with the reason otherwise.
 */
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";
import { namespaceName, newBedId } from "./names.js";
import { runCommand } from "./proc.js";

export function hasRoot(): boolean {
  return typeof process.getuid === "function" && process.getuid() === 0;
}

let probe: Promise<string | null> | null = null;

/**
 * Null when namespaces can be created here; otherwise why not. The answer is computed once
 * (by creating and deleting a throw-away namespace) and cached.
 */
export function netnsUnavailableReason(): Promise<string | null> {
  probe ??= computeReason();
  return probe;
}

export async function canUseNetns(): Promise<boolean> {
  return (await netnsUnavailableReason()) === null;
}

async function computeReason(): Promise<string | null> {
  if (process.platform !== "linux") return `network namespaces need Linux (this is ${process.platform})`;
  if (!hasRoot()) return "network namespaces need root (run the tests as root, as CI does)";
  try {
    await runCommand(["ip", "-V"], { timeoutMs: 5000 });
  } catch (e) {
    return `the \`ip\` command (iproute2) is not usable: ${(e as Error).message}`;
  }
  const name = namespaceName(newBedId(), "probe", "p");
  try {
    await runCommand(["ip", "netns", "add", name], { timeoutMs: 5000 });
  } catch (e) {
    return `cannot create a network namespace: ${(e as Error).message}`;
  }
  await runCommand(["ip", "netns", "del", name], { timeoutMs: 5000, check: false });
  return null;
}

/** Those of `commands` that are not executable files on the PATH. */
export function missingCommands(commands: readonly string[]): string[] {
  const dirs = (process.env.PATH ?? "").split(delimiter).filter((d) => d !== "");
  return commands.filter((c) => !dirs.some((d) => isExecutable(join(d, c))));
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Null when NAT topologies (topology.ts) can be built here: namespaces work and `nft` is
 * installed; otherwise why not.
 */
export async function topologyUnavailableReason(): Promise<string | null> {
  const reason = await netnsUnavailableReason();
  if (reason !== null) return reason;
  const missing = missingCommands(["nft"]);
  return missing.length > 0 ? `not installed: ${missing.join(", ")} (nftables)` : null;
}
