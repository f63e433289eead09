import { Module } from '@nestjs/common';
import { RegistryModule } from '../registry/registry.module';
import { DiscoveryController } from './discovery.controller';
import { DiscoveryRepository } from './discovery.repository';
import { DiscoveryScheduler } from './discovery-scheduler';
import { DiscoveryService } from './discovery.service';
import { DiscoverySyncService } from './discovery-sync.service';
import { ListChangedWatchers } from './list-changed-watchers';

/** What each upstream offers: sync through the MCP SDK client, fingerprints, search. */
@Module({
  imports: [RegistryModule],
  controllers: [DiscoveryController],
  providers: [DiscoveryRepository, DiscoverySyncService, ListChangedWatchers, DiscoveryScheduler, DiscoveryService],
  exports: [DiscoveryRepository, DiscoverySyncService],
})
export class DiscoveryModule {}
