/**
 * `tswg up --detach`: the interface is brought up by a background copy of the command, which
 * logs to a file (capped in size, see log/file-cap.ts). Until it is up, the background process
 * also sends its warnings and errors to the command the user ran, which prints them: a problem
 * found while starting is seen where the user is looking, not only in the log file.
 */
import { spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_LOG_CAP_BYTES, LogFileCap } from "../log/file-cap.js";
import type { LogLevel } from "../log/logger.js";
import { writeTo } from "../log/stdio.js";
import { LOG_DIR } from "./runstate.js";

/** Messages from the background process to the command that started it. */
type ChildMessage = { ready: true } | { error: string } | { log: string };

function logPath(name: string, logFile: string | undefined): string {
  return logFile ?? join(LOG_DIR, `${name}.log`);
}

/** Cap of a detached run's log file: $TSWG_LOG_MAX_BYTES, else 10 MiB. */
function logCapBytes(): number {
  const v = Number(process.env.TSWG_LOG_MAX_BYTES);
  return Number.isInteger(v) && v > 0 ? v : DEFAULT_LOG_CAP_BYTES;
}

/** Starts `tswg up` again in the background and waits until it is up or has failed. */
export async function detach(argv: string[], name: string, logFile: string | undefined): Promise<number> {
  const path = logPath(name, logFile);
  if (logFile === undefined) mkdirSync(LOG_DIR, { recursive: true });
  const fd = openSync(path, "a", 0o640);
  const childArgs = [...process.execArgv, process.argv[1]!, "up", ...argv.filter((a) => a !== "--detach" && a !== "-d"), "--detached-child"];
  const child = spawn(process.execPath, childArgs, { detached: true, stdio: ["ignore", fd, fd, "ipc"] });
  closeSync(fd);
  const result = await new Promise<{ ready?: boolean; error?: string }>((resolve) => {
    child.on("message", (m: ChildMessage) => {
      if ("log" in m) writeTo(process.stderr, `${m.log}\n`);
      else resolve(m);
    });
    child.once("exit", (code) => resolve({ error: `background process exited (code ${code}); see ${path}` }));
    child.once("error", (err) => resolve({ error: err.message }));
  });
  if (result.ready) {
    child.removeAllListeners("message");
    child.unref();
    child.channel?.unref();
    process.stdout.write(`tswg: ${name} is up in the background (pid ${child.pid}), logging to ${path}\n`);
    return 0;
  }
  throw new Error(result.error ?? "background process failed");
}

/** The background side: where its log lines go, and how it reports readiness or failure. */
export interface DetachedChild {
  sink: (line: string, level: Exclude<LogLevel, "silent">) => void;
  ready(): void;
  failed(message: string): void;
}

export function detachedChild(name: string, logFile: string | undefined): DetachedChild {
  // stderr is the log file (opened by the parent for appending).
  const cap = new LogFileCap(logPath(name, logFile), 2, logCapBytes());
  let starting = true;
  const send = (m: ChildMessage) => {
    if (process.connected) process.send?.(m);
  };
  return {
    sink(line, level) {
      const text = `${line}\n`;
      writeTo(process.stderr, text);
      cap.wrote(Buffer.byteLength(text));
      if (starting && (level === "warn" || level === "error")) send({ log: line });
    },
    ready() {
      starting = false;
      send({ ready: true });
      process.disconnect?.();
    },
    failed(message) {
      starting = false;
      send({ error: message });
    },
  };
}
