/**
 * The process's own stdout and stderr, made safe for the command line:
 *  - a reader that goes away (`tswg up … 2>&1 | head -1`) turns writes into EPIPE errors, which
 *    must never end the process: the tunnel, its teardown and its hooks carry on without output;
 *  - output queued behind a full pipe (`tswg show wg0 dump | less`) is written before the
 *    process exits, instead of being cut at the pipe's 64 KiB.
 */

type Stream = NodeJS.WriteStream;

const broken = new Set<Stream>();
let guarded = false;

/** Stops write errors on stdout/stderr from ending the process; the stream is then left alone. */
export function guardStdio(): void {
  if (guarded) return;
  guarded = true;
  for (const s of [process.stdout, process.stderr]) s.on("error", () => broken.add(s));
}

/** True once writing to the stream has failed (its reader is gone) or it was closed. */
export function isBroken(s: Stream): boolean {
  return broken.has(s) || s.destroyed || s.writableEnded;
}

/** Writes unless the reader is gone. */
export function writeTo(s: Stream, text: string | Uint8Array): void {
  if (!isBroken(s)) s.write(text);
}

/** Resolves once everything written so far to the stream has been handed to the system. */
function flushed(s: Stream): Promise<void> {
  if (isBroken(s)) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      s.off("close", done);
      s.off("error", done);
      resolve();
    };
    s.once("close", done);
    s.once("error", done);
    // Writes complete in order: the callback of an empty write comes after all earlier ones.
    s.write("", done);
  });
}

/** Waits for stdout and stderr to drain. */
export async function flushStdio(): Promise<void> {
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
}

/** Exits with `code` once stdout and stderr have drained. */
export async function exitWhenFlushed(code: number): Promise<never> {
  await flushStdio();
  process.exit(code);
}
