import { type Charge, type ChargeResult, drained, drainsIn, fits } from './budget';

export interface BucketState {
  level: number;
  at: number;
  count: number;
  windowMs: number;
}

/** A bucket and when it last went to the end of the map's order. */
interface Bucket extends BucketState {
  movedAt: number;
}

/** How stale a bucket's place in the eviction order may be. */
const REORDER_MS = 1_000;

/**
 * Budgets kept in this process: the whole limiter without Redis, the
 * insurance limiter while Redis is down, and the per-IP limit. Bounded: past
 * `maxEntries` drained buckets go first, then the least recently charged (to
 * within REORDER_MS).
 */
export class LocalBuckets {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly maxEntries = 100_000,
    private readonly clock: () => number = Date.now,
  ) {}

  get size(): number {
    return this.buckets.size;
  }

  charge({ budgets, cost }: Charge): ChargeResult {
    const now = this.clock();
    const levels = budgets.map((budget) => {
      const state = this.buckets.get(budget.key);
      return state ? drained(state.level, state.at, now, budget.count, budget.windowMs) : 0;
    });
    const allowed = budgets.every((budget, index) => fits(levels[index]!, cost, budget.count));
    if (!allowed) return { allowed, levels };
    budgets.forEach((budget, index) => {
      const level = levels[index]! + cost;
      levels[index] = level;
      const bucket = this.buckets.get(budget.key);
      if (!bucket) {
        this.buckets.set(budget.key, { level, at: now, count: budget.count, windowMs: budget.windowMs, movedAt: now });
        return;
      }
      // Changed in place: taken out and put back on every charge, a hot key rebuilt the map's table (and a bucket)
      // per request, and the tables outlived young collections.
      bucket.level = level;
      bucket.at = now;
      bucket.count = budget.count;
      bucket.windowMs = budget.windowMs;
      if (now - bucket.movedAt < REORDER_MS) return;
      // Moved to the end (at most once per REORDER_MS), so the map's order stays oldest-charged first for eviction.
      bucket.movedAt = now;
      this.buckets.delete(budget.key);
      this.buckets.set(budget.key, bucket);
    });
    if (this.buckets.size > this.maxEntries) this.evict(now);
    return { allowed, levels };
  }

  /** Current state of the buckets whose key starts with one of `prefixes` or equals one of `keys`. */
  peek(prefixes: readonly string[], keys: readonly string[]): Map<string, BucketState> {
    const now = this.clock();
    const found = new Map<string, BucketState>();
    const add = (key: string, state: Bucket) => {
      const level = drained(state.level, state.at, now, state.count, state.windowMs);
      if (level > 0) found.set(key, { level, at: now, count: state.count, windowMs: state.windowMs });
    };
    for (const [key, state] of this.buckets) {
      if (prefixes.some((prefix) => key.startsWith(prefix))) add(key, state);
    }
    for (const key of keys) {
      const state = this.buckets.get(key);
      if (state) add(key, state);
    }
    return found;
  }

  clear(): void {
    this.buckets.clear();
  }

  /** Down to 90 % of the bound, so a flood of new keys pays for a sweep once per many inserts, not on each. */
  private evict(now: number): void {
    const target = Math.floor(this.maxEntries * 0.9);
    for (const [key, state] of this.buckets) {
      if (now - state.at >= drainsIn(state.level, state.count, state.windowMs)) this.buckets.delete(key);
    }
    for (const key of this.buckets.keys()) {
      if (this.buckets.size <= target) break;
      this.buckets.delete(key);
    }
  }
}
