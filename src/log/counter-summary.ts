/**
 * A summary of event counters (dropped packets by reason) logged once per interval, only when
 * something happened: under attack an operator at the default level sees
 * "dropped 82314 datagrams in the last 10 s: 80000 bad-mac1, 2314 no-route" instead of nothing,
 * and debug logging needs no line per event.
 */
import type { Logger } from "./logger.js";

export interface CounterSummaryOptions {
  /** Current totals by reason (monotonic counters). */
  read: () => Record<string, number>;
  log: Logger;
  /** What is counted, for the message ("datagrams"). */
  what: string;
  /** Default 10000 ms. */
  intervalMs?: number;
}

/** Formats the growth between two readings; null when nothing grew. */
export function describeGrowth(before: Record<string, number>, after: Record<string, number>, what: string, seconds: number): string | null {
  const grown = Object.entries(after)
    .map(([reason, n]) => [reason, n - (before[reason] ?? 0)] as const)
    .filter(([, d]) => d > 0)
    .sort((a, b) => b[1] - a[1]);
  if (grown.length === 0) return null;
  const total = grown.reduce((s, [, d]) => s + d, 0);
  return `dropped ${total} ${what} in the last ${seconds} s: ${grown.map(([r, d]) => `${d} ${r}`).join(", ")}`;
}

/** Starts logging summaries at info level; returns the function that stops it. */
export function startCounterSummary(opts: CounterSummaryOptions): () => void {
  const intervalMs = opts.intervalMs ?? 10_000;
  let last = { ...opts.read() };
  const timer = setInterval(() => {
    const now = { ...opts.read() };
    const line = describeGrowth(last, now, opts.what, Math.round(intervalMs / 100) / 10);
    last = now;
    if (line !== null) opts.log.info(line);
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
