import { Module } from '@nestjs/common';
import { AuthzModule } from '../auth/authz.module';
import { DiscoveryModule } from '../discovery/discovery.module';
import { RateLimitApiModule } from '../ratelimit/ratelimit.module';
import { RegistryFacadeModule } from '../registry-facade/registry-facade.module';
import { RegistryModule } from '../registry/registry.module';
import { UpstreamHealthModule } from '../upstream-health/upstream-health.module';
import { ApiIndexController } from './api-index.controller';

/** Feature modules whose routes live under API_PREFIX. */
export const API_FEATURE_MODULES = [
  RegistryModule,
  DiscoveryModule,
  UpstreamHealthModule,
  RegistryFacadeModule,
  AuthzModule,
  RateLimitApiModule,
];

/** Everything under API_PREFIX: open to the internal network, described at /docs. */
@Module({
  imports: API_FEATURE_MODULES,
  controllers: [ApiIndexController],
})
export class ApiModule {}
