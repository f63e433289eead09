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
 * KEYS: the budgets. ARGV: the cost, then count and windowMs per budget.
 * Returns 1 or 0 (allowed), then the level of each budget after the decision.
 */
const CHARGE_SCRIPT = `
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + tonumber(clock[2]) / 1000
local cost = tonumber(ARGV[1])
local levels = {}
local allowed = 1
for i = 1, #KEYS do
  local count = tonumber(ARGV[i * 2])
  local window = tonumber(ARGV[i * 2 + 1])
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
local result = { allowed }
for i = 1, #KEYS do
  local count = tonumber(ARGV[i * 2])
  local window = tonumber(ARGV[i * 2 + 1])
  local level = levels[i]
  if allowed == 1 then
    level = level + cost
    redis.call('SET', KEYS[i], string.format('%.17g %.17g %d %d', level, now, count, window),
      'PX', math.max(1, math.ceil(level * window / count)))
  end
  result[i + 1] = string.format('%.17g', level)
end
return result`;

const SCRIPT_SHA = createHash('sha1').update(CHARGE_SCRIPT).digest('hex');

/** The budgets in Redis. Calls reject on a Redis failure; the caller decides what an outage means. */
export class RedisBuckets {
  constructor(private readonly client: Redis) {}

  /** Whether the client is connected: while it is not, asking would only fail (the offline queue is off). */
  get connected(): boolean {
    return this.client.status === 'ready';
  }

  async ping(): Promise<void> {
    await this.client.ping();
  }

  async charge({ budgets, cost }: Charge): Promise<ChargeResult> {
    const args: (string | number)[] = [budgets.length];
    for (const budget of budgets) args.push(budget.key);
    args.push(cost);
    for (const budget of budgets) args.push(budget.count, budget.windowMs);
    let reply: unknown;
    try {
      // EVALSHA: the script travels once per Redis lifetime, not with every decision.
      reply = await this.client.evalsha(SCRIPT_SHA, ...(args as [number, ...(string | number)[]]));
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      reply = await this.client.eval(CHARGE_SCRIPT, ...(args as [number, ...(string | number)[]]));
    }
    const [allowed, ...levels] = reply as [number, ...string[]];
    return { allowed: allowed === 1, levels: levels.map(Number) };
  }

  /** The buckets under `prefix` (found with SCAN, never KEYS) and the named `keys`, with their levels now. */
  async peek(prefix: string, keys: string[]): Promise<Map<string, BucketState>> {
    const found = new Set(keys);
    let cursor = '0';
    do {
      const [next, batch] = await this.client.scan(cursor, 'MATCH', `${escapeGlob(prefix)}*`, 'COUNT', 1000);
      for (const key of batch) found.add(key);
      cursor = next;
    } while (cursor !== '0');
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
