import { Module } from '@nestjs/common';
import { RegistryEvents } from './registry-events';
import { RegistryService } from './registry.service';
import { ServerTransferService } from './server-transfer.service';
import { ServerRepository } from './server.repository';
import { ServerTransferController } from './server-transfer.controller';
import { ServerVersionsController } from './server-versions.controller';
import { ServersController } from './servers.controller';

/** Upstream MCP servers: registration, versions, import and export. */
@Module({
  // Order matters: the fixed routes `/servers/import|export` before `/servers/:ref`.
  controllers: [ServerTransferController, ServerVersionsController, ServersController],
  providers: [RegistryEvents, ServerRepository, RegistryService, ServerTransferService],
  exports: [RegistryEvents, RegistryService],
})
export class RegistryModule {}
