import { Injectable } from '@nestjs/common';
import { InjectPinoLogger, PinoLogger } from 'nestjs-pino';
import { DomainError } from '../common/domain-error';
import { remainingAt } from './budget';
import { GatewayRateLimiter } from './gateway-rate-limiter';
import type { BucketState } from './local-buckets';
import { KEY_PREFIX, principalKeyPrefix, tenantKey } from './rate-limit-plan';
import type { BucketView, Ratelimits } from './ratelimits.dto';

const PEEK_TIMEOUT_MS = 2_000;

/** The admin view of one caller's budgets, as the limiter holds them right now. */
@Injectable()
export class RatelimitsService {
  constructor(
    private readonly limiter: GatewayRateLimiter,
    @InjectPinoLogger(RatelimitsService.name) private readonly logger: PinoLogger,
  ) {}

  async bucketsOf(principal: string): Promise<Ratelimits> {
    const prefix = principalKeyPrefix(principal);
    const tenant = tenantKey(principal.split(':', 1)[0]!);
    const redis = this.limiter.redisBuckets;
    let states: Map<string, BucketState>;
    if (redis) {
      try {
        states = await withTimeout(redis.peek(prefix, [tenant]), PEEK_TIMEOUT_MS);
      } catch (error) {
        this.logger.warn({ err: error }, 'reading rate-limit buckets from Redis failed');
        throw new DomainError('service_unavailable', 'Redis does not answer; the shared buckets cannot be read now');
      }
    } else {
      states = this.limiter.localBuckets.peek(prefix, [tenant]);
    }
    const buckets: BucketView[] = [...states].map(([key, state]) => ({
      policy:
        key === tenant ? 'tenant' : key.startsWith(prefix) ? key.slice(prefix.length) : key.slice(KEY_PREFIX.length),
      quota: state.count,
      windowSeconds: Math.round(state.windowMs / 1000),
      used: Math.round(state.level * 1000) / 1000,
      remaining: remainingAt(state.level, state.count),
      fullInSeconds: Math.ceil((state.level * state.windowMs) / state.count / 1000),
    }));
    buckets.sort((a, b) => a.policy.localeCompare(b.policy));
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
