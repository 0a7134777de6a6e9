/**
 * Running the firewall tools (nft, iptables-restore) for the port-sharing modes: one process per
 * whole-ruleset change, so every change is one transaction.
 */
import { spawn } from "node:child_process";

export interface ToolResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs argv with `input` on stdin; never rejects (a missing binary is code null with the reason in stderr). */
export function runTool(argv: readonly string[], input = "", timeoutMs = 30_000): Promise<ToolResult> {
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.stdin.on("error", () => {});
    child.on("error", (e) => {
      clearTimeout(timer);
      resolve({ code: null, stdout, stderr: `${argv[0]}: ${e.message}` });
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(input);
  });
}

/** Like runTool, but throws with the tool's message when it fails. */
export async function mustRunTool(argv: readonly string[], input = ""): Promise<string> {
  const r = await runTool(argv, input);
  if (r.code !== 0) throw new Error(`${argv.join(" ")} failed: ${r.stderr.trim() || `exit ${r.code}`}`);
  return r.stdout;
}
