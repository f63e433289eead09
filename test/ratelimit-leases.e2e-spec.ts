import { randomUUID } from 'node:crypto';
import { PinoLogger } from 'nestjs-pino';
import type { Principal } from '../src/auth/principal';
import { loadConfig } from '../src/config/config';
import { createLogger } from '../src/logging/logger';
import { GatewayRateLimiter } from '../src/ratelimit/gateway-rate-limiter';
import { RateLimitStats } from '../src/ratelimit/rate-limit-stats';
import { RedisStore } from '../src/redis/redis-store';
import type { RateLimitRequest } from '../src/traffic/rate-limiter';
import { REDIS_URL } from './support/services';

/** Budget leases (RATE_LIMIT_LEASE_PERCENT) on the real Redis, with two limiters standing for two replicas. */
describe('rate-limit budget leases (Redis)', () => {
  const logger = createLogger({ logLevel: 'silent' });
  let stores: RedisStore[];

  beforeAll(async () => {
    stores = await Promise.all([RedisStore.connect(REDIS_URL, logger), RedisStore.connect(REDIS_URL, logger)]);
  });
  afterAll(async () => {
    await Promise.all(stores.map((store) => store.close()));
  });

  /** Two replicas and a caller of their own (fresh keys each test), with these variables. */
  function replicas(env: Record<string, string>): { limiters: GatewayRateLimiter[]; request: RateLimitRequest } {
    const config = loadConfig({ REDIS_URL, RATE_LIMIT_TENANT: '1000000/1h', RATE_LIMIT_IP: 'off', ...env });
    const pino = new PinoLogger({ pinoHttp: { logger } });
    const limiters = stores.map((store) => new GatewayRateLimiter(config, store, new RateLimitStats(), pino));
    const principal: Principal = {
      tid: randomUUID(),
      oid: randomUUID(),
      clientId: 'c',
      appOnly: false,
      scopes: [],
      roles: [],
    };
    return { limiters, request: { principal, surface: 'aggregate', method: 'tools/list' } };
  }

  const remainingOf = (header: string | undefined): number => Number(/"principal";r=(\d+)/.exec(header ?? '')?.[1]);

  it('never lets the replicas together spend more than the budget, and leases only while it is half full', async () => {
    const { limiters, request } = replicas({ RATE_LIMIT_PRINCIPAL: '1000/1h', RATE_LIMIT_LEASE_PERCENT: '10' });
    let allowed = 0;
    let leastRemaining = Number.POSITIVE_INFINITY;
    // Waves of concurrent requests on both replicas, past the budget.
    for (let wave = 0; wave < 30; wave++) {
      const verdicts = await Promise.all(
        Array.from({ length: 40 }, (_, index) => Promise.resolve(limiters[index % 2]!.consume(request))),
      );
      for (const verdict of verdicts) {
        if (!verdict.allowed) continue;
        allowed++;
        leastRemaining = Math.min(leastRemaining, remainingOf(verdict.headers.RateLimit));
      }
    }
    // Leased units are charged in Redis when granted: never more than 1,000 together. Leases stop at half the
    // budget, so the second half is spent one decision at a time, to its last unit.
    expect(allowed).toBeLessThanOrEqual(1000);
    expect(allowed).toBeGreaterThanOrEqual(1000 - 2 * 100);
    expect(leastRemaining).toBe(0);
  });

  it('decides most requests of a busy caller without Redis, and tells it what it has left', async () => {
    // A day's window: what drains while the test runs stays below one unit, so each count is exact.
    const { limiters, request } = replicas({ RATE_LIMIT_PRINCIPAL: '100000/1d', RATE_LIMIT_LEASE_PERCENT: '1' });
    const limiter = limiters[0]!;
    // Each trip to Redis is one pipeline (src/ratelimit/redis-buckets.ts); these requests go one at a time.
    const trips = jest.spyOn(stores[0]!.client, 'pipeline');
    try {
      const remaining: number[] = [];
      for (let i = 0; i < 300; i++) remaining.push(remainingOf((await limiter.consume(request)).headers.RateLimit));
      // One unit fewer per request, as without leases (the units leased and not yet spent count as left).
      expect(remaining).toEqual(Array.from({ length: 300 }, (_, index) => 100_000 - 1 - index));
      expect(trips.mock.calls.length).toBeGreaterThan(0);
      expect(trips.mock.calls.length).toBeLessThan(30);
    } finally {
      trips.mockRestore();
    }
  });

  it('asks Redis for every request with RATE_LIMIT_LEASE_PERCENT=0', async () => {
    const { limiters, request } = replicas({ RATE_LIMIT_PRINCIPAL: '100000/1h', RATE_LIMIT_LEASE_PERCENT: '0' });
    const trips = jest.spyOn(stores[0]!.client, 'pipeline');
    try {
      for (let i = 0; i < 50; i++) await limiters[0]!.consume(request);
      expect(trips).toHaveBeenCalledTimes(50);
    } finally {
      trips.mockRestore();
    }
  });
});
