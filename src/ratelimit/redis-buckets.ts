import { createHash } from 'node:crypto';
import type Redis from 'ioredis';
import { type Charge, type ChargeResult, drained } from './budget';
import type { BucketState } from './local-buckets';

/**
 * Every budget of a request checked and charged in one script, so one round
 * trip decides and concurrent gateways never overspend: all budgets are
 * charged, or none. Redis's own clock (TIME) keeps replicas with skewed
 * clocks on one timeline. A bucket is `"<level> <at> <count> <windowMs>"`,
 * expiring once drained.
 * A request may also ask for a lease (`extra` units per budget, charged now
 * for the replica to spend later). The same number of units is granted on
 * every budget, since a lease decides a request only where all its budgets
 * hold one: the least asked for, and only as far as every budget stays at
 * most half full, so that near a limit every request is decided here.
 * KEYS: the budgets. ARGV: the cost, then count, windowMs and extra per budget.
 * Returns 1 or 0 (allowed), then the level of each budget after the decision,
 * then the units granted beyond the cost for each.
 */
const CHARGE_SCRIPT = `
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + tonumber(clock[2]) / 1000
local cost = tonumber(ARGV[1])
local levels = {}
local allowed = 1
for i = 1, #KEYS do
  local count = tonumber(ARGV[i * 3 - 1])
  local window = tonumber(ARGV[i * 3])
  local level = 0
  local state = redis.call('GET', KEYS[i])
  if state then
    local stored, at = string.match(state, '^(%S+) (%S+)')
    if stored then
      level = tonumber(stored) - math.max(0, now - tonumber(at)) * count / window
      if level < 0 then level = 0 end
    end
  end
  if level + cost > count + 1e-9 then allowed = 0 end
  levels[i] = level
end
local grant = 0
if allowed == 1 then
  grant = math.huge
  for i = 1, #KEYS do
    local room = math.floor(math.min(tonumber(ARGV[i * 3 + 1]), tonumber(ARGV[i * 3 - 1]) / 2 - levels[i] - cost))
    if room < grant then grant = room end
  end
  if grant < 0 then grant = 0 end
end
local result = { allowed }
for i = 1, #KEYS do
  local count = tonumber(ARGV[i * 3 - 1])
  local window = tonumber(ARGV[i * 3])
  local level = levels[i]
  if allowed == 1 then
    level = level + cost + grant
    redis.call('SET', KEYS[i], string.format('%.17g %.17g %d %d', level, now, count, window),
      'PX', math.max(1, math.ceil(level * window / count)))
  end
  result[i + 1] = string.format('%.17g', level)
  result[#KEYS + i + 1] = grant
end
return result`;

const SCRIPT_SHA = createHash('sha1').update(CHARGE_SCRIPT).digest('hex');

/**
 * Gives back units a charge took: each bucket drained to now, less its units (a bucket left empty is deleted).
 * The budget's count and window are the bucket's own. KEYS: the budgets. ARGV: the units, per budget.
 */
const REFUND_SCRIPT = `
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + tonumber(clock[2]) / 1000
for i = 1, #KEYS do
  local state = redis.call('GET', KEYS[i])
  if state then
    local stored, at, count, window = string.match(state, '^(%S+) (%S+) (%S+) (%S+)')
    if stored then
      count = tonumber(count)
      window = tonumber(window)
      local level = tonumber(stored) - math.max(0, now - tonumber(at)) * count / window - tonumber(ARGV[i])
      if level > 0 then
        redis.call('SET', KEYS[i], string.format('%.17g %.17g %d %d', level, now, count, window),
          'PX', math.max(1, math.ceil(level * window / count)))
      else
        redis.call('DEL', KEYS[i])
      end
    end
  end
end
return 1`;

type ScriptArgs = [number, ...(string | number)[]];

interface Queued {
  args: ScriptArgs;
  resolve: (result: ChargeResult) => void;
  reject: (error: unknown) => void;
}

/**
 * The budgets in Redis. Calls reject on a Redis failure; the caller decides what an outage means.
 *
 * Charges asked for in one turn of the event loop travel to Redis together, as one pipeline: one socket write
 * and one read for them all instead of one each. Each write to a loopback socket cost the gateway about 55 µs of
 * CPU per call under load (`npm run bench -- --cpu-prof`), as much as relaying the answer to the client. Redis
 * runs the scripts one after the other in the order they were asked for, as it did one request at a time.
 */
export class RedisBuckets {
  private queued: Queued[] = [];

  constructor(private readonly client: Redis) {}

  /** Whether the client is connected: while it is not, asking would only fail (the offline queue is off). */
  get connected(): boolean {
    return this.client.status === 'ready';
  }

  async ping(): Promise<void> {
    await this.client.ping();
  }

  /** Charges `cost` to every budget, or to none; `extras` asks for that many more units per budget, as a lease. */
  charge({ budgets, cost }: Charge, extras: readonly number[] = []): Promise<ChargeResult> {
    const args: ScriptArgs = [budgets.length];
    for (const budget of budgets) args.push(budget.key);
    args.push(cost);
    budgets.forEach((budget, index) => args.push(budget.count, budget.windowMs, extras[index] ?? 0));
    return new Promise((resolve, reject) => {
      // The first charge of a turn schedules the send; what the rest of the turn asks for joins it.
      if (this.queued.push({ args, resolve, reject }) === 1) setImmediate(() => this.send());
    });
  }

  private send(): void {
    const batch = this.queued;
    this.queued = [];
    // EVALSHA: the script travels once per Redis lifetime, not with every decision.
    const pipeline = this.client.pipeline();
    for (const { args } of batch) pipeline.evalsha(SCRIPT_SHA, ...args);
    pipeline.exec().then(
      (replies) =>
        batch.forEach((queued, index) => {
          const [error, reply] = replies?.[index] ?? [new Error('Redis gave no answer to a rate-limit charge')];
          if (!error) queued.resolve(resultOf(reply));
          else if (error.message.startsWith('NOSCRIPT')) this.evalScript(queued);
          else queued.reject(error);
        }),
      (error: unknown) => {
        for (const queued of batch) queued.reject(error);
      },
    );
  }

  /**
   * Gives back to every budget what an allowed `result` of this charge took from it: its cost and the units granted
   * beyond it. Rare (a charge Redis answered too late), so the script travels whole, outside the pipelines.
   */
  async refund({ budgets, cost }: Charge, result: ChargeResult): Promise<void> {
    const args: ScriptArgs = [budgets.length];
    for (const budget of budgets) args.push(budget.key);
    budgets.forEach((_, index) => args.push(cost + (result.granted?.[index] ?? 0)));
    await this.client.eval(REFUND_SCRIPT, ...args);
  }

  /** Redis forgot the script (a restart, SCRIPT FLUSH): sending it whole loads it again. */
  private evalScript({ args, resolve, reject }: Queued): void {
    this.client.eval(CHARGE_SCRIPT, ...args).then((reply) => resolve(resultOf(reply)), reject);
  }

  /** The buckets under each of `prefixes` (found with SCAN, never KEYS) and the named `keys`, with their levels now. */
  async peek(prefixes: readonly string[], keys: readonly string[]): Promise<Map<string, BucketState>> {
    const found = new Set(keys);
    await Promise.all(
      prefixes.map(async (prefix) => {
        let cursor = '0';
        do {
          const [next, batch] = await this.client.scan(cursor, 'MATCH', `${escapeGlob(prefix)}*`, 'COUNT', 1000);
          for (const key of batch) found.add(key);
          cursor = next;
        } while (cursor !== '0');
      }),
    );
    const names = [...found];
    if (names.length === 0) return new Map();
    const [values, time] = await Promise.all([this.client.mget(...names), this.client.time()]);
    const now = Number(time[0]) * 1000 + Number(time[1]) / 1000;
    const states = new Map<string, BucketState>();
    names.forEach((key, index) => {
      const state = parseState(values[index]);
      if (!state) return;
      const level = drained(state.level, state.at, now, state.count, state.windowMs);
      if (level > 0) states.set(key, { ...state, level, at: now });
    });
    return states;
  }
}

function resultOf(reply: unknown): ChargeResult {
  const [allowed, ...rest] = reply as [number, ...(string | number)[]];
  const budgets = rest.length / 2;
  return {
    allowed: allowed === 1,
    levels: rest.slice(0, budgets).map(Number),
    granted: rest.slice(budgets).map(Number),
  };
}

function parseState(value: string | null | undefined): BucketState | undefined {
  if (!value) return undefined;
  const [level, at, count, windowMs] = value.split(' ').map(Number);
  if (![level, at, count, windowMs].every((n) => n !== undefined && Number.isFinite(n)) || !count || !windowMs) {
    return undefined;
  }
  return { level: level!, at: at!, count, windowMs };
}

function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, (char) => `\\${char}`);
}
