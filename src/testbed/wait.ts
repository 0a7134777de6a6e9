/**
 * Polling for a condition with a deadline, for code that waits on other processes or the network.
 */

export interface WaitForOptions {
  /** What is being waited for, used in the error message ("wireguard-go to listen"). */
  what: string;
  /** Give up after this long. Default 5000 ms. */
  timeoutMs?: number;
  /** Pause between attempts. Default 50 ms. */
  intervalMs?: number;
}

/** Thrown by {@link waitFor} when the deadline passes. */
export class WaitTimeoutError extends Error {
  constructor(
    message: string,
    readonly lastError: unknown,
  ) {
    super(message);
    this.name = "WaitTimeoutError";
  }
}

type Satisfied<T> = Exclude<T, false | null | undefined>;

/**
 * Calls `fn` until it returns something other than false, null or undefined, and returns that.
 * A throwing `fn` counts as "not yet"; its last error is quoted if time runs out. An attempt that
 * itself hangs past the deadline also ends the wait, so this never hangs.
 */
export async function waitFor<T>(fn: () => T | Promise<T>, opts: WaitForOptions): Promise<Satisfied<T>> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const intervalMs = opts.intervalMs ?? 50;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown = undefined;
  let attempts = 0;
  for (;;) {
    attempts++;
    const remaining = deadline - Date.now();
    try {
      const value = await withDeadline(Promise.resolve().then(fn), Math.max(remaining, 1));
      if (value !== false && value !== null && value !== undefined) return value as Satisfied<T>;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() >= deadline) {
      const detail = lastError === undefined ? "" : `; last error: ${lastError instanceof Error ? lastError.message : String(lastError)}`;
      throw new WaitTimeoutError(`timed out after ${timeoutMs} ms (${attempts} attempts) waiting for ${opts.what}${detail}`, lastError);
    }
    await sleep(Math.min(intervalMs, Math.max(deadline - Date.now(), 0)));
  }
}

const attemptTimedOut = new Error("the attempt did not finish before the deadline");

function withDeadline<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(attemptTimedOut), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
