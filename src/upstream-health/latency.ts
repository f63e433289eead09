/** How many recent successful probe latencies the percentiles are computed over. */
export const LATENCY_WINDOW = 20;

/** The window with `latencyMs` appended as the newest entry, keeping at most `size` entries. */
export function appendLatency(window: readonly number[], latencyMs: number, size: number): number[] {
  const next = [...window, latencyMs];
  return next.length > size ? next.slice(next.length - size) : next;
}

/**
 * The p-th percentile by nearest rank: the smallest value that at least p % of
 * the values do not exceed. Always one of the measured values, never an
 * interpolation; undefined for no values.
 */
export function percentile(values: readonly number[], p: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1];
}
