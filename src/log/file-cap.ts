/**
 * A size cap for the log file of a detached run, whose stdout and stderr are that file: when it
 * grows past the cap, its content moves to `<file>.1` (replacing the previous one) and the file
 * starts again from empty. The file is open for appending, so every writer (this process, its
 * hooks) simply continues at the new end.
 */
import { copyFileSync, fstatSync, ftruncateSync } from "node:fs";

/** Default cap: 10 MiB, so a log and its predecessor take at most 20 MiB. */
export const DEFAULT_LOG_CAP_BYTES = 10 * 1024 * 1024;
const CHECK_EVERY_BYTES = 64 * 1024;
const CHECK_EVERY_MS = 60_000;

export class LogFileCap {
  #sinceCheck = 0;
  #timer: NodeJS.Timeout;

  constructor(
    readonly path: string,
    /** A descriptor open on the file (e.g. 2, stderr). */
    readonly fd: number,
    readonly maxBytes: number = DEFAULT_LOG_CAP_BYTES,
  ) {
    // Output the process does not write itself (hooks) is caught by the periodic check.
    this.#timer = setInterval(() => this.check(), CHECK_EVERY_MS);
    this.#timer.unref();
  }

  /** Counts what was just written; checks the size every 64 KiB. */
  wrote(bytes: number): void {
    this.#sinceCheck += bytes;
    if (this.#sinceCheck >= Math.min(CHECK_EVERY_BYTES, this.maxBytes / 4)) this.check();
  }

  /** Rotates when the file is over the cap. Never throws: logging must not end the run. */
  check(): void {
    this.#sinceCheck = 0;
    try {
      if (fstatSync(this.fd).size <= this.maxBytes) return;
      copyFileSync(this.path, `${this.path}.1`);
      ftruncateSync(this.fd, 0);
    } catch {
      // a full or read-only disk: keep running, unrotated
    }
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
