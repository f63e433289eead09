import { Module } from '@nestjs/common';
import { RegistryModule } from '../registry/registry.module';

/** The background prober of upstream servers and its view at /api/v1/health/servers. */
@Module({
  imports: [RegistryModule],
})
export class UpstreamHealthModule {}
