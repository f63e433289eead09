import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { problemsOf } from '../../test/support/config-problems';
import { loadConfig } from '../config/config';
import { parseRate } from './rate-limit-policy';

describe('rate-limit policy', () => {
  let dir: string;
  beforeAll(() => (dir = mkdtempSync(path.join(tmpdir(), 'rl-policy-'))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function file(content: unknown): string {
    const name = path.join(dir, `${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(name, typeof content === 'string' ? content : JSON.stringify(content));
    return name;
  }

  it('parses rates as count per window', () => {
    expect(parseRate('600/60s')).toEqual({ count: 600, windowSeconds: 60 });
    expect(parseRate('100/m')).toEqual({ count: 100, windowSeconds: 60 });
    expect(parseRate('5000/1h')).toEqual({ count: 5000, windowSeconds: 3600 });
    expect(parseRate(' 7 / 2d ')).toBeUndefined(); // over a day
    for (const bad of ['', '0/60s', '10', '10/0s', '10/60', '-1/s', '1.5/s', '10/60ms', '99999999999/s', '10/1w']) {
      expect(parseRate(bad)).toBeUndefined();
    }
  });

  it('has documented defaults: 600/min per caller, 3000/min for the admin role, 10000/min per tenant, 1200/min per IP', () => {
    const { rateLimit } = loadConfig({});
    expect(rateLimit.enabled).toBe(true);
    expect(rateLimit.principal).toEqual({ rate: { count: 600, windowSeconds: 60 }, onRedisDown: 'local' });
    expect(rateLimit.roles.get('Gateway.Admin')).toEqual({
      rate: { count: 3000, windowSeconds: 60 },
      onRedisDown: 'local',
    });
    expect(rateLimit.tenant.rate).toEqual({ count: 10_000, windowSeconds: 60 });
    expect(rateLimit.ip).toEqual({ count: 1200, windowSeconds: 60 });
    expect(rateLimit.methodCosts.get('ping')).toBe(0);
    expect(rateLimit.replicas).toBe(1);
    expect(rateLimit.redisTimeoutMs).toBe(100);
  });

  it('takes the environment, with the admin tier following AUTH_ADMIN_ROLE', () => {
    const { rateLimit } = loadConfig({
      RATE_LIMIT_PRINCIPAL: '10/s',
      RATE_LIMIT_ADMIN: '50/s',
      RATE_LIMIT_TENANT: '100/m',
      RATE_LIMIT_IP: 'off',
      RATE_LIMIT_ON_REDIS_DOWN: 'refuse',
      RATE_LIMIT_REPLICAS: '3',
      AUTH_ADMIN_ROLE: 'Boss',
    });
    expect(rateLimit.principal).toEqual({ rate: { count: 10, windowSeconds: 1 }, onRedisDown: 'refuse' });
    expect(rateLimit.roles.get('Boss')?.rate).toEqual({ count: 50, windowSeconds: 1 });
    expect(rateLimit.roles.has('Gateway.Admin')).toBe(false);
    expect(rateLimit.tenant.rate).toEqual({ count: 100, windowSeconds: 60 });
    expect(rateLimit.ip).toBeUndefined();
    expect(rateLimit.replicas).toBe(3);
  });

  it('reads the policy file, and the environment wins over it', () => {
    const policyFile = file({
      principal: { rate: '20/m', onRedisDown: 'refuse' },
      tenant: '200/m',
      roles: { Reader: '5/m', 'Gateway.Admin': '99/m' },
      servers: {
        github: {
          rate: '30/m',
          scope: 'all',
          onRedisDown: 'refuse',
          tools: { search: { rate: '6/m', cost: 5 }, cheap: { cost: 0 } },
        },
        '*': { rate: '40/m' },
      },
      methodCosts: { 'tools/list': 0, 'resources/read': 2 },
      ip: '60/m',
    });
    const { rateLimit } = loadConfig({ RATE_LIMIT_FILE: policyFile, RATE_LIMIT_TENANT: '300/m' });
    expect(rateLimit.principal).toEqual({ rate: { count: 20, windowSeconds: 60 }, onRedisDown: 'refuse' });
    expect(rateLimit.tenant.rate).toEqual({ count: 300, windowSeconds: 60 });
    expect(rateLimit.roles.get('Reader')?.rate.count).toBe(5);
    expect(rateLimit.roles.get('Gateway.Admin')?.rate.count).toBe(99);
    const github = rateLimit.servers.get('github')!;
    expect(github).toMatchObject({
      scope: 'all',
      limit: { rate: { count: 30, windowSeconds: 60 }, onRedisDown: 'refuse' },
    });
    expect(github.tools.get('search')).toEqual({
      limit: { rate: { count: 6, windowSeconds: 60 }, onRedisDown: 'refuse' },
      cost: 5,
      label: 'tool.github.search',
    });
    expect(github.tools.get('cheap')).toEqual({ limit: undefined, cost: 0, label: 'tool.github.cheap' });
    expect(rateLimit.servers.get('*')).toMatchObject({
      scope: 'principal',
      limit: { rate: { count: 40 } },
      label: 'server.*',
    });
    expect(rateLimit.methodCosts.get('tools/list')).toBe(0);
    expect(rateLimit.methodCosts.get('resources/read')).toBe(2);
    expect(rateLimit.ip).toEqual({ count: 60, windowSeconds: 60 });
  });

  it('refuses bad variables naming the key and the rule, never the value', () => {
    const problems = problemsOf({
      RATE_LIMIT_PRINCIPAL: 'lots-and-lots',
      RATE_LIMIT_IP: '0/s',
      RATE_LIMIT_ON_REDIS_DOWN: 'maybe',
      RATE_LIMIT_REPLICAS: '0',
      RATE_LIMIT_REDIS_TIMEOUT_MS: '0',
      RATE_LIMIT_ENABLED: 'yes',
    });
    expect(problems.map((line) => line.split(':')[0]).sort()).toEqual([
      'RATE_LIMIT_ENABLED',
      'RATE_LIMIT_IP',
      'RATE_LIMIT_ON_REDIS_DOWN',
      'RATE_LIMIT_PRINCIPAL',
      'RATE_LIMIT_REDIS_TIMEOUT_MS',
      'RATE_LIMIT_REPLICAS',
    ]);
    expect(problems.join('\n')).not.toContain('lots-and-lots');
  });

  it('refuses a policy file that is missing, not JSON, or breaks the schema, naming the place in the file', () => {
    expect(problemsOf({ RATE_LIMIT_FILE: path.join(dir, 'missing.json') })).toEqual([
      'RATE_LIMIT_FILE: cannot be read (ENOENT)',
    ]);
    expect(problemsOf({ RATE_LIMIT_FILE: file('{ not json') })).toEqual(['RATE_LIMIT_FILE: is not valid JSON']);
    const problems = problemsOf({
      RATE_LIMIT_FILE: file({
        principal: 'secret-ish-value',
        servers: { 'Not A Slug': {}, ok: { tools: { t: { cost: -1 } }, scope: 'everyone' } },
        surprise: true,
      }),
    });
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^RATE_LIMIT_FILE: principal: /),
        expect.stringMatching(/^RATE_LIMIT_FILE: servers\.Not A Slug: /),
        'RATE_LIMIT_FILE: servers.ok.tools.t.cost: must be a whole number from 0 to 1000',
        'RATE_LIMIT_FILE: servers.ok.scope: must be principal or all',
        expect.stringMatching(/^RATE_LIMIT_FILE: \(root\): .*surprise/),
      ]),
    );
    expect(problems.join('\n')).not.toContain('secret-ish-value');
    expect(problemsOf({ RATE_LIMIT_FILE: file([1, 2]) })).toEqual([
      expect.stringMatching(/^RATE_LIMIT_FILE: \(root\): /),
    ]);
  });

  it('refuses a cost more than a budget it is charged to holds, since such a request would always be refused', () => {
    const problems = problemsOf({
      RATE_LIMIT_FILE: file({
        roles: { Reader: '4/m' }, // below search's cost, but search's own budget is smaller still
        servers: {
          github: { rate: '100/m', tools: { search: { rate: '3/m', cost: 5 }, fine: { cost: 4 } } },
          tight: { rate: '2/m', tools: { listed: { rate: '50/m' } } },
        },
        methodCosts: { 'resources/read': 6, 'tools/call': 3, 'notifications/initialized': 9, 'tools/list': 0 },
      }),
    });
    expect(problems.sort()).toEqual([
      'RATE_LIMIT_FILE: methodCosts.resources/read: is more than the server tight budget holds, so such a request would always be refused',
      'RATE_LIMIT_FILE: methodCosts.tools/call: is more than the server tight budget holds, so such a request would always be refused',
      'RATE_LIMIT_FILE: servers.github.tools.search.cost: is more than the tool github.search budget holds, so such a request would always be refused',
    ]);
    // The variables count too: they win over the file.
    const small = file({ methodCosts: { 'resources/read': 3 } });
    expect(problemsOf({ RATE_LIMIT_FILE: small, RATE_LIMIT_PRINCIPAL: '2/1s' })).toEqual([
      'RATE_LIMIT_FILE: methodCosts.resources/read: is more than the principal budget holds, so such a request would always be refused',
    ]);
    expect(loadConfig({ RATE_LIMIT_FILE: small, RATE_LIMIT_PRINCIPAL: '3/1s' }).rateLimit.principal.rate.count).toBe(3);
  });

  it('refuses a __proto__ key in any of its maps instead of dropping it', () => {
    const text =
      '{"roles":{"__proto__":"1/s"},"methodCosts":{"__proto__":5},' +
      '"servers":{"ok":{"tools":{"__proto__":{"cost":2}}}}}';
    expect(problemsOf({ RATE_LIMIT_FILE: file(text) }).sort()).toEqual([
      'RATE_LIMIT_FILE: methodCosts.__proto__: is not a name this field can hold',
      'RATE_LIMIT_FILE: roles.__proto__: is not a name this field can hold',
      'RATE_LIMIT_FILE: servers.ok.tools.__proto__: is not a name this field can hold',
    ]);
    expect(problemsOf({ RATE_LIMIT_FILE: file('{"servers":{"__proto__":{}}}') })).toEqual([
      'RATE_LIMIT_FILE: servers.__proto__: is not a name this field can hold',
    ]);
  });
});
