import { Inject, Injectable } from '@nestjs/common';
import { InjectPinoLogger, PinoLogger } from 'nestjs-pino';
import { DomainError } from '../common/domain-error';
import type { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { remainingAt } from './budget';
import { GatewayRateLimiter } from './gateway-rate-limiter';
import type { BucketState } from './local-buckets';
import { KEY_PREFIX, principalKeyPrefix, sharedBuckets, tenantKey } from './rate-limit-plan';
import type { BucketView, Ratelimits } from './ratelimits.dto';

const PEEK_TIMEOUT_MS = 2_000;

/** The admin view of one caller's budgets, as the limiter holds them right now. */
@Injectable()
export class RatelimitsService {
  /** The budgets every caller shares (`scope: all`): each caller is counted against them too. */
  private readonly shared: { keys: string[]; prefixes: string[] };

  constructor(
    private readonly limiter: GatewayRateLimiter,
    @Inject(APP_CONFIG) config: AppConfig,
    @InjectPinoLogger(RatelimitsService.name) private readonly logger: PinoLogger,
  ) {
    this.shared = sharedBuckets(config.rateLimit);
  }

  async bucketsOf(principal: string): Promise<Ratelimits> {
    const prefix = principalKeyPrefix(principal);
    const tenant = tenantKey(principal.split(':', 1)[0]!);
    const prefixes = [prefix, ...this.shared.prefixes];
    const keys = [tenant, ...this.shared.keys];
    const redis = this.limiter.redisBuckets;
    let states: Map<string, BucketState>;
    if (redis) {
      try {
        states = await withTimeout(redis.peek(prefixes, keys), PEEK_TIMEOUT_MS);
      } catch (error) {
        this.logger.warn({ err: error }, 'reading rate-limit buckets from Redis failed');
        throw new DomainError('service_unavailable', 'Redis does not answer; the shared buckets cannot be read now');
      }
    } else {
      states = this.limiter.localBuckets.peek(prefixes, keys);
    }
    const buckets: BucketView[] = [...states].map(([key, state]) => {
      const own = key.startsWith(prefix);
      return {
        policy: key === tenant ? 'tenant' : own ? key.slice(prefix.length) : key.slice(KEY_PREFIX.length),
        scope: key === tenant ? 'tenant' : own ? 'principal' : 'all',
        quota: state.count,
        windowSeconds: Math.round(state.windowMs / 1000),
        used: Math.round(state.level * 1000) / 1000,
        remaining: remainingAt(state.level, state.count),
        fullInSeconds: Math.ceil((state.level * state.windowMs) / state.count / 1000),
      };
    });
    buckets.sort((a, b) => a.policy.localeCompare(b.policy) || a.scope.localeCompare(b.scope));
    return { principal, store: redis ? 'redis' : 'memory', buckets };
  }
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
