import * as path from 'node:path';
import { ConfigError, loadConfig } from './config';

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

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
    });
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
    });
    expect(config.redisUrl).toBe('redis://127.0.0.1:6379');
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
