import type { Budget, Charge } from './budget';
import { BudgetLeases } from './budget-leases';

const budget = (key: string, count: number, windowMs = 60_000): Budget => ({
  policy: key,
  key,
  count,
  windowMs,
  onRedisDown: 'local',
});

describe('BudgetLeases', () => {
  let now: number;
  const clock = (): number => now;
  const principal = budget('principal', 10_000);
  const tenant = budget('tenant', 100_000);
  const call: Charge = { budgets: [principal, tenant], cost: 1 };

  beforeEach(() => {
    now = 1_000_000;
  });

  /** What Redis would answer a charge of `cost` with these grants, the budgets at `level` before it. */
  const answer = (charge: Charge, extras: number[], level = 0) => ({
    allowed: true,
    levels: extras.map((extra) => level + charge.cost + extra),
    granted: extras,
  });

  it('asks for as many units as this replica charged lately, at most the percentage of the budget', () => {
    const leases = new BudgetLeases(1, clock);
    expect(leases.spend(call)).toBeUndefined();
    expect(leases.extras(call)).toEqual([1, 1]);
    leases.settled(call, [1, 1]);
    for (let i = 0; i < 40; i++) leases.spend(call);
    // 41 calls so far, capped at 1% of each budget: 100 of the principal's 10,000.
    expect(leases.extras(call)).toEqual([41, 41]);
    leases.settled(call, [41, 41]);
    for (let i = 0; i < 200; i++) leases.spend(call);
    expect(leases.extras(call)).toEqual([100, 241]);
  });

  it('decides from what was granted, all budgets or none, and reports levels without the unspent units', () => {
    const leases = new BudgetLeases(1, clock);
    leases.spend(call);
    expect(leases.granted(call, answer(call, [2, 5]))).toEqual({
      allowed: true,
      levels: [1, 1],
      granted: [2, 5],
    });
    expect(leases.spend(call)).toEqual({ allowed: true, levels: [2, 2] });
    expect(leases.spend(call)).toEqual({ allowed: true, levels: [3, 3] });
    // The principal's lease is spent: the tenant's three units are not enough on their own.
    expect(leases.spend(call)).toBeUndefined();
    // A charge naming only the tenant still fits in its lease.
    expect(leases.spend({ budgets: [tenant], cost: 3 })).toEqual({ allowed: true, levels: [6] });
    expect(leases.spend({ budgets: [tenant], cost: 1 })).toBeUndefined();
  });

  it('drops a lease once its period is over (1% of the window, at most 1 s)', () => {
    const leases = new BudgetLeases(1, clock);
    const short = budget('short', 10_000, 10_000);
    const one: Charge = { budgets: [short], cost: 1 };
    leases.spend(one);
    leases.granted(one, answer(one, [50]));
    now += 99;
    expect(leases.spend(one)).toBeDefined();
    now += 1;
    expect(leases.spend(one)).toBeUndefined();
  });

  it('asks for one lease of a budget at a time', () => {
    const leases = new BudgetLeases(1, clock);
    leases.spend(call);
    const asked = leases.extras(call);
    expect(asked).toEqual([1, 1]);
    // Concurrent requests of the same caller, while that lease is on its way: exact charges.
    const meanwhile = leases.extras(call);
    expect(meanwhile).toEqual([0, 0]);
    // A request that asked for nothing leaves the asking one's mark alone when it comes back.
    leases.settled(call, meanwhile);
    expect(leases.extras(call)).toEqual([0, 0]);
    leases.settled(call, asked);
    expect(leases.extras(call)).toEqual([1, 1]);
  });

  it('leases nothing of small budgets, of a refused charge, or when turned off', () => {
    const small: Charge = { budgets: [budget('small', 99)], cost: 1 };
    const leases = new BudgetLeases(1, clock);
    leases.spend(small);
    expect(leases.extras(small)).toEqual([0]);
    // Beside a budget too small to lease, the charge is always Redis's to decide: no lease of the others either.
    const mixed: Charge = { budgets: [budget('small', 99), tenant], cost: 1 };
    leases.spend(mixed);
    expect(leases.extras(mixed)).toEqual([0, 0]);
    expect(leases.granted(call, { allowed: false, levels: [10_000, 5], granted: [0, 0] })).toEqual({
      allowed: false,
      levels: [10_000, 5],
      granted: [0, 0],
    });
    expect(leases.spend(call)).toBeUndefined();
    const off = new BudgetLeases(0, clock);
    off.spend(call);
    off.spend(call);
    expect(off.extras(call)).toEqual([0, 0]);
  });

  it('forgets demand after a quiet period', () => {
    const leases = new BudgetLeases(1, clock);
    for (let i = 0; i < 30; i++) leases.spend(call);
    now += 1_000;
    leases.spend(call);
    // The period before had 30 calls: lease for as many.
    expect(leases.extras(call)).toEqual([30, 30]);
    leases.settled(call, [30, 30]);
    now += 5_000;
    leases.spend(call);
    expect(leases.extras(call)).toEqual([1, 1]);
  });
});
