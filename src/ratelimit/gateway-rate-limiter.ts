import { Inject, Injectable, type OnModuleDestroy } from '@nestjs/common';
import { InjectPinoLogger, PinoLogger } from 'nestjs-pino';
import type { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { KEY_VALUE_STORE, type KeyValueStore } from '../redis/key-value-store';
import { isRedisCommandTimeout } from '../redis/redis-store';
import type { RateLimiter, RateLimitRequest, RateLimitVerdict } from '../traffic/rate-limiter';
import { type Charge, type ChargeResult, fits } from './budget';
import { BudgetLeases } from './budget-leases';
import { LocalBuckets } from './local-buckets';
import type { RateLimitPolicy } from './rate-limit-policy';
import { RateLimitPlanner } from './rate-limit-plan';
import { type DecisionSource, RateLimitStats } from './rate-limit-stats';
import { type BudgetReport, rateLimitHeaders, reportOf } from './ratelimit-headers';
import { RedisBuckets } from './redis-buckets';

const FREE: RateLimitVerdict = Object.freeze({ allowed: true, headers: Object.freeze({}) as Record<string, string> });
/** Pause between probes of a Redis that failed them. */
const PROBE_RETRY_MS = 500;
/** What a fail-closed policy tells the caller while Redis is down. */
const FAIL_CLOSED_RETRY_SECONDS = 5;

class RedisTimeout extends Error {
  constructor(ms: number) {
    super(`Redis did not answer a rate-limit decision within ${ms} ms`);
  }
}

/**
 * The RATE_LIMITER of McpTraffic. Budgets live in Redis when REDIS_URL is set
 * (one script call per decision); while Redis does not answer within
 * RATE_LIMIT_REDIS_TIMEOUT_MS, an in-process insurance limiter with each
 * replica's share decides, or a fail-closed policy refuses. Never throws.
 */
@Injectable()
export class GatewayRateLimiter implements RateLimiter, OnModuleDestroy {
  private readonly policy: RateLimitPolicy;
  private readonly planner: RateLimitPlanner;
  private readonly redis?: RedisBuckets;
  /** The whole limiter without Redis; the insurance limiter with it. */
  private readonly local = new LocalBuckets();
  /** Units of the shared budgets Redis already charged for this replica to spend. */
  private readonly leases: BudgetLeases;
  /** Set when Redis timed out: decisions skip it until the probe gets an answer (a hung Redis must not slow every request). */
  private suspect = false;
  private closed = false;
  /**
   * Processes sharing the budgets, each allowed its share of every budget while Redis is down: the replicas, and in
   * each the workers of `serve --workers N` (each its own insurance limiter).
   */
  private readonly processes: number;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    @Inject(KEY_VALUE_STORE) store: KeyValueStore,
    private readonly stats: RateLimitStats,
    @InjectPinoLogger(GatewayRateLimiter.name) private readonly logger: PinoLogger,
  ) {
    this.policy = config.rateLimit;
    this.processes = this.policy.replicas * Math.max(1, config.workers);
    this.planner = new RateLimitPlanner(this.policy);
    this.leases = new BudgetLeases(this.policy.leasePercent);
    if (store.client) this.redis = new RedisBuckets(store.client);
  }

  get redisBuckets(): RedisBuckets | undefined {
    return this.redis;
  }

  get localBuckets(): LocalBuckets {
    return this.local;
  }

  /** The verdict, at once when no round trip to Redis is needed (no Redis, or a lease), else a promise of it. */
  consume(request: RateLimitRequest): RateLimitVerdict | Promise<RateLimitVerdict> {
    if (!this.policy.enabled) return FREE;
    try {
      const charge = this.planner.plan(request);
      if (!charge) return FREE;
      if (!this.redis) return this.verdict(charge, this.local.charge(charge), 'memory');
      const leased = this.leases.spend(charge);
      if (leased) return this.verdict(charge, leased, 'redis');
      return this.consumeShared(charge);
    } catch (error) {
      return this.failed(error);
    }
  }

  /** The verdict on a charge no lease covers: from Redis, or without it when it does not answer in time. */
  private async consumeShared(charge: Charge): Promise<RateLimitVerdict> {
    try {
      const shared = await this.askRedis(charge);
      if (shared) return this.verdict(charge, this.leases.granted(charge, shared), 'redis');
      return this.withoutRedis(charge);
    } catch (error) {
      return this.failed(error);
    }
  }

  /** A bug here must not refuse or break MCP traffic: allow, and say so loudly. */
  private failed(error: unknown): RateLimitVerdict {
    this.logger.error({ err: error }, 'rate-limit decision failed; request allowed');
    return FREE;
  }

  /** The shared decision, or undefined when Redis cannot give one in time. */
  private async askRedis(charge: Charge): Promise<ChargeResult | undefined> {
    const redis = this.redis!;
    if (!redis.connected || this.suspect) {
      this.fellBack();
      return undefined;
    }
    const timeoutMs = this.policy.redisTimeoutMs;
    const extras = this.leases.extras(charge);
    const sent = redis.charge(charge, extras);
    let timer: NodeJS.Timeout | undefined;
    try {
      const result = await Promise.race([
        sent,
        new Promise<never>((_, reject) => {
          // Timers run before I/O in each turn of the event loop: on a busy process the answer may
          // already be waiting in the socket when the timer fires, so give it that one turn.
          timer = setTimeout(() => setImmediate(() => reject(new RedisTimeout(timeoutMs))), timeoutMs);
        }),
      ]);
      if (this.stats.redisState === 'down') this.recovered();
      return result;
    } catch (error) {
      // The client's own bound on commands (REDIS_COMMAND_TIMEOUT_MS) may be the shorter one: a timeout all the same.
      if (error instanceof RedisTimeout || isRedisCommandTimeout(error)) {
        this.refundIfApplied(sent, charge);
        if (!this.suspect) {
          this.suspect = true;
          this.probe();
        }
      }
      this.fellBack(error);
      return undefined;
    } finally {
      clearTimeout(timer);
      this.leases.settled(charge, extras);
    }
  }

  /**
   * A charge Redis did not answer in time was sent all the same, and a slow Redis applies it late, after the insurance
   * limiter decided the request and counted it: what Redis took is given back once it answers, so that the request
   * costs once, where it was decided (and a refused one nothing), not a second time in the shared budgets.
   * A command once sent cannot be recalled, and when its answer never comes (the connection lost on the way), whether
   * Redis applied it is unknown: it is left as it may be. The request may then count twice, which errs towards the
   * limit; a refund of units the command never took would hand callers units beyond their budgets.
   */
  private refundIfApplied(sent: Promise<ChargeResult>, charge: Charge): void {
    const redis = this.redis!;
    sent.then(
      (late) => {
        if (!late.allowed) return;
        redis.refund(charge, late).catch((error: unknown) => {
          this.logger.debug({ err: error }, 'a rate-limit charge Redis applied too late could not be given back');
        });
      },
      () => {
        // No answer: whether Redis applied the charge is unknown (see above).
      },
    );
  }

  /**
   * Asks Redis until it answers, off the request path. Replies come in order,
   * so the probe's answer also means the stalled decisions have been answered.
   */
  private probe(): void {
    this.redis!.ping().then(
      () => {
        this.suspect = false;
        if (this.stats.redisState === 'down') this.recovered();
      },
      () => {
        if (this.closed) return;
        setTimeout(() => this.probe(), PROBE_RETRY_MS).unref();
      },
    );
  }

  onModuleDestroy(): void {
    this.closed = true;
  }

  /**
   * Decisions go to the insurance limiter (or a fail-closed refusal) from now on: logged once per outage, whether
   * Redis stopped answering (`error`) or its connection is gone (no decision even asked it).
   */
  private fellBack(error?: unknown): void {
    if (this.stats.redisState === 'down') return;
    this.logger.warn(
      error === undefined ? { redis: 'disconnected' } : { err: error },
      'Redis is not answering rate-limit decisions: the insurance limiter decides',
    );
    this.stats.redisStateChanged('down');
  }

  private recovered(): void {
    this.logger.info('Redis answers rate-limit decisions again: budgets are shared again');
    this.stats.redisStateChanged('up');
    // The next outage starts from fresh per-replica shares.
    this.local.clear();
  }

  private withoutRedis(charge: Charge): RateLimitVerdict {
    const closed = charge.budgets.find((budget) => budget.onRedisDown === 'refuse');
    if (closed) {
      this.stats.decided({ policy: closed.label ?? closed.policy, outcome: 'refused', source: 'fail_closed' });
      const report: BudgetReport = {
        policy: closed.policy,
        quota: closed.count,
        windowSeconds: Math.round(closed.windowMs / 1000),
        remaining: 0,
        resetSeconds: FAIL_CLOSED_RETRY_SECONDS,
      };
      return {
        allowed: false,
        policy: closed.policy,
        retryAfterSeconds: FAIL_CLOSED_RETRY_SECONDS,
        headers: rateLimitHeaders([report]),
      };
    }
    const processes = this.processes;
    const share: Charge = {
      cost: charge.cost,
      budgets: charge.budgets.map((budget) => ({ ...budget, count: Math.max(1, Math.ceil(budget.count / processes)) })),
    };
    return this.verdict(share, this.local.charge(share), 'insurance');
  }

  private verdict(charge: Charge, result: ChargeResult, source: DecisionSource): RateLimitVerdict {
    const reports = charge.budgets.map((budget, index) =>
      reportOf(budget, result.levels[index]!, charge.cost, !result.allowed),
    );
    // The decisive budget by its index: its report names it to the caller, the budget's label to the stats.
    let decisive = 0;
    if (result.allowed) {
      for (let index = 1; index < reports.length; index++) {
        if (reports[index]!.remaining < reports[decisive]!.remaining) decisive = index;
      }
      const { policy, label } = charge.budgets[decisive]!;
      this.stats.decided({ policy: label ?? policy, outcome: 'allowed', source });
      return { allowed: true, policy, headers: rateLimitHeaders(reports) };
    }
    // Of the budgets the request does not fit, the one that keeps the caller waiting longest refused it.
    let longest = -1;
    charge.budgets.forEach((budget, index) => {
      const report = reports[index]!;
      if (!fits(result.levels[index]!, charge.cost, budget.count) && report.resetSeconds > longest) {
        longest = report.resetSeconds;
        decisive = index;
      }
    });
    const { policy, label } = charge.budgets[decisive]!;
    this.stats.decided({ policy: label ?? policy, outcome: 'refused', source });
    return {
      allowed: false,
      policy,
      retryAfterSeconds: Math.max(1, reports[decisive]!.resetSeconds),
      headers: rateLimitHeaders(reports),
    };
  }
}
