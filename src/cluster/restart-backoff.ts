export interface RestartBackoffOptions {
  /** Wait before the second restart in a row of a worker that did not stay up; doubles each time after. */
  initialMs: number;
  /** The longest wait. */
  maxMs: number;
  /** A worker that ran this long before it exited was healthy: it is restarted at once, and the count starts over. */
  stableAfterMs: number;
}

export const DEFAULT_RESTART_BACKOFF: RestartBackoffOptions = {
  initialMs: 1_000,
  maxMs: 30_000,
  stableAfterMs: 30_000,
};

/**
 * When to restart one worker after its process exited. A worker that ran for
 * a while is replaced at once; one that keeps dying soon after it starts (a
 * dependency down, a bad deploy) is restarted ever more slowly instead of in
 * a tight loop.
 */
export class RestartBackoff {
  private quickExits = 0;

  constructor(private readonly options: RestartBackoffOptions = DEFAULT_RESTART_BACKOFF) {}

  /** The delay before restarting a worker that was up `upMs` (0 when it never started serving). */
  delayAfter(upMs: number): number {
    if (upMs >= this.options.stableAfterMs) this.quickExits = 0;
    const delay =
      this.quickExits === 0 ? 0 : Math.min(this.options.maxMs, this.options.initialMs * 2 ** (this.quickExits - 1));
    this.quickExits += 1;
    return delay;
  }
}
