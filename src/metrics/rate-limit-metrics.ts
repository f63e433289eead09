import { Counter, Gauge, type Registry } from 'prom-client';
import { decisionSlot, type RateLimitDecision } from '../ratelimit/rate-limit-stats';
import { BoundedLabels } from './bounded-labels';
import { type CounterCell, HotCounter } from './hot-metrics';

/** Policies come from configuration; the cap only guards against a configuration generating names. */
const POLICY_LABELS = 100;

/**
 * What the rate limiter reports. It calls `decision` once per policy checked
 * (or once per request with the deciding policy), `redisUnavailable` when it
 * falls back and `redisRecovered` when Redis answers again.
 *
 * `ratelimit_redis_up` exists only where the limiter counts in Redis: without REDIS_URL (in-process stores) or with
 * rate limits off no Redis is asked, so none is up or down, and a 1 there (which it read) said what was not so.
 */
export class RateLimitMetrics {
  private readonly decisions: HotCounter;
  /** Policy label → one cell per outcome × store: the limiter reports on every request. */
  private readonly cells = new Map<string, (CounterCell | undefined)[]>();
  private readonly fallbacks: Counter;
  private readonly redisUp?: Gauge;
  private readonly policies = new BoundedLabels(POLICY_LABELS);

  constructor(registry: Registry, prefix: string, countsInRedis: boolean) {
    const registers = [registry];
    this.decisions = new HotCounter(
      `${prefix}ratelimit_decisions_total`,
      'Rate-limit decisions by policy, outcome (allowed, refused) and source (redis; memory: no REDIS_URL; ' +
        "insurance: this replica's share while Redis is unavailable; fail_closed: refused while Redis is " +
        'unavailable; ip: the per-address limit before the token check)',
      ['policy', 'outcome', 'source'],
      registry,
    );
    this.fallbacks = new Counter({
      name: `${prefix}ratelimit_redis_fallbacks_total`,
      help: 'Times the rate limiter lost Redis and fell back (insurance limiter or fail-closed)',
      registers,
    });
    if (!countsInRedis) return;
    this.redisUp = new Gauge({
      name: `${prefix}ratelimit_redis_up`,
      help:
        '1 while rate limits are counted in Redis, 0 while the limiter runs on its fallback ' +
        '(absent without REDIS_URL or with rate limits off)',
      // Under `--workers`: 1 only while every worker counts in Redis.
      aggregator: 'min',
      registers,
    });
    this.redisUp.set(1);
  }

  decision({ policy, outcome, source }: RateLimitDecision): void {
    const label = this.policies.label('', policy, true);
    let cells = this.cells.get(label);
    if (!cells) {
      cells = [];
      this.cells.set(label, cells);
    }
    const slot = decisionSlot(outcome, source);
    let cell = cells[slot];
    if (!cell) {
      cell = this.decisions.cell([label, outcome, source]);
      cells[slot] = cell;
    }
    cell.value++;
  }

  redisUnavailable(): void {
    this.fallbacks.inc();
    this.redisUp?.set(0);
  }

  redisRecovered(): void {
    this.redisUp?.set(1);
  }
}
