import type { Principal } from '../auth/principal';
import type { McpSurface, ServerRef } from './mcp-exchange';

/** One JSON-RPC request asking for budget. */
export interface RateLimitRequest {
  principal: Principal;
  surface: McpSurface;
  method: string;
  server?: ServerRef;
  /** For `tools/call`: the tool, as the upstream names it (cost weights are per tool). */
  tool?: string;
}

export interface RateLimitVerdict {
  allowed: boolean;
  /** The policy that decided: the one that refused, or the tightest one that allowed. */
  policy?: string;
  /** For a refusal: whole seconds until the request may be retried (at least 1). */
  retryAfterSeconds?: number;
  /** `RateLimit-Policy` and `RateLimit` fields (draft-ietf-httpapi-ratelimit-headers) for the HTTP response. */
  headers: Record<string, string>;
}

/**
 * Decides whether a request may spend budget, and spends it. Never throws: an outage is its own business. A verdict
 * it has at once (from memory, or a lease) it gives as it is, not as a promise: most do, on every MCP request.
 */
export interface RateLimiter {
  consume(request: RateLimitRequest): RateLimitVerdict | Promise<RateLimitVerdict>;
}

/** Provided by the rate-limit module; when none is, every request is allowed. */
export const RATE_LIMITER = Symbol('RATE_LIMITER');

export const UNLIMITED: RateLimiter = {
  consume: () => ({ allowed: true, headers: {} }),
};
