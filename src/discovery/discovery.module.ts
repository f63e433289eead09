import { Module } from '@nestjs/common';
import { RegistryModule } from '../registry/registry.module';

/** What each upstream offers: sync through the MCP SDK client, fingerprints, search. */
@Module({
  imports: [RegistryModule],
})
export class DiscoveryModule {}
