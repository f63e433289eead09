import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import Redis from 'ioredis';
import { PinoLogger } from 'nestjs-pino';
import type { Principal } from '../auth/principal';
import { loadConfig } from '../config/config';
import { createLogger } from '../logging/logger';
import type { KeyValueStore } from '../redis/key-value-store';
import { MemoryStore } from '../redis/memory-store';
import { RedisStore } from '../redis/redis-store';
import { eventually } from '../../test/support/eventually';
import { REDIS_URL } from '../../test/support/services';
import { StallableProxy } from '../../test/support/stallable-proxy';
import { hostPortOf, withHostPort } from '../../test/support/tcp-proxy';
import { GatewayRateLimiter } from './gateway-rate-limiter';
import { RateLimitStats } from './rate-limit-stats';

const TID = '11111111-2222-3333-4444-555555555555';
const principal: Principal = { tid: TID, oid: 'o', clientId: 'c', appOnly: false, scopes: [], roles: [] };
const server = { id: 's', slug: 'github' };

describe('GatewayRateLimiter (no REDIS_URL)', () => {
  let dir: string;
  let stats: RateLimitStats;
  let limiter: GatewayRateLimiter;

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'rl-limiter-'));
    const file = path.join(dir, 'policy.json');
    writeFileSync(
      file,
      JSON.stringify({ servers: { github: { rate: '3/1h', tools: { search: { rate: '100/1d', cost: 2 } } } } }),
    );
    const config = loadConfig({ RATE_LIMIT_FILE: file, RATE_LIMIT_PRINCIPAL: '10/1h' });
    stats = new RateLimitStats();
    const logger = new PinoLogger({ pinoHttp: { logger: createLogger({ logLevel: 'silent' }) } });
    limiter = new GatewayRateLimiter(config, new MemoryStore(), stats, logger);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('names the tightest budget when it allows and the one that refused when it refuses', async () => {
    const call = () => limiter.consume({ principal, surface: 'server', server, method: 'tools/call', tool: 'search' });
    const first = await call();
    expect(first).toMatchObject({ allowed: true, policy: 'server.github' });
    expect(first.headers.RateLimit).toMatch(
      /^"principal";r=8;t=\d+, "tenant";r=\d+;t=\d+, "server\.github";r=1;t=\d+, "tool\.github\.search";r=98;t=\d+$/,
    );
    const refused = await call();
    expect(refused).toMatchObject({ allowed: false, policy: 'server.github' });
    // 1 unit left of 3/h, 2 needed: one more unit is 20 minutes away.
    expect(refused.retryAfterSeconds).toBeGreaterThan(1190);
    expect(refused.retryAfterSeconds).toBeLessThanOrEqual(1200);
    expect(refused.headers.RateLimit).toContain(`"server.github";r=1;t=${refused.retryAfterSeconds}`);
    // Nothing was spent by the refusal: the principal still has 8.
    const other = await limiter.consume({ principal, surface: 'aggregate', method: 'tools/list' });
    expect(other.headers.RateLimit).toMatch(/^"principal";r=7;/);
    expect(stats.snapshot().decisions).toEqual(
      expect.arrayContaining([
        { policy: 'server.github', outcome: 'allowed', source: 'memory', count: 1 },
        { policy: 'server.github', outcome: 'refused', source: 'memory', count: 1 },
      ]),
    );
  });

  it('counts the decisions of servers only the * policy covers under server.*, and names each server to its caller', async () => {
    const file = path.join(dir, 'any-server.json');
    writeFileSync(file, JSON.stringify({ servers: { '*': { rate: '2/1h', tools: { search: { rate: '1/1d' } } } } }));
    const anyServer = new GatewayRateLimiter(
      loadConfig({ RATE_LIMIT_FILE: file }),
      new MemoryStore(),
      stats,
      new PinoLogger({ pinoHttp: { logger: createLogger({ logLevel: 'silent' }) } }),
    );
    const verdicts = [];
    for (const slug of ['one', 'two', 'two', 'two']) {
      const server = { id: slug, slug };
      verdicts.push(await anyServer.consume({ principal, surface: 'server', server, method: 'tools/call', tool: 'x' }));
    }
    expect(verdicts.map((verdict) => [verdict.allowed, verdict.policy])).toEqual([
      [true, 'server.one'],
      [true, 'server.two'],
      [true, 'server.two'],
      [false, 'server.two'],
    ]);
    expect(verdicts[0]!.headers['RateLimit-Policy']).toContain('"server.one";q=2;w=3600');
    expect(stats.snapshot().decisions).toEqual([
      { policy: 'server.*', outcome: 'allowed', source: 'memory', count: 3 },
      { policy: 'server.*', outcome: 'refused', source: 'memory', count: 1 },
    ]);

    // Its tool budget, the tightest here, is counted as the file writes it too.
    const three = { id: 'three', slug: 'three' };
    const search = await anyServer.consume({
      principal,
      surface: 'server',
      server: three,
      method: 'tools/call',
      tool: 'search',
    });
    expect(search).toMatchObject({ allowed: true, policy: 'tool.three.search' });
    expect(stats.snapshot().decisions).toContainEqual({
      policy: 'tool.*.search',
      outcome: 'allowed',
      source: 'memory',
      count: 1,
    });
  });

  it('answers free requests without headers or decisions', async () => {
    expect(await limiter.consume({ principal, surface: 'aggregate', method: 'ping' })).toEqual({
      allowed: true,
      headers: {},
    });
    expect(stats.snapshot().decisions).toEqual([]);
  });

  it('allows rather than fail when a listener of the stats throws', async () => {
    stats.onDecision(() => {
      throw new Error('metrics bug');
    });
    expect((await limiter.consume({ principal, surface: 'aggregate', method: 'initialize' })).allowed).toBe(true);
  });
});

describe('GatewayRateLimiter while Redis is down', () => {
  // A client that never connects: every decision falls to the insurance limiter.
  const client = new Redis({ lazyConnect: true, enableOfflineQueue: false });
  const store = { client } as KeyValueStore;
  afterAll(() => client.disconnect());

  function limiter(env: Record<string, string>): GatewayRateLimiter {
    const logger = new PinoLogger({ pinoHttp: { logger: createLogger({ logLevel: 'silent' }) } });
    return new GatewayRateLimiter(
      loadConfig({ RATE_LIMIT_PRINCIPAL: '12/1h', ...env }),
      store,
      new RateLimitStats(),
      logger,
    );
  }

  async function allowedOf(insurance: GatewayRateLimiter): Promise<number> {
    let allowed = 0;
    while ((await insurance.consume({ principal, surface: 'aggregate', method: 'tools/list' })).allowed) allowed += 1;
    return allowed;
  }

  it("allows each replica its share of a budget: RATE_LIMIT_REPLICAS' share", async () => {
    expect(await allowedOf(limiter({ RATE_LIMIT_REPLICAS: '3' }))).toBe(4);
  });

  it("allows each worker of serve --workers N its share of its replica's share, so that the workers together keep to it", async () => {
    expect(await allowedOf(limiter({ RATE_LIMIT_REPLICAS: '3', WORKERS: '2' }))).toBe(2);
    expect(await allowedOf(limiter({ WORKERS: '4' }))).toBe(3);
  });
});

describe('GatewayRateLimiter when Redis holds its answers back', () => {
  const relay = new StallableProxy(hostPortOf(REDIS_URL).host, hostPortOf(REDIS_URL).port);
  let store: RedisStore;

  beforeAll(async () => {
    await relay.start();
    // The client's bound on commands shorter than the limiter's own wait: the command timeout comes first.
    store = await RedisStore.connect(withHostPort(REDIS_URL, relay.port), createLogger({ logLevel: 'silent' }), {
      commandTimeoutMs: 50,
    });
  });

  afterAll(async () => {
    relay.resume();
    await store.close();
    await relay.stop();
  });

  it('takes a charge the Redis client timed out for a timeout of its own: the insurance limiter decides, and a probe finds Redis again', async () => {
    const stats = new RateLimitStats();
    const limiter = new GatewayRateLimiter(
      loadConfig({ RATE_LIMIT_PRINCIPAL: '12/1h', RATE_LIMIT_REDIS_TIMEOUT_MS: '10000' }),
      store,
      stats,
      new PinoLogger({ pinoHttp: { logger: createLogger({ logLevel: 'silent' }) } }),
    );
    const caller: Principal = { ...principal, oid: randomUUID() };
    relay.stall();
    const verdict = await limiter.consume({ principal: caller, surface: 'aggregate', method: 'tools/list' });
    relay.resume();
    expect(verdict.allowed).toBe(true);
    expect(stats.snapshot()).toMatchObject({ redis: 'down', redisFallbacks: 1 });
    // No decision asks Redis meanwhile: the limiter's probe is what tells it Redis answers again.
    await eventually(() => expect(stats.redisState).toBe('up'));
    limiter.onModuleDestroy();
  });
});
