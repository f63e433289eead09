import { Injectable } from '@nestjs/common';

/**
 * Who decided: `redis` (the shared budgets), `memory` (no REDIS_URL: this
 * process alone), `insurance` (Redis down: this replica's share), `fail_closed`
 * (Redis down and the policy refuses), `ip` (the per-IP limit before the token check).
 */
export type DecisionSource = 'redis' | 'memory' | 'insurance' | 'fail_closed' | 'ip';

export interface RateLimitDecision {
  /**
   * The policy that refused, or the tightest one that allowed, as configured: `principal`, `tenant`, `ip`,
   * `server.<slug>` and `tool.<slug>.<tool>` for a server the file names, `server.*` and `tool.*.<tool>` for one only
   * its `*` entry covers.
   */
  policy: string;
  outcome: 'allowed' | 'refused';
  source: DecisionSource;
}

export type RedisState = 'up' | 'down';

const SOURCE_INDEX: Record<DecisionSource, number> = { redis: 0, memory: 1, insurance: 2, fail_closed: 3, ip: 4 };
const SOURCES = Object.keys(SOURCE_INDEX).length;

/** Where a decision's outcome and source count among a policy's ten: no key is built per decision. */
export function decisionSlot(outcome: RateLimitDecision['outcome'], source: DecisionSource): number {
  return (outcome === 'allowed' ? 0 : SOURCES) + SOURCE_INDEX[source];
}

type Counted = RateLimitDecision & { count: number };

export interface RateLimitStatsSnapshot {
  /** Decisions so far, one entry per (policy, outcome, source). Free requests (ping, notifications) are not decisions. */
  decisions: Counted[];
  /** Decisions Redis should have made but the insurance limiter or a fail-closed policy made instead. */
  redisFallbacks: number;
  /** Times Redis went from answering to not answering. */
  redisOutages: number;
  /** Whether the last attempt to reach Redis succeeded (always `up` without REDIS_URL). */
  redis: RedisState;
}

/**
 * The rate limiter's numbers, for the metrics: read `snapshot()` at scrape
 * time, or follow `onDecision` / `onRedisState` as they happen. Labels are
 * bounded: policies are named as configured, never by callers nor by the
 * servers registered.
 */
@Injectable()
export class RateLimitStats {
  /** By policy, then by `decisionSlot`. */
  private readonly counts = new Map<string, (Counted | undefined)[]>();
  private readonly decisionListeners = new Set<(decision: RateLimitDecision) => void>();
  private readonly redisListeners = new Set<(state: RedisState) => void>();
  private fallbacks = 0;
  private outages = 0;
  private redis: RedisState = 'up';

  decided(decision: RateLimitDecision): void {
    let slots = this.counts.get(decision.policy);
    if (!slots) this.counts.set(decision.policy, (slots = []));
    const slot = decisionSlot(decision.outcome, decision.source);
    const entry = slots[slot];
    if (entry) entry.count += 1;
    else slots[slot] = { ...decision, count: 1 };
    if (decision.source === 'insurance' || decision.source === 'fail_closed') this.fallbacks += 1;
    for (const listener of this.decisionListeners) quietly(() => listener(decision));
  }

  redisStateChanged(state: RedisState): void {
    if (state === this.redis) return;
    this.redis = state;
    if (state === 'down') this.outages += 1;
    for (const listener of this.redisListeners) quietly(() => listener(state));
  }

  get redisState(): RedisState {
    return this.redis;
  }

  snapshot(): RateLimitStatsSnapshot {
    return {
      decisions: [...this.counts.values()].flatMap((slots) => slots.flatMap((entry) => (entry ? [{ ...entry }] : []))),
      redisFallbacks: this.fallbacks,
      redisOutages: this.outages,
      redis: this.redis,
    };
  }

  /** Returns the function that stops listening. */
  onDecision(listener: (decision: RateLimitDecision) => void): () => void {
    this.decisionListeners.add(listener);
    return () => this.decisionListeners.delete(listener);
  }

  /** Returns the function that stops listening. */
  onRedisState(listener: (state: RedisState) => void): () => void {
    this.redisListeners.add(listener);
    return () => this.redisListeners.delete(listener);
  }
}

/** A listener's failure must never turn a rate-limit decision into an error. */
function quietly(call: () => void): void {
  try {
    call();
  } catch {
    // The metrics side owns its bugs; the request goes on.
  }
}
