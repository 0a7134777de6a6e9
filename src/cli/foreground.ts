/**
 * The one foreground loop of the long-running commands (`up`, `signal`, `proxyguard`): run until
 * SIGINT or SIGTERM (or an abort), stop cleanly, and exit hard on a second signal so a stuck
 * teardown never leaves the operator without a way out. SIGHUP may be given its own meaning
 * (reload); otherwise it stops too, like a closed terminal.
 */
import type { Logger } from "../log/logger.js";

export interface ForegroundOptions {
  log: Logger;
  /** Starts the teardown; the loop then waits for `closed`. */
  stop(): Promise<void>;
  /** Resolves when the thing has stopped for any reason (default: when `stop` settles). */
  closed?: Promise<void>;
  /** What SIGHUP does instead of stopping. */
  onReload?: () => void;
  /** Stops like SIGINT does (embedding, tests). */
  signal?: AbortSignal;
}

/** Resolves with the exit code once stopped: 0 after a clean stop, 1 if the teardown failed. */
export function runInForeground(opts: ForegroundOptions): Promise<number> {
  const { log } = opts;
  return new Promise((resolve) => {
    let requests = 0;
    let failed = false;
    let finished = false;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      process.off("SIGHUP", onHup);
      opts.signal?.removeEventListener("abort", onAbort);
      resolve(failed ? 1 : 0);
    };
    const request = (why: string): void => {
      if (++requests > 1) {
        log.warn(`${why} again: exiting without a clean teardown`);
        process.exit(1);
      }
      log.info(`${why}: stopping`);
      void opts.stop().then(
        // With `closed`, that promise says when everything is done.
        () => (opts.closed === undefined ? finish() : undefined),
        (err: unknown) => {
          // A teardown that failed half-way may never settle `closed`: do not wait for it.
          failed = true;
          log.error(`teardown failed: ${err instanceof Error ? err.message : String(err)}`);
          finish();
        },
      );
    };
    const onSignal = (sig: NodeJS.Signals): void => request(sig);
    const onHup = (): void => {
      if (opts.onReload === undefined) request("SIGHUP");
      else opts.onReload();
    };
    const onAbort = (): void => request("stop requested");
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    process.on("SIGHUP", onHup);
    void opts.closed?.then(finish);
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener("abort", onAbort, { once: true });
  });
}
