import type { OnRedisDown } from './rate-limit-policy';

/**
 * One budget a request is counted against: a bucket holding `count` units
 * that refills continuously at `count` per `windowMs` (GCRA / token bucket,
 * stored as the level of used units and when it was last charged).
 */
export interface Budget {
  /** The policy's name in `RateLimit-Policy` / `RateLimit`: `principal`, `tenant`, `server.<slug>`, … */
  policy: string;
  /**
   * Its name in the stats and metrics where it differs, as the policy file writes it: `server.*` and `tool.*.<tool>`
   * for a server only the `*` entry covers (a label per registered slug would be unbounded). Absent: `policy`.
   */
  label?: string;
  /** Where its state lives (a Redis key, or the local map's key). */
  key: string;
  count: number;
  windowMs: number;
  onRedisDown: OnRedisDown;
}

/** One request asking for `cost` units from every budget at once: all are charged, or none. */
export interface Charge {
  budgets: Budget[];
  cost: number;
}

/** Levels (used units) of each budget after the decision, in the order of `Charge.budgets`. */
export interface ChargeResult {
  allowed: boolean;
  levels: number[];
  /** Units Redis charged beyond the cost, per budget, for this replica to spend later (src/ratelimit/budget-leases.ts). */
  granted?: number[];
}

/** Floating-point slack when comparing levels: leak arithmetic is inexact, counts are whole. */
export const EPSILON = 1e-9;

/** The level of a bucket last charged at `at` to `level`, now that `now` has come (both in ms). */
export function drained(level: number, at: number, now: number, count: number, windowMs: number): number {
  const left = level - (Math.max(0, now - at) * count) / windowMs;
  return left > 0 ? left : 0;
}

export function fits(level: number, cost: number, count: number): boolean {
  return level + cost <= count + EPSILON;
}

/** Whole units still available at this level. */
export function remainingAt(level: number, count: number): number {
  return Math.max(0, Math.floor(count - level + EPSILON));
}

/** Milliseconds until `cost` more units fit (0 when they fit now; a full window when they never will). */
export function waitFor(level: number, cost: number, count: number, windowMs: number): number {
  if (cost > count) return windowMs;
  const excess = level + cost - count;
  return excess > EPSILON ? (excess * windowMs) / count : 0;
}

/** Milliseconds until one more unit becomes available. */
export function nextUnitIn(level: number, count: number, windowMs: number): number {
  const remaining = remainingAt(level, count);
  if (remaining >= count) return 0;
  return ((level - count + remaining + 1) * windowMs) / count;
}

/** Milliseconds until the bucket is empty again (how long its state must live). */
export function drainsIn(level: number, count: number, windowMs: number): number {
  return (level * windowMs) / count;
}
