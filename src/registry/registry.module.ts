import { Module } from '@nestjs/common';
import { RegistryEvents } from './registry-events';

/** Upstream MCP servers: registration, versions, import and export. */
@Module({
  providers: [RegistryEvents],
  exports: [RegistryEvents],
})
export class RegistryModule {}
