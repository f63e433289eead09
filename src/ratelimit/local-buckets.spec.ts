import type { Budget } from './budget';
import { clientAddressKey } from './client-address';
import { LocalBuckets } from './local-buckets';
import { rateLimitHeaders, reportOf } from './ratelimit-headers';

function budget(key: string, count: number, windowMs: number, policy = key): Budget {
  return { policy, key, count, windowMs, onRedisDown: 'local' };
}

describe('LocalBuckets', () => {
  let now = 1_000_000;
  const clock = () => now;

  it('allows exactly the budget, refuses the next, and refills at count per window', () => {
    const buckets = new LocalBuckets(1000, clock);
    const charge = { budgets: [budget('a', 3, 60_000)], cost: 1 };
    expect([1, 2, 3, 4].map(() => buckets.charge(charge).allowed)).toEqual([true, true, true, false]);
    now += 19_999; // one unit refills every 20 s
    expect(buckets.charge(charge).allowed).toBe(false);
    now += 1;
    expect(buckets.charge(charge).allowed).toBe(true);
    expect(buckets.charge(charge).allowed).toBe(false);
  });

  it('charges every budget or none', () => {
    const buckets = new LocalBuckets(1000, clock);
    const wide = budget('wide', 10, 60_000);
    const narrow = budget('narrow', 2, 60_000);
    expect(buckets.charge({ budgets: [wide, narrow], cost: 2 }).allowed).toBe(true);
    const refused = buckets.charge({ budgets: [wide, narrow], cost: 1 });
    expect(refused).toEqual({ allowed: false, levels: [2, 2] });
    // The refusal spent nothing from the wide budget.
    expect(buckets.charge({ budgets: [wide], cost: 8 }).allowed).toBe(true);
  });

  it('never lets a cost above the whole budget through', () => {
    const buckets = new LocalBuckets(1000, clock);
    expect(buckets.charge({ budgets: [budget('x', 2, 1000)], cost: 3 }).allowed).toBe(false);
  });

  it('stays within its bound under a flood of new keys', () => {
    const buckets = new LocalBuckets(100, clock);
    for (let i = 0; i < 1000; i++) buckets.charge({ budgets: [budget(`ip-${i}`, 5, 60_000)], cost: 1 });
    expect(buckets.size).toBeLessThanOrEqual(100);
    expect(buckets.size).toBeGreaterThan(0);
  });

  it('evicts the least recently charged first, placing a key again at most once a second', () => {
    const buckets = new LocalBuckets(3, clock);
    const charge = (key: string): void => {
      buckets.charge({ budgets: [budget(key, 10, 600_000)], cost: 1 });
    };
    charge('a');
    now += 100;
    charge('b');
    now += 100;
    charge('c');
    // Within the second: charged in place, still first in line.
    now += 100;
    charge('a');
    expect(buckets.peek(['a'], []).get('a')?.level).toBeCloseTo(2, 1);
    // Past it: placed last.
    now += 1_000;
    charge('a');
    now += 100;
    // Over the bound: back to 90 % of it (2), the least recently charged going first.
    charge('d');
    expect([...buckets.peek([''], []).keys()]).toEqual(['a', 'd']);
    expect(buckets.peek(['a'], []).get('a')?.level).toBeCloseTo(3, 1);
  });

  it('shows the buckets of a prefix with their levels now', () => {
    const buckets = new LocalBuckets(1000, clock);
    buckets.charge({ budgets: [budget('rl:p:principal', 10, 10_000), budget('rl:tenant:t', 10, 10_000)], cost: 4 });
    now += 2_000;
    const peeked = buckets.peek(['rl:p:'], ['rl:tenant:t', 'rl:tenant:none']);
    expect([...peeked.keys()]).toEqual(['rl:p:principal', 'rl:tenant:t']);
    expect(peeked.get('rl:p:principal')?.level).toBeCloseTo(2, 6);
    now += 2_000;
    expect(buckets.peek(['rl:p:'], []).size).toBe(0);
  });
});

describe('RateLimit headers', () => {
  it('writes RateLimit-Policy and RateLimit as structured-field lists (draft-ietf-httpapi-ratelimit-headers-11)', () => {
    const principal = budget('rl:p', 600, 60_000, 'principal');
    const tool = budget('rl:t', 3, 60_000, 'tool.github.say "hi"\\');
    const reports = [reportOf(principal, 1, 1, false), reportOf(tool, 3, 1, true)];
    expect(rateLimitHeaders(reports)).toEqual({
      'RateLimit-Policy': '"principal";q=600;w=60, "tool.github.say \\"hi\\"\\\\";q=3;w=60',
      RateLimit: '"principal";r=599;t=1, "tool.github.say \\"hi\\"\\\\";r=0;t=20',
    });
    expect(rateLimitHeaders([])).toEqual({});
  });

  it('reports the wait of a refused budget as its reset, and never less than one second', () => {
    const report = reportOf(budget('k', 10, 1000), 9.9999, 1, true);
    expect(report).toMatchObject({ remaining: 0, resetSeconds: 1 });
  });
});

describe('clientAddressKey', () => {
  it('counts IPv4 by address and IPv6 by /64', () => {
    expect(clientAddressKey('203.0.113.7')).toBe('203.0.113.7');
    expect(clientAddressKey('::ffff:203.0.113.7')).toBe('203.0.113.7');
    expect(clientAddressKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(clientAddressKey('2001:db8:1:2:ffff:ffff:ffff:ffff')).toBe('2001:db8:1:2::/64');
    expect(clientAddressKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(clientAddressKey('::1')).toBe('0:0:0:0::/64');
    expect(clientAddressKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(clientAddressKey(undefined)).toBe('unknown');
  });
});
