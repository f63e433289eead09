import { randomUUID } from 'node:crypto';
import { createLogger } from '../src/logging/logger';
import type { Budget, Charge } from '../src/ratelimit/budget';
import { RedisBuckets } from '../src/ratelimit/redis-buckets';
import { RedisStore } from '../src/redis/redis-store';
import { eventually } from './support/eventually';
import { REDIS_URL } from './support/services';
import { StallableProxy } from './support/stallable-proxy';
import { hostPortOf, withHostPort } from './support/tcp-proxy';

/** For budgets whose levels are compared across round trips: what drains meanwhile stays below the precision. */
const DAY_MS = 86_400_000;

/** The charges of one turn of the event loop travel to Redis as one pipeline: decided as if sent one by one. */
describe('RedisBuckets (Redis)', () => {
  let store: RedisStore;
  let buckets: RedisBuckets;

  const budget = (count: number, windowMs = 60_000): Budget => ({
    policy: 'principal',
    key: `test:buckets:${randomUUID()}`,
    count,
    windowMs,
    onRedisDown: 'local',
  });

  beforeAll(async () => {
    store = await RedisStore.connect(REDIS_URL, createLogger({ logLevel: 'silent' }));
    buckets = new RedisBuckets(store.client);
  });

  afterAll(async () => {
    await store.close();
  });

  it('decides charges asked for together in the order they were asked for, and each gets its own levels', async () => {
    const shared = budget(5);
    const other = budget(100);
    const charges: Charge[] = Array.from({ length: 12 }, (_, index) => ({
      budgets: index % 2 === 0 ? [shared, other] : [shared],
      cost: 1,
    }));

    const results = await Promise.all(charges.map((charge) => buckets.charge(charge)));

    expect(results.map((result) => result.allowed)).toEqual([...Array(5).fill(true), ...Array(7).fill(false)]);
    // The shared bucket fills one unit per allowed charge (less what drained in between), then stays full.
    results.slice(0, 5).forEach((result, index) => expect(result.levels[0]).toBeCloseTo(index + 1, 2));
    for (const result of results.slice(5)) expect(result.levels[0]).toBeCloseTo(5, 2);
    // All or nothing: the other budget was charged only by the allowed charges that named it (0, 2 and 4).
    expect(results[10]!.levels[1]).toBeCloseTo(3, 2);
  });

  it('grants as many units on every budget, only as far as each stays at most half full', async () => {
    // Day-long windows: what drains between the calls stays below the precision checked even when the machine is
    // busy (an hour drained 1,000 units at 0.28 a second: 31 ms between two calls in a loaded CI run was enough).
    const one = budget(100, DAY_MS);
    const other = budget(1_000, DAY_MS);
    const ask = (extras: number[]) => buckets.charge({ budgets: [one, other], cost: 1 }, extras);

    const first = await ask([30, 40]);
    // The least asked for: a lease decides a request only where all its budgets hold one.
    expect(first).toMatchObject({ allowed: true, granted: [30, 30] });
    expect(first.levels[0]).toBeCloseTo(31, 2);
    expect(first.levels[1]).toBeCloseTo(31, 2);
    // 50 is half of the first budget: 18 more fit under it, and so 18 on the other too.
    const second = await ask([30, 30]);
    expect(second.granted).toEqual([18, 18]);
    expect(second.levels[0]).toBeCloseTo(50, 2);
    expect(second.levels[1]).toBeCloseTo(50, 2);
    const third = await ask([30, 30]);
    expect(third).toMatchObject({ allowed: true, granted: [0, 0] });
    expect(third.levels[0]).toBeCloseTo(51, 2);
  });

  it('grants nothing with a refused charge, and charges nothing', async () => {
    const full = budget(2, DAY_MS);
    await buckets.charge({ budgets: [full], cost: 2 });
    const refused = await buckets.charge({ budgets: [full], cost: 1 }, [5]);
    expect(refused).toMatchObject({ allowed: false, granted: [0] });
    expect(refused.levels[0]).toBeCloseTo(2, 2);
  });

  it('gives back what a charge took, its lease included, and forgets a bucket it leaves empty', async () => {
    const busy = budget(1_000, DAY_MS);
    const quiet = budget(1_000, DAY_MS);
    await buckets.charge({ budgets: [busy], cost: 7 });
    const charge: Charge = { budgets: [busy, quiet], cost: 3 };
    const taken = await buckets.charge(charge, [5, 5]);
    expect(taken).toMatchObject({ allowed: true, granted: [5, 5] });

    await buckets.refund(charge, taken);

    const after = await buckets.peek([], [busy.key, quiet.key]);
    expect(after.get(busy.key)?.level).toBeCloseTo(7, 2);
    expect(after.has(quiet.key)).toBe(false);
    expect(await store.client.exists(quiet.key)).toBe(0);
  });

  it('loads the script again when Redis forgot it, for every charge of the turn', async () => {
    const one = budget(3, DAY_MS);
    await store.client.script('FLUSH');

    const results = await Promise.all(Array.from({ length: 4 }, () => buckets.charge({ budgets: [one], cost: 1 })));

    expect(results.map((result) => result.allowed)).toEqual([true, true, true, false]);
    expect((await buckets.charge({ budgets: [one], cost: 0 })).levels[0]).toBeCloseTo(3, 2);
  });

  it('rejects every charge of the turn when Redis cannot be asked', async () => {
    const offline = await RedisStore.connect(REDIS_URL, createLogger({ logLevel: 'silent' }));
    const cut = new RedisBuckets(offline.client);
    offline.client.disconnect();

    const outcomes = await Promise.allSettled([
      cut.charge({ budgets: [budget(5)], cost: 1 }),
      cut.charge({ budgets: [budget(5)], cost: 1 }),
    ]);

    expect(outcomes.map((outcome) => outcome.status)).toEqual(['rejected', 'rejected']);
  });
});

/** Redis behind a relay that holds its answers back and then loses the connection: a charge's answer never comes. */
describe('RedisBuckets when the connection is lost under a charge', () => {
  const relay = new StallableProxy(hostPortOf(REDIS_URL).host, hostPortOf(REDIS_URL).port);
  let store: RedisStore;
  let direct: RedisStore;

  beforeAll(async () => {
    await relay.start();
    store = await RedisStore.connect(withHostPort(REDIS_URL, relay.port), createLogger({ logLevel: 'silent' }));
    direct = await RedisStore.connect(REDIS_URL, createLogger({ logLevel: 'silent' }));
  });

  afterAll(async () => {
    await Promise.all([store.close(), direct.close()]);
    await relay.stop();
  });

  it('fails the charge Redis applied, and does not send it again once connected again: it counts once', async () => {
    const buckets = new RedisBuckets(store.client);
    const budget: Budget = {
      policy: 'principal',
      key: `test:buckets:${randomUUID()}`,
      count: 10,
      windowMs: DAY_MS,
      onRedisDown: 'local',
    };
    relay.stall();
    const charged = buckets.charge({ budgets: [budget], cost: 1 });
    // Redis ran the charge; its answer is held back, then lost with the connection.
    await eventually(async () => expect(await direct.get(budget.key)).not.toBeNull());
    relay.cut();
    await expect(charged).rejects.toThrow();

    await eventually(() => store.ping());
    const { levels } = await buckets.charge({ budgets: [budget], cost: 0 });
    expect(levels[0]).toBeCloseTo(1, 2);
  });
});
