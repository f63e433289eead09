import { type DynamicModule, Module } from '@nestjs/common';
import { RouterModule } from '@nestjs/core';
import { LoggerModule } from 'nestjs-pino';
import type { Logger } from 'pino';
import { API_FEATURE_MODULES, ApiModule } from './api/api.module';
import { UpstreamModule } from './upstream/upstream.module';
import { AuditModule } from './audit/audit.module';
import { AuthModule } from './auth/auth.module';
import type { AppConfig } from './config/config';
import { ConfigModule } from './config/config.module';
import type { DatabaseConnection } from './database/database';
import { DatabaseModule } from './database/database.module';
import { DocsController } from './docs/docs.controller';
import { HealthModule } from './health/health.module';
import { McpModule } from './mcp/mcp.module';
import { RateLimitModule } from './ratelimit/ratelimit.module';
import { MetricsModule } from './metrics/metrics.module';
import type { KeyValueStore } from './redis/key-value-store';
import { RedisModule } from './redis/redis.module';
import { TrafficModule } from './traffic/traffic.module';

/** What exists before Nest starts: validated configuration and connected infrastructure. */
export interface AppDependencies {
  config: AppConfig;
  logger: Logger;
  database: DatabaseConnection;
  store: KeyValueStore;
}

@Module({})
export class AppModule {
  static forRoot({ config, logger, database, store }: AppDependencies): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config),
        // PinoLogger for the providers, over the one logger. Its per-request middleware is not installed (no
        // routes): it would keep each request's logger in an AsyncLocalStorage, whose promise hook, once a first
        // request enabled it, runs for every promise of the process, the MCP hot path's included (about 4% of
        // its CPU and 5% of its allocations, `npm run bench`). configureApp installs pino-http itself.
        LoggerModule.forRoot({ pinoHttp: { logger }, forRoutes: [] }),
        DatabaseModule.forRoot(database),
        RedisModule.forRoot(store),
        HealthModule,
        TrafficModule,
        RateLimitModule,
        UpstreamModule,
        ApiModule,
        AuthModule,
        McpModule,
        AuditModule,
        MetricsModule,
        RouterModule.register([
          { path: config.apiPrefix, module: ApiModule, children: [...API_FEATURE_MODULES, AuditModule] },
          { path: config.mcpPrefix, module: McpModule },
        ]),
      ],
      controllers: [DocsController],
    };
  }
}
