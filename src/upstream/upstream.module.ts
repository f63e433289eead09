import { Global, Module } from '@nestjs/common';
import type { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { UpstreamConnector } from './upstream-connector';
import { UrlGuard } from './url-guard';

/** Reaching upstream MCP servers: the URL policy and SDK client sessions. */
@Global()
@Module({
  providers: [
    {
      provide: UrlGuard,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) =>
        new UrlGuard({ ...config.upstream, gatewayMcpUrl: `${config.publicUrl}${config.mcpPrefix}` }),
    },
    UpstreamConnector,
  ],
  exports: [UrlGuard, UpstreamConnector],
})
export class UpstreamModule {}
