import { availableParallelism } from 'node:os';
import * as path from 'node:path';
import { problemsOf } from '../../test/support/config-problems';
import { type ConfigError, loadConfig } from './config';

describe('loadConfig', () => {
  it('runs on an empty environment with the documented defaults', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      host: '0.0.0.0',
      port: 8000,
      publicUrl: 'http://localhost:8000',
      apiPrefix: '/api/v1',
      mcpPrefix: '/mcp',
      dataDir: path.resolve('.mcp-gateway'),
      database: { kind: 'embedded', directory: path.resolve('.mcp-gateway', 'pgdata') },
      redisUrl: undefined,
      auth: { mode: 'entra', audiences: [], allowedTenants: [], authorityHost: 'https://login.microsoftonline.com' },
      logLevel: 'info',
      shutdownGraceMs: 10_000,
      workers: 1,
      periodicWork: true,
    });
  });

  it('takes WORKERS as a number or auto (one per CPU), and refuses anything else naming the bounds', () => {
    expect(loadConfig({ WORKERS: '4' }).workers).toBe(4);
    expect(loadConfig({ WORKERS: '1' }, { WORKERS: '3' }).workers).toBe(3);
    expect(loadConfig({ WORKERS: 'auto' }).workers).toBe(Math.min(128, availableParallelism()));
    for (const bad of ['0', '-1', 'abc', '2.5', '129', '10000', 'AUTO']) {
      expect(problemsOf({ WORKERS: bad })).toEqual(['WORKERS: must be a whole number from 1 to 128, or auto']);
    }
  });

  it('takes TRUST_PROXY as hops or named proxies, never as "trust everyone"', () => {
    expect(loadConfig({}).trustProxy).toBeUndefined();
    expect(loadConfig({ TRUST_PROXY: '2' }).trustProxy).toBe(2);
    expect(loadConfig({ TRUST_PROXY: 'loopback, 10.0.0.0/8,fd00::/8,192.0.2.7' }).trustProxy).toEqual([
      'loopback',
      '10.0.0.0/8',
      'fd00::/8',
      '192.0.2.7',
    ]);
    for (const bad of ['true', '0', '11', 'everyone', '10.0.0.0/33', '10.0.0.1/8/9', 'fd00::/129', ',', '1.2.3']) {
      expect(problemsOf({ TRUST_PROXY: bad })).toEqual([
        'TRUST_PROXY: must be a hop count from 1 to 10, or a comma-separated list of IP addresses, CIDRs, loopback, linklocal, uniquelocal',
      ]);
    }
  });

  it('uses PostgreSQL and Redis when their URLs are set', () => {
    const config = loadConfig({
      DATABASE_URL: 'postgresql://postgres@127.0.0.1:5432/test',
      DATABASE_POOL_SIZE: '4',
      REDIS_URL: 'redis://127.0.0.1:6379',
    });
    expect(config.database).toEqual({
      kind: 'postgres',
      url: 'postgresql://postgres@127.0.0.1:5432/test',
      poolSize: 4,
      queryTimeoutMs: 10_000,
    });
    expect(config.redisUrl).toBe('redis://127.0.0.1:6379');
  });

  it('takes DATABASE_QUERY_TIMEOUT_MS from 100 ms to an hour, 10 s by default', () => {
    const database = (timeout?: string) =>
      loadConfig({ DATABASE_URL: 'postgresql://postgres@127.0.0.1:5432/test', DATABASE_QUERY_TIMEOUT_MS: timeout })
        .database;
    expect(database()).toMatchObject({ queryTimeoutMs: 10_000 });
    expect(database('100')).toMatchObject({ queryTimeoutMs: 100 });
    expect(database('3600000')).toMatchObject({ queryTimeoutMs: 3_600_000 });
    for (const value of ['0', '99', '3600001', '-1', '1.5', '1e4', '10s']) {
      expect(problemsOf({ DATABASE_QUERY_TIMEOUT_MS: value })).toEqual([
        'DATABASE_QUERY_TIMEOUT_MS: must be a whole number of milliseconds from 100 to 3600000',
      ]);
    }
  });

  it('takes REDIS_COMMAND_TIMEOUT_MS from 10 ms to 10 minutes, 2 s by default', () => {
    expect(loadConfig({}).redisCommandTimeoutMs).toBe(2_000);
    expect(loadConfig({ REDIS_COMMAND_TIMEOUT_MS: '10' }).redisCommandTimeoutMs).toBe(10);
    expect(loadConfig({ REDIS_COMMAND_TIMEOUT_MS: '600000' }).redisCommandTimeoutMs).toBe(600_000);
    for (const value of ['0', '9', '600001', '-1', '1.5', '2s']) {
      expect(problemsOf({ REDIS_COMMAND_TIMEOUT_MS: value })).toEqual([
        'REDIS_COMMAND_TIMEOUT_MS: must be a whole number of milliseconds from 10 to 600000',
      ]);
    }
  });

  it('lets overrides (CLI flags) win over the environment, and treats empty strings as unset', () => {
    const config = loadConfig({ PORT: '9000', HOST: '' }, { PORT: '9100' });
    expect(config.port).toBe(9100);
    expect(config.host).toBe('0.0.0.0');
    expect(config.publicUrl).toBe('http://localhost:9100');
  });

  it('derives Entra audiences and tenants from the client and tenant ids', () => {
    const tenant = '11111111-2222-3333-4444-555555555555';
    const client = 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee';
    const config = loadConfig({
      AZURE_TENANT_ID: tenant,
      AZURE_CLIENT_ID: client,
      PUBLIC_URL: 'https://gw.example.com/',
    });
    expect(config.auth.audiences).toEqual([client, `api://${client}`]);
    expect(config.auth.allowedTenants).toEqual([tenant]);
    expect(config.publicUrl).toBe('https://gw.example.com');
  });

  it('names each bad key and its rule on its own line', () => {
    const problems = problemsOf({ PORT: '70000', AUTH_MODE: 'open', API_PREFIX: 'api/', SHUTDOWN_GRACE_MS: '-1' });
    expect(problems).toEqual(
      expect.arrayContaining([
        'PORT: must be a whole number from 0 to 65535',
        'AUTH_MODE: must be one of: entra, dev',
        'API_PREFIX: must start with / and not end with /',
        'SHUTDOWN_GRACE_MS: must be a whole number of milliseconds from 0 to 600000',
      ]),
    );
    expect(problems).toHaveLength(4);
  });

  it('takes HEAP_GROWTH_PERCENT as a whole percentage from 0 (V8 decides) to 300, 30 by default', () => {
    expect(loadConfig({}).heapGrowthPercent).toBe(30);
    expect(loadConfig({ HEAP_GROWTH_PERCENT: '0' }).heapGrowthPercent).toBe(0);
    expect(loadConfig({ HEAP_GROWTH_PERCENT: '300' }).heapGrowthPercent).toBe(300);
    for (const value of ['-1', '301', '1.5', 'fifty']) {
      expect(problemsOf({ HEAP_GROWTH_PERCENT: value })).toEqual([
        'HEAP_GROWTH_PERCENT: must be a whole number from 0 to 300',
      ]);
    }
  });

  it('reads numbers in decimal digits only: a blank, hexadecimal or an exponent is refused, not taken as 0 or converted', () => {
    expect(loadConfig({ PORT: ' 8080 ' }).port).toBe(8080);
    const cases: [string, string, string][] = [
      ['PORT', ' ', 'must be a whole number from 0 to 65535'],
      ['AUDIT_RETENTION_INTERVAL_MS', '  ', 'must be a whole number of milliseconds from 0 to 86400000'],
      ['MAX_BODY_BYTES', '0x400', 'must be a whole number of bytes from 1024 to 104857600'],
      ['SHUTDOWN_GRACE_MS', '1e4', 'must be a whole number of milliseconds from 0 to 600000'],
      ['AUDIT_RETENTION_DAYS', '-0', 'must be a whole number of days from 0 to 36500'],
      ['HEAP_GROWTH_PERCENT', '+30', 'must be a whole number from 0 to 300'],
      ['RATE_LIMIT_LEASE_PERCENT', '1.0', 'must be a whole number from 0 to 10'],
      ['AUDIT_QUEUE_CAPACITY', '10_000', 'must be a whole number from 1 to 1000000'],
      ['AUDIT_ARGUMENTS_MAX_BYTES', '99999999999999999999', 'must be a whole number of bytes from 256 to 1048576'],
    ];
    for (const [key, value, rule] of cases) expect(problemsOf({ [key]: value })).toEqual([`${key}: ${rule}`]);
  });

  it('takes AUDIT_SPOOL_MAX_BYTES as 0 (no limit) or 1 MiB to 1 TiB, 1 GiB by default', () => {
    expect(loadConfig({}).audit.spoolMaxBytes).toBe(1_073_741_824);
    expect(loadConfig({ AUDIT_SPOOL_MAX_BYTES: '0' }).audit.spoolMaxBytes).toBe(0);
    expect(loadConfig({ AUDIT_SPOOL_MAX_BYTES: '1048576' }).audit.spoolMaxBytes).toBe(1_048_576);
    expect(loadConfig({ AUDIT_SPOOL_MAX_BYTES: '1099511627776' }).audit.spoolMaxBytes).toBe(1_099_511_627_776);
    for (const value of ['-1', '1', '1048575', '1099511627777', '1.5', '1GiB', '0x100000', ' ']) {
      expect(problemsOf({ AUDIT_SPOOL_MAX_BYTES: value })).toEqual([
        'AUDIT_SPOOL_MAX_BYTES: must be 0 (no limit) or a whole number of bytes from 1048576 to 1099511627776',
      ]);
    }
  });

  it('never echoes a secret value in its errors', () => {
    const secretUrl = 'mysql://admin:hunter2-secret@db.internal/prod';
    const error = (() => {
      try {
        loadConfig({ DATABASE_URL: secretUrl, REDIS_URL: 'http://:redis-secret@cache', AZURE_TENANT_ID: 'not-a-guid' });
      } catch (caught) {
        return caught as ConfigError;
      }
      throw new Error('expected a ConfigError');
    })();
    expect(error.problems).toEqual([
      'DATABASE_URL: must be a postgresql:// URL',
      'REDIS_URL: must be a redis:// or rediss:// URL',
      'AZURE_TENANT_ID: must be a GUID',
    ]);
    expect(error.message).not.toContain('hunter2');
    expect(error.message).not.toContain('redis-secret');
  });

  it('rejects non-numeric numbers and lists of non-GUIDs', () => {
    expect(problemsOf({ PORT: 'eighty', AZURE_ALLOWED_TENANTS: 'common' })).toEqual([
      'PORT: must be a whole number from 0 to 65535',
      'AZURE_ALLOWED_TENANTS: must be comma-separated GUIDs',
    ]);
  });
});
