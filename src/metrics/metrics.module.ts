import { Global, Module } from '@nestjs/common';
import { AuditModule } from '../audit/audit.module';
import type { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { McpModule } from '../mcp/mcp.module';
import { RegistryModule } from '../registry/registry.module';
import { UpstreamHealthModule } from '../upstream-health/upstream-health.module';
import { AuditMetrics } from './audit-metrics';
import { GatewayMetrics } from './gateway-metrics';
import { MetricsController } from './metrics.controller';
import { MetricsWiring } from './metrics-wiring';
import { RateLimitMetrics } from './rate-limit-metrics';

/**
 * Prometheus metrics at `GET /metrics`. Global: the rate limiter and the
 * audit trail inject `RateLimitMetrics` and `AuditMetrics` to report.
 */
@Global()
@Module({
  imports: [McpModule, UpstreamHealthModule, RegistryModule, AuditModule],
  controllers: [MetricsController],
  providers: [
    {
      provide: GatewayMetrics,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) =>
        new GatewayMetrics({ rateLimitsInRedis: config.redisUrl !== undefined && config.rateLimit.enabled }),
    },
    {
      provide: RateLimitMetrics,
      inject: [GatewayMetrics],
      useFactory: (metrics: GatewayMetrics) => metrics.rateLimits,
    },
    { provide: AuditMetrics, inject: [GatewayMetrics], useFactory: (metrics: GatewayMetrics) => metrics.audit },
    MetricsWiring,
  ],
  exports: [GatewayMetrics, RateLimitMetrics, AuditMetrics],
})
export class MetricsModule {}
