import { Inject, type MiddlewareConsumer, Module, type NestModule } from '@nestjs/common';
import type { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { RegistryCorsMiddleware } from './registry-cors.middleware';
import { FACADE_PATH, RegistryFacadeController } from './registry-facade.controller';
import { RegistryFacadeRepository } from './registry-facade.repository';
import { RegistryFacadeService } from './registry-facade.service';

/** The official MCP Registry read API (v0.1) over this gateway's registry, for VS Code and Copilot. */
@Module({
  controllers: [RegistryFacadeController],
  providers: [RegistryFacadeService, RegistryFacadeRepository],
})
export class RegistryFacadeModule implements NestModule {
  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {}

  configure(consumer: MiddlewareConsumer): void {
    // A plain path is mounted for every method on it and every path below it, so preflights and 404s carry
    // the headers too. A path given as text is not prefixed with the module's router path, hence API_PREFIX.
    consumer.apply(RegistryCorsMiddleware).forRoutes(`${this.config.apiPrefix}/${FACADE_PATH}`);
  }
}
