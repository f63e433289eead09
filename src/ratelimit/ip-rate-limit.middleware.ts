import { Inject, Injectable, type NestMiddleware } from '@nestjs/common';
import { requestIdOf } from '../logging/logger';
import type { ServerResponse } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import type { McpRequest } from '../auth/principal';
import { isRestBridgePath, requestPathOf } from '../common/request-path';
import { sendText } from '../common/send-text';
import type { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { PROBLEM_CONTENT_TYPE } from '../common/problem-details.filter';
import { RATE_LIMITED_CODE } from '../mcp/exchange-recorder';
import type { McpSurface } from '../traffic/mcp-exchange';
import { McpTraffic } from '../traffic/mcp-traffic';
import type { Budget } from './budget';
import { clientAddressKey } from './client-address';
import { LocalBuckets } from './local-buckets';
import { RateLimitStats } from './rate-limit-stats';
import { rateLimitHeaders, reportOf } from './ratelimit-headers';

/**
 * The per-address limit on everything under MCP_PREFIX, before the token is
 * checked: a flood of bad tokens is refused here without a signature check or
 * a JWKS fetch. In-process and per replica on purpose: cheap, and it holds
 * when Redis does not.
 */
@Injectable()
export class IpRateLimitMiddleware implements NestMiddleware {
  private readonly buckets = new LocalBuckets(100_000);
  private readonly budget?: Omit<Budget, 'key'>;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly traffic: McpTraffic,
    private readonly stats: RateLimitStats,
  ) {
    const { enabled, ip } = config.rateLimit;
    if (enabled && ip) {
      this.budget = { policy: 'ip', count: ip.count, windowMs: ip.windowSeconds * 1000, onRedisDown: 'local' };
    }
  }

  use(req: Request, res: Response, next: NextFunction): void {
    if (this.admit(req, res)) next();
  }

  /** True when the request may go on; otherwise it has been refused (429). Also called by the POST lane. */
  admit(req: McpRequest, res: ServerResponse): boolean {
    if (!this.budget) return true;
    // The client's address: the TCP peer, or the one trusted proxies forwarded (TRUST_PROXY).
    const address = req.ip ?? req.socket.remoteAddress;
    // Field by field: on Node 20 a literal that begins with a spread is promoted, with what it holds.
    const { policy, count, windowMs, onRedisDown } = this.budget;
    const budget: Budget = { policy, key: clientAddressKey(address), count, windowMs, onRedisDown };
    const result = this.buckets.charge({ budgets: [budget], cost: 1 });
    if (result.allowed) {
      this.stats.decided({ policy: 'ip', outcome: 'allowed', source: 'ip' });
      return true;
    }
    const at = new Date();
    this.stats.decided({ policy: 'ip', outcome: 'refused', source: 'ip' });
    const report = reportOf(budget, result.levels[0]!, 1, true);
    const retryAfter = Math.max(1, report.resetSeconds);
    for (const [name, value] of Object.entries(rateLimitHeaders([report]))) res.setHeader(name, value);
    res.setHeader('retry-after', String(retryAfter));
    res.setHeader('cache-control', 'no-store');
    const path = requestPathOf(req);
    const surface = this.surfaceOf(path);
    const detail = 'too many requests from this address; retry later';
    if (surface === 'rest') {
      sendText(
        res,
        429,
        PROBLEM_CONTENT_TYPE,
        JSON.stringify({
          type: 'urn:mcp-gateway:problem:rate_limited',
          title: 'Too many requests',
          status: 429,
          detail,
          code: 'rate_limited',
          instance: path,
        }),
      );
    } else {
      sendText(
        res,
        429,
        'application/json',
        JSON.stringify({
          jsonrpc: '2.0',
          id: null,
          error: { code: RATE_LIMITED_CODE, message: detail, data: { retryAfter, policy: 'ip' } },
        }),
      );
    }
    this.traffic.record({
      at,
      requestId: requestIdOf(req, res),
      surface,
      ...(req.ip ? { ip: req.ip } : {}),
      method: 'http',
      decision: 'rate_limited',
      rule: 'ratelimit:ip',
      outcome: 'refused',
      latencyMs: Date.now() - at.getTime(),
    });
    return false;
  }

  private surfaceOf(path: string): McpSurface {
    const rest = path.slice(this.config.mcpPrefix.length);
    if (rest === '' || rest === '/') return 'aggregate';
    return isRestBridgePath(rest) ? 'rest' : 'server';
  }
}
