import { Global, Module } from '@nestjs/common';
import { RATE_LIMITER } from '../traffic/rate-limiter';
import { GatewayRateLimiter } from './gateway-rate-limiter';
import { IpRateLimitMiddleware } from './ip-rate-limit.middleware';
import { RateLimitStats } from './rate-limit-stats';
import { RatelimitsController } from './ratelimits.controller';
import { RatelimitsService } from './ratelimits.service';

/**
 * Rate limits of MCP_PREFIX: the RATE_LIMITER McpTraffic asks before each
 * JSON-RPC request, the per-IP middleware AuthModule mounts before the token
 * check, and the numbers the metrics read (RateLimitStats).
 */
@Global()
@Module({
  providers: [
    RateLimitStats,
    GatewayRateLimiter,
    { provide: RATE_LIMITER, useExisting: GatewayRateLimiter },
    IpRateLimitMiddleware,
  ],
  exports: [RATE_LIMITER, GatewayRateLimiter, RateLimitStats, IpRateLimitMiddleware],
})
export class RateLimitModule {}

/** `API_PREFIX/ratelimits`: the admin view of a caller's buckets. */
@Module({
  controllers: [RatelimitsController],
  providers: [RatelimitsService],
})
export class RateLimitApiModule {}
