import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { clientKeyed } from '../common/record-keys';

/** `count` units per `windowSeconds`, replenished continuously (GCRA: a token bucket holding `count`). */
export interface Rate {
  count: number;
  windowSeconds: number;
}

/** What a policy does while Redis does not answer: a per-replica insurance limiter, or refuse. */
export type OnRedisDown = 'local' | 'refuse';

export interface LimitPolicy {
  rate: Rate;
  onRedisDown: OnRedisDown;
}

export interface ToolPolicy {
  /** Budget of this tool; absent: only its cost weighs on the other budgets. */
  limit?: LimitPolicy;
  /** Units one call spends, on every budget it is counted against; absent: what `tools/call` costs. */
  cost?: number;
  /** Its budget as the file names it, `tool.<slug>.<tool>` or `tool.*.<tool>`: the policy its decisions count under. */
  label: string;
}

export interface ServerPolicy {
  limit?: LimitPolicy;
  /** `principal`: each caller has its own budget on this server (and its tools); `all`: one budget shared by every caller. */
  scope: 'principal' | 'all';
  tools: ReadonlyMap<string, ToolPolicy>;
  /**
   * Its budget as the file names it, `server.<slug>` or `server.*`: the policy its decisions count under in the
   * metrics, which would otherwise take a value per registered server under `*`.
   */
  label: string;
}

export interface RateLimitPolicy {
  enabled: boolean;
  /** Per caller (`tid:oid`, or `tid:app:clientId`), unless a role tier applies. */
  principal: LimitPolicy;
  /** Per role: a caller holding several tiered roles gets the most generous one. */
  roles: ReadonlyMap<string, LimitPolicy>;
  /** All callers of one tenant together. */
  tenant: LimitPolicy;
  /** Per client address, before the token is checked; in-process (per replica), Redis or not. Absent: off. */
  ip?: Rate;
  /** Per server slug; `*` applies to every server without an entry of its own. */
  servers: ReadonlyMap<string, ServerPolicy>;
  /** Units per JSON-RPC method (0 = free); methods not listed cost 1, `notifications/*` and `ping` nothing. */
  methodCosts: ReadonlyMap<string, number>;
  /** The insurance limiter's share of each budget while Redis is down: `count / replicas`, at least 1. */
  replicas: number;
  /** Longest wait for Redis on one decision before the insurance limiter decides. */
  redisTimeoutMs: number;
  /** Largest lease of a budget a replica takes, in percent of the budget (src/ratelimit/budget-leases.ts); 0: none. */
  leasePercent: number;
}

/** The raw variables this policy is built from (already validated by the config schema). */
export interface RateLimitEnv {
  RATE_LIMIT_ENABLED: boolean;
  RATE_LIMIT_FILE?: string;
  RATE_LIMIT_PRINCIPAL?: Rate;
  RATE_LIMIT_ADMIN?: Rate;
  RATE_LIMIT_TENANT?: Rate;
  RATE_LIMIT_IP?: Rate | 'off';
  RATE_LIMIT_ON_REDIS_DOWN?: OnRedisDown;
  RATE_LIMIT_REPLICAS: number;
  RATE_LIMIT_REDIS_TIMEOUT_MS: number;
  RATE_LIMIT_LEASE_PERCENT: number;
}

export const DEFAULT_RATES = {
  principal: { count: 600, windowSeconds: 60 },
  admin: { count: 3000, windowSeconds: 60 },
  tenant: { count: 10_000, windowSeconds: 60 },
  ip: { count: 1200, windowSeconds: 60 },
} as const satisfies Record<string, Rate>;

const RATE_RULE = 'must be <count>/<window>, e.g. 600/60s, 100/m, 5000/1h (count 1–1000000000, window 1s–1d)';
const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };
const MAX_COUNT = 1_000_000_000;

/** Parses `600/60s`, `100/m`, `5000/1h`; undefined when the text is not a rate. */
export function parseRate(text: string): Rate | undefined {
  const match = /^\s*(\d{1,10})\s*\/\s*(\d{0,6})\s*(s|m|h|d)\s*$/.exec(text);
  if (!match) return undefined;
  const count = Number(match[1]);
  const windowSeconds = Number(match[2] || '1') * UNIT_SECONDS[match[3]!]!;
  if (count < 1 || count > MAX_COUNT || windowSeconds < 1 || windowSeconds > 86_400) return undefined;
  return { count, windowSeconds };
}

export const rateSchema = z.string().transform((text, ctx) => {
  const rate = parseRate(text);
  if (!rate) {
    ctx.addIssue({ code: 'custom', message: RATE_RULE });
    return z.NEVER;
  }
  return rate;
});

const onRedisDownSchema = z.enum(['local', 'refuse'], { error: 'must be local or refuse' });
/** Printable ASCII without quotes or backslashes: names end up in structured header fields. */
const nameSchema = z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]{1,200}$/, 'must be 1–200 printable characters');
const costSchema = z
  .number({ error: 'must be a whole number from 0 to 1000' })
  .int('must be a whole number from 0 to 1000')
  .min(0, 'must be a whole number from 0 to 1000')
  .max(1000, 'must be a whole number from 0 to 1000');

const limitSchema = z.union(
  [rateSchema, z.object({ rate: rateSchema, onRedisDown: onRedisDownSchema.optional() }).strict()],
  {
    error: `${RATE_RULE}, or { "rate": …, "onRedisDown": "local" | "refuse" }`,
  },
);
type FileLimit = z.output<typeof limitSchema>;

const fileSchema = z
  .object({
    principal: limitSchema.optional(),
    tenant: limitSchema.optional(),
    ip: z.union([rateSchema, z.literal('off')]).optional(),
    roles: clientKeyed(z.record(nameSchema, limitSchema)).optional(),
    servers: clientKeyed(
      z.record(
        z.union([z.literal('*'), z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'must be a server slug or *')]),
        z
          .object({
            rate: rateSchema.optional(),
            onRedisDown: onRedisDownSchema.optional(),
            scope: z.enum(['principal', 'all'], { error: 'must be principal or all' }).optional(),
            tools: clientKeyed(
              z.record(nameSchema, z.object({ rate: rateSchema.optional(), cost: costSchema.optional() }).strict()),
            ).optional(),
          })
          .strict(),
      ),
    ).optional(),
    methodCosts: clientKeyed(z.record(nameSchema, costSchema)).optional(),
    onRedisDown: onRedisDownSchema.optional(),
  })
  .strict();

/** A problem with the policy file, named by its path inside the file, never by its values. */
export class RateLimitFileError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('; '));
  }
}

const FREE_METHODS: ReadonlyArray<[string, number]> = [['ping', 0]];

/**
 * Builds the policy from the environment and the optional JSON file. The
 * environment wins over the file, the file over the built-in defaults.
 */
export function buildRateLimitPolicy(env: RateLimitEnv, adminRole: string): RateLimitPolicy {
  const file = env.RATE_LIMIT_FILE ? readPolicyFile(env.RATE_LIMIT_FILE) : {};
  const defaultMode: OnRedisDown = env.RATE_LIMIT_ON_REDIS_DOWN ?? file.onRedisDown ?? 'local';
  const limit = (fromEnv: Rate | undefined, fromFile: FileLimit | undefined, fallback: Rate): LimitPolicy => {
    const fileRate = typeof fromFile === 'object' && 'rate' in fromFile ? fromFile.rate : fromFile;
    const fileMode = typeof fromFile === 'object' && 'rate' in fromFile ? fromFile.onRedisDown : undefined;
    return { rate: fromEnv ?? fileRate ?? fallback, onRedisDown: fileMode ?? defaultMode };
  };

  const roles = new Map<string, LimitPolicy>();
  for (const [role, value] of Object.entries(file.roles ?? {}))
    roles.set(role, limit(undefined, value, DEFAULT_RATES.principal));
  roles.set(adminRole, limit(env.RATE_LIMIT_ADMIN, file.roles?.[adminRole], DEFAULT_RATES.admin));

  const servers = new Map<string, ServerPolicy>();
  for (const [slug, server] of Object.entries(file.servers ?? {})) {
    const tools = new Map<string, ToolPolicy>();
    for (const [tool, entry] of Object.entries(server.tools ?? {})) {
      tools.set(tool, {
        limit: entry.rate ? { rate: entry.rate, onRedisDown: server.onRedisDown ?? defaultMode } : undefined,
        cost: entry.cost,
        label: `tool.${slug}.${tool}`,
      });
    }
    servers.set(slug, {
      limit: server.rate ? { rate: server.rate, onRedisDown: server.onRedisDown ?? defaultMode } : undefined,
      scope: server.scope ?? 'principal',
      tools,
      label: `server.${slug}`,
    });
  }

  const ip = env.RATE_LIMIT_IP ?? file.ip ?? DEFAULT_RATES.ip;
  const policy: RateLimitPolicy = {
    enabled: env.RATE_LIMIT_ENABLED,
    principal: limit(env.RATE_LIMIT_PRINCIPAL, file.principal, DEFAULT_RATES.principal),
    roles,
    tenant: limit(env.RATE_LIMIT_TENANT, file.tenant, DEFAULT_RATES.tenant),
    ip: ip === 'off' ? undefined : ip,
    servers,
    methodCosts: new Map([...FREE_METHODS, ...Object.entries(file.methodCosts ?? {})]),
    replicas: env.RATE_LIMIT_REPLICAS,
    redisTimeoutMs: env.RATE_LIMIT_REDIS_TIMEOUT_MS,
    leasePercent: env.RATE_LIMIT_LEASE_PERCENT,
  };
  const problems = costsBeyondBudgets(policy);
  if (problems.length > 0) throw new RateLimitFileError(problems);
  return policy;
}

/**
 * A cost larger than a budget it is charged to could never be allowed: such a request would be refused for good,
 * with a Retry-After that promises otherwise. Each cost is held against every budget it may meet: the caller's (any
 * role tier, since a caller may hold only that one), the tenant's, its server's and its tool's.
 */
function costsBeyondBudgets(policy: RateLimitPolicy): string[] {
  const problems: string[] = [];
  const callers: Array<[string, LimitPolicy]> = [
    ['principal', policy.principal],
    ['tenant', policy.tenant],
    ...[...policy.roles].map(([role, tier]): [string, LimitPolicy] => [`role ${role}`, tier]),
  ];
  const check = (place: string, cost: number, budgets: Array<[string, LimitPolicy | undefined]>): void => {
    // The smallest of the budgets it does not fit in is named: the one to change first.
    let over: [string, LimitPolicy] | undefined;
    for (const [name, budget] of budgets) {
      if (budget && cost > budget.rate.count && (!over || budget.rate.count < over[1].rate.count))
        over = [name, budget];
    }
    if (over)
      problems.push(`${place}: is more than the ${over[0]} budget holds, so such a request would always be refused`);
  };
  const toolsCallCost = policy.methodCosts.get('tools/call') ?? 1;
  const servers = [...policy.servers].map(([slug, server]): [string, LimitPolicy | undefined] => [
    `server ${slug}`,
    server.limit,
  ]);
  for (const [method, cost] of policy.methodCosts) {
    // Notifications are never charged (src/ratelimit/rate-limit-plan.ts asks for requests only).
    if (cost === 0 || method.startsWith('notifications/')) continue;
    check(`methodCosts.${method}`, cost, [...callers, ...servers]);
  }
  for (const [slug, server] of policy.servers) {
    for (const [tool, entry] of server.tools) {
      const cost = entry.cost ?? toolsCallCost;
      if (cost === 0) continue;
      const place = entry.cost === undefined ? `methodCosts.tools/call` : `servers.${slug}.tools.${tool}.cost`;
      check(place, cost, [...callers, [`server ${slug}`, server.limit], [`tool ${slug}.${tool}`, entry.limit]]);
    }
  }
  return [...new Set(problems)];
}

function readPolicyFile(file: string): z.output<typeof fileSchema> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new RateLimitFileError([`cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`]);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new RateLimitFileError(['is not valid JSON']);
  }
  const result = fileSchema.safeParse(json);
  if (!result.success) {
    throw new RateLimitFileError(
      result.error.issues.map((issue) => `${issue.path.length ? issue.path.join('.') : '(root)'}: ${issue.message}`),
    );
  }
  return result.data;
}
