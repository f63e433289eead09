/**
 * Rate-limit decisions against the real Redis (issue 6, cost target of issue 8): the gateway's own limiter
 * (`GatewayRateLimiter.consume`, planning, the one EVALSHA round trip, the RateLimit fields) on a request with
 * a principal, tenant, server and tool budget, measured one at a time (latency) and with many in flight
 * (decisions per second over the one ioredis connection), and the same in memory (no REDIS_URL) for comparison.
 *
 * A benchmark, not a test: it prints figures and asserts nothing about time. Keys are made up per run and
 * expire by themselves within a minute.
 *
 * Its options are USAGE below (`npm run bench:ratelimit -- --help`).
 */
import { randomUUID } from 'node:crypto';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { PinoLogger } from 'nestjs-pino';
import type { Principal } from '../src/auth/principal';
import { loadConfig } from '../src/config/config';
import { createLogger } from '../src/logging/logger';
import { GatewayRateLimiter } from '../src/ratelimit/gateway-rate-limiter';
import { RateLimitStats } from '../src/ratelimit/rate-limit-stats';
import type { KeyValueStore } from '../src/redis/key-value-store';
import { MemoryStore } from '../src/redis/memory-store';
import { RedisStore } from '../src/redis/redis-store';
import type { RateLimitRequest } from '../src/traffic/rate-limiter';
import { parseCommandLine, runScript, wholeNumber } from './command-line';

const USAGE =
  'Usage: npm run bench:ratelimit -- [--redis redis://127.0.0.1:6379] [--decisions 20000] [--concurrency 64]\n';

async function main(): Promise<void> {
  const { values } = parseCommandLine({
    options: {
      redis: { type: 'string', default: 'redis://127.0.0.1:6379' },
      decisions: { type: 'string', default: '20000' },
      concurrency: { type: 'string', default: '64' },
    },
  });
  const DECISIONS = wholeNumber(values.decisions, 'decisions', 1);
  const CONCURRENCY = wholeNumber(values.concurrency, 'concurrency', 1);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-ratelimit-'));
  const policyFile = path.join(dir, 'policy.json');
  writeFileSync(
    policyFile,
    JSON.stringify({ servers: { bench: { rate: '1000000/1m', tools: { echo: { rate: '1000000/1m', cost: 2 } } } } }),
  );
  const config = loadConfig({
    RATE_LIMIT_FILE: policyFile,
    RATE_LIMIT_PRINCIPAL: '1000000/1m',
    RATE_LIMIT_TENANT: '1000000000/1m',
  });
  const logger = createLogger({ logLevel: 'silent' });
  const pino = new PinoLogger({ pinoHttp: { logger } });
  const tenant = randomUUID();
  const principals: Principal[] = Array.from({ length: 1000 }, () => ({
    tid: tenant,
    oid: randomUUID(),
    clientId: 'bench',
    appOnly: false,
    scopes: [],
    roles: [],
  }));
  const requestOf = (i: number): RateLimitRequest => ({
    principal: principals[i % principals.length]!,
    surface: 'server',
    method: 'tools/call',
    server: { id: 'bench', slug: 'bench' },
    tool: 'echo',
  });

  const rows: Record<string, string | number>[] = [];
  for (const [name, open] of [
    ['redis', () => RedisStore.connect(values.redis, logger)],
    ['memory', () => Promise.resolve(new MemoryStore())],
  ] as [string, () => Promise<KeyValueStore>][]) {
    const store = await open();
    const stats = new RateLimitStats();
    const limiter = new GatewayRateLimiter(config, store, stats, pino);
    try {
      for (let i = 0; i < 500; i++) await limiter.consume(requestOf(i)); // warm-up (and the script load)
      const latencies: number[] = [];
      for (let i = 0; i < Math.min(DECISIONS, 5000); i++) {
        const start = performance.now();
        await limiter.consume(requestOf(i));
        latencies.push(performance.now() - start);
      }
      latencies.sort((a, b) => a - b);
      const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!;
      let next = 0;
      const started = performance.now();
      const cpuStart = process.cpuUsage();
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (next < DECISIONS) await limiter.consume(requestOf(next++));
        }),
      );
      const seconds = (performance.now() - started) / 1000;
      const cpu = process.cpuUsage(cpuStart);
      const refused = stats.snapshot().decisions.filter((d) => d.outcome === 'refused').length;
      rows.push({
        store: name,
        'p50 ms': q(0.5).toFixed(3),
        'p99 ms': q(0.99).toFixed(3),
        [`decisions/s (${CONCURRENCY} in flight)`]: Math.round(DECISIONS / seconds),
        'gateway CPU µs/decision': Math.round((cpu.user + cpu.system) / DECISIONS),
        'refused (should be 0)': refused,
        fallbacks: stats.snapshot().redisFallbacks,
      });
    } finally {
      limiter.onModuleDestroy();
      await store.close();
    }
  }
  for (const row of rows) process.stdout.write(`${JSON.stringify(row)}\n`);
  rmSync(dir, { recursive: true, force: true });
}

runScript('bench:ratelimit', USAGE, main);
