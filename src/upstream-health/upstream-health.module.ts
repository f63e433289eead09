import { Module } from '@nestjs/common';
import { RegistryModule } from '../registry/registry.module';
import { UpstreamHealthController } from './upstream-health.controller';
import { UpstreamHealthRepository } from './upstream-health.repository';
import { UpstreamHealthService } from './upstream-health.service';
import { UpstreamProbe } from './upstream-probe';

/** The background prober of upstream servers and its view at /api/v1/health/servers. */
@Module({
  imports: [RegistryModule],
  controllers: [UpstreamHealthController],
  providers: [UpstreamHealthService, UpstreamHealthRepository, UpstreamProbe],
  exports: [UpstreamHealthService],
})
export class UpstreamHealthModule {}
