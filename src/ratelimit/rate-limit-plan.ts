import type { Principal } from '../auth/principal';
import { principalKeyOf } from '../mcp/principal-key';
import type { RateLimitRequest } from '../traffic/rate-limiter';
import type { Budget, Charge } from './budget';
import type { LimitPolicy, RateLimitPolicy, ServerPolicy } from './rate-limit-policy';

/** Every budget key starts with this, so the limiter's keys never meet other keys in a shared Redis. */
export const KEY_PREFIX = 'rl:';

/** Keys of the budgets that belong to one caller: `rl:<principalKey>:<policy>`. */
export function principalKeyPrefix(principalKey: string): string {
  return `${KEY_PREFIX}${principalKey}:`;
}

export function tenantKey(tid: string): string {
  return `${KEY_PREFIX}tenant:${tid}`;
}

/** Where the buckets of budgets every caller shares (`scope: all`) are, without a caller in their keys. */
const SHARED_PREFIXES = [`${KEY_PREFIX}server.`, `${KEY_PREFIX}tool.`] as const;

/**
 * The buckets of the budgets every caller shares (`scope: all`): the keys of those of the servers the policy names,
 * and, when its `*` entry shares them, the prefixes under which those of any server are (its slugs are the
 * registry's, not the policy's).
 */
export function sharedBuckets(policy: RateLimitPolicy): { keys: string[]; prefixes: string[] } {
  const keys: string[] = [];
  let anyServer = false;
  for (const [slug, server] of policy.servers) {
    if (server.scope !== 'all') continue;
    if (slug === '*') {
      anyServer = true;
      continue;
    }
    if (server.limit) keys.push(`${KEY_PREFIX}server.${slug}`);
    for (const [tool, entry] of server.tools) if (entry.limit) keys.push(`${KEY_PREFIX}tool.${slug}.${tool}`);
  }
  return { keys, prefixes: anyServer ? [...SHARED_PREFIXES] : [] };
}

/**
 * Which budgets a JSON-RPC request is counted against and what it costs:
 * the caller's (its most generous role tier, else the default), its tenant's,
 * and the server's and tool's when the policy names them. Undefined: free.
 */
export class RateLimitPlanner {
  /**
   * The caller's and its tenant's budgets, built once per principal: a verified token's principal is one frozen object
   * for as long as the token is cached (src/auth/token-verifier.ts), and its two keys cost a string each, built and
   * hashed again by every lookup, on every decision.
   */
  private readonly callerBudgets = new WeakMap<Principal, readonly [Budget, Budget]>();

  constructor(private readonly policy: RateLimitPolicy) {}

  plan(request: RateLimitRequest): Charge | undefined {
    const server = request.server ? this.serverPolicy(request.server.slug) : undefined;
    const tool = server && request.tool !== undefined ? server.tools.get(request.tool) : undefined;
    // A tool without a cost of its own costs what `tools/call` does (`methodCosts`, else 1).
    const cost =
      tool?.cost !== undefined && request.method === 'tools/call' ? tool.cost : this.methodCost(request.method);
    if (cost === 0) return undefined;

    const { principal } = request;
    const budgets: Budget[] = this.callerBudgetsOf(principal).slice();
    if (server && request.server) {
      const slug = request.server.slug;
      const owner = server.scope === 'principal' ? principalKeyPrefix(principalKeyOf(principal)) : KEY_PREFIX;
      if (server.limit) budgets.push(budget(`server.${slug}`, `${owner}server.${slug}`, server.limit, server.label));
      if (tool?.limit) {
        const name = `tool.${slug}.${request.tool}`;
        budgets.push(budget(name, `${owner}${name}`, tool.limit, tool.label));
      }
    }
    return { budgets, cost };
  }

  private callerBudgetsOf(principal: Principal): readonly [Budget, Budget] {
    let budgets = this.callerBudgets.get(principal);
    if (budgets === undefined) {
      budgets = [
        budget('principal', `${principalKeyPrefix(principalKeyOf(principal))}principal`, this.tierOf(principal.roles)),
        budget('tenant', tenantKey(principal.tid), this.policy.tenant),
      ];
      this.callerBudgets.set(principal, budgets);
    }
    return budgets;
  }

  /** The most generous of the caller's role tiers (highest rate), or the default per-caller budget. */
  tierOf(roles: readonly string[]): LimitPolicy {
    let best: LimitPolicy | undefined;
    for (const role of roles) {
      const tier = this.policy.roles.get(role);
      if (tier && (!best || perSecond(tier) > perSecond(best))) best = tier;
    }
    return best ?? this.policy.principal;
  }

  private serverPolicy(slug: string): ServerPolicy | undefined {
    return this.policy.servers.get(slug) ?? this.policy.servers.get('*');
  }

  private methodCost(method: string): number {
    const configured = this.policy.methodCosts.get(method);
    if (configured !== undefined) return configured;
    // Notifications and responses the client sends back ask the gateway for nothing worth limiting.
    return method.startsWith('notifications/') ? 0 : 1;
  }
}

function budget(policy: string, key: string, limit: LimitPolicy, label?: string): Budget {
  return {
    policy,
    label,
    key,
    count: limit.rate.count,
    windowMs: limit.rate.windowSeconds * 1000,
    onRedisDown: limit.onRedisDown,
  };
}

function perSecond(limit: LimitPolicy): number {
  return limit.rate.count / limit.rate.windowSeconds;
}
