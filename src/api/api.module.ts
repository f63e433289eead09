import { Module } from '@nestjs/common';
import { RegistryModule } from '../registry/registry.module';
import { ApiIndexController } from './api-index.controller';

/** Everything under API_PREFIX: open to the internal network, described at /docs. */
@Module({
  imports: [RegistryModule],
  controllers: [ApiIndexController],
})
export class ApiModule {}
