import { Inject, Module, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import type { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { KEY_VALUE_STORE, type KeyValueStore } from '../redis/key-value-store';
import { RegistryModule } from '../registry/registry.module';
import { AggregateServer } from './aggregate-server';
import { Catalog } from './catalog';
import { CatalogRepository } from './catalog.repository';
import { InFlightRequests } from './in-flight';
import { McpController } from './mcp.controller';
import { RestBridge } from './rest-bridge';
import { RestBridgeController } from './rest-bridge.controller';
import { UpstreamPool } from './upstream-pool';
import { ServerDirectory } from './server-directory';
import { McpSessionStore } from './session-store';
import { SlugRelay } from './slug-relay';

/** The MCP endpoints under MCP_PREFIX: `/mcp` over every upstream, `/mcp/{slug}` relaying to one. */
@Module({
  imports: [RegistryModule],
  controllers: [McpController, RestBridgeController],
  providers: [
    ServerDirectory,
    SlugRelay,
    CatalogRepository,
    Catalog,
    UpstreamPool,
    AggregateServer,
    RestBridge,
    {
      provide: InFlightRequests,
      inject: [KEY_VALUE_STORE],
      useFactory: (store: KeyValueStore) => new InFlightRequests(store),
    },
    {
      provide: McpSessionStore,
      inject: [KEY_VALUE_STORE, APP_CONFIG],
      useFactory: (store: KeyValueStore, config: AppConfig) => new McpSessionStore(store, config.mcp.sessionIdleMs),
    },
  ],
  exports: [UpstreamPool, McpSessionStore],
})
export class McpModule implements OnModuleInit, OnModuleDestroy {
  constructor(
    @Inject(McpSessionStore) private readonly sessions: McpSessionStore,
    @Inject(InFlightRequests) private readonly inFlight: InFlightRequests,
  ) {}

  async onModuleInit(): Promise<void> {
    await Promise.all([this.sessions.start(), this.inFlight.start()]);
  }

  async onModuleDestroy(): Promise<void> {
    await Promise.all([this.sessions.stop(), this.inFlight.stop()]);
  }
}
