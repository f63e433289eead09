import { loadConfig } from '../config/config';
import type { Principal } from '../auth/principal';
import { RateLimitPlanner, sharedBuckets } from './rate-limit-plan';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

const TID = '11111111-2222-3333-4444-555555555555';

function principal(overrides: Partial<Principal> = {}): Principal {
  return {
    tid: TID,
    oid: 'user-1',
    clientId: 'client-1',
    appOnly: false,
    scopes: ['access_as_user'],
    roles: [],
    ...overrides,
  };
}

describe('RateLimitPlanner', () => {
  let dir: string;
  let planner: RateLimitPlanner;
  const github = { id: 'srv-1', slug: 'github' };
  const other = { id: 'srv-2', slug: 'other' };

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'rl-plan-'));
    const file = path.join(dir, 'policy.json');
    writeFileSync(
      file,
      JSON.stringify({
        roles: { Reader: '60/m', Writer: '120/m', Slow: '1000/1h' },
        servers: {
          github: { rate: '30/m', scope: 'all', tools: { search: { rate: '6/m', cost: 5 }, free: { cost: 0 } } },
          '*': { rate: '40/m' },
        },
        methodCosts: { 'tools/list': 0 },
      }),
    );
    planner = new RateLimitPlanner(loadConfig({ RATE_LIMIT_FILE: file }).rateLimit);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('charges one unit to the caller and its tenant for a plain request', () => {
    expect(planner.plan({ principal: principal(), surface: 'aggregate', method: 'initialize' })).toEqual({
      cost: 1,
      budgets: [
        { policy: 'principal', key: `rl:${TID}:user-1:principal`, count: 600, windowMs: 60_000, onRedisDown: 'local' },
        { policy: 'tenant', key: `rl:tenant:${TID}`, count: 10_000, windowMs: 60_000, onRedisDown: 'local' },
      ],
    });
  });

  it('lets ping, notifications and configured free methods through without asking anyone', () => {
    for (const method of ['ping', 'notifications/initialized', 'notifications/cancelled', 'tools/list']) {
      expect(planner.plan({ principal: principal(), surface: 'aggregate', method })).toBeUndefined();
    }
    expect(
      planner.plan({ principal: principal(), surface: 'server', server: github, method: 'tools/call', tool: 'free' }),
    ).toBeUndefined();
  });

  it('keys app-only callers by client id', () => {
    const plan = planner.plan({
      principal: principal({ appOnly: true, clientId: 'app-9' }),
      surface: 'rest',
      method: 'tools/call',
    });
    expect(plan?.budgets[0]?.key).toBe(`rl:${TID}:app:app-9:principal`);
  });

  it('gives the admin role its higher tier, and a caller with several tiers the most generous one', () => {
    const tierOf = (roles: string[]) =>
      planner.plan({ principal: principal({ roles }), surface: 'aggregate', method: 'tools/list/x' })!.budgets[0]!
        .count;
    expect(tierOf([])).toBe(600);
    expect(tierOf(['Reader'])).toBe(60);
    expect(tierOf(['Reader', 'Writer'])).toBe(120);
    expect(tierOf(['Reader', 'Slow'])).toBe(60); // 1000/h is slower than 60/min
    expect(tierOf(['Gateway.Admin', 'Reader'])).toBe(3000);
    expect(tierOf(['Unknown'])).toBe(600);
  });

  it('adds the server budget and the tool budget, charging the tool cost to every budget', () => {
    const plan = planner.plan({
      principal: principal(),
      surface: 'server',
      server: github,
      method: 'tools/call',
      tool: 'search',
    })!;
    expect(plan.cost).toBe(5);
    expect(plan.budgets.map((budget) => [budget.policy, budget.key, budget.count])).toEqual([
      ['principal', `rl:${TID}:user-1:principal`, 600],
      ['tenant', `rl:tenant:${TID}`, 10_000],
      ['server.github', 'rl:server.github', 30],
      ['tool.github.search', 'rl:tool.github.search', 6],
    ]);
    // Other methods on that server cost 1 and meet no tool budget.
    const list = planner.plan({ principal: principal(), surface: 'server', server: github, method: 'resources/read' })!;
    expect(list.cost).toBe(1);
    expect(list.budgets.map((budget) => budget.policy)).toEqual(['principal', 'tenant', 'server.github']);
  });

  it('charges a tool without a cost of its own what tools/call costs in methodCosts', () => {
    const file = path.join(dir, 'tools-call-cost.json');
    writeFileSync(
      file,
      JSON.stringify({
        servers: { github: { tools: { search: { rate: '30/m' }, heavy: { cost: 7 } } } },
        methodCosts: { 'tools/call': 4 },
      }),
    );
    const costly = new RateLimitPlanner(loadConfig({ RATE_LIMIT_FILE: file }).rateLimit);
    const costOf = (tool: string) =>
      costly.plan({ principal: principal(), surface: 'server', server: github, method: 'tools/call', tool })?.cost;
    expect(costOf('search')).toBe(4);
    expect(costOf('unlisted')).toBe(4);
    expect(costOf('heavy')).toBe(7);
  });

  it('applies the * server policy per caller to servers without their own', () => {
    const plan = planner.plan({
      principal: principal(),
      surface: 'server',
      server: other,
      method: 'tools/call',
      tool: 'x',
    })!;
    expect(plan.budgets[2]).toMatchObject({ policy: 'server.other', key: `rl:${TID}:user-1:server.other`, count: 40 });
    // Counted in the stats as the policy the file writes, not as a slug it matched.
    expect(plan.budgets[2]?.label).toBe('server.*');
  });

  it("builds a caller's own budgets once per principal, and no request's server budgets among them", () => {
    const caller = Object.freeze(principal({ roles: ['Reader'] }));
    const first = planner.plan({ principal: caller, surface: 'server', server: github, method: 'tools/call' })!;
    const second = planner.plan({ principal: caller, surface: 'server', server: other, method: 'tools/call' })!;
    expect(second.budgets[0]).toBe(first.budgets[0]);
    expect(second.budgets[1]).toBe(first.budgets[1]);
    expect(first.budgets.map((budget) => budget.policy)).toEqual(['principal', 'tenant', 'server.github']);
    expect(second.budgets.map((budget) => budget.policy)).toEqual(['principal', 'tenant', 'server.other']);
    // Another principal object, even of the same user, is planned for itself: its roles may differ.
    const writer = planner.plan({ principal: principal({ roles: ['Writer'] }), surface: 'aggregate', method: 'x' })!;
    expect(writer.budgets[0]).not.toBe(first.budgets[0]);
    expect(writer.budgets[0]).toMatchObject({ key: `rl:${TID}:user-1:principal`, count: 120 });
    expect(first.budgets[0]).toMatchObject({ key: `rl:${TID}:user-1:principal`, count: 60 });
  });

  it('knows where the budgets every caller shares are: the keys of the servers named, prefixes under a shared *', () => {
    const policyOf = (servers: object) => {
      const file = path.join(dir, 'shared.json');
      writeFileSync(file, JSON.stringify({ servers }));
      return loadConfig({ RATE_LIMIT_FILE: file }).rateLimit;
    };
    // As the planner keys them: github's server and search budgets are shared, the * entry's are each caller's.
    const plan = planner.plan({ principal: principal(), surface: 'server', server: github, method: 'tools/call' });
    expect(sharedBuckets(loadConfig({ RATE_LIMIT_FILE: path.join(dir, 'policy.json') }).rateLimit)).toEqual({
      keys: [plan!.budgets[2]!.key, 'rl:tool.github.search'],
      prefixes: [],
    });
    expect(sharedBuckets(policyOf({ '*': { rate: '9/m', scope: 'all' }, github: { rate: '9/m' } }))).toEqual({
      keys: [],
      prefixes: ['rl:server.', 'rl:tool.'],
    });
  });
});
