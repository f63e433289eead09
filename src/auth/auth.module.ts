import { Global, Inject, type MiddlewareConsumer, Module, type NestModule, RequestMethod } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { PinoLogger } from 'nestjs-pino';
import type { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { IpRateLimitMiddleware } from '../ratelimit/ip-rate-limit.middleware';
import { AccessPolicy } from './access-policy';
import { loadOrCreateDevKey } from './dev-signing-key';
import { DevTokenValidator } from './dev-token-validator';
import { EntraTokenValidator } from './entra-token-validator';
import { McpAuthMiddleware } from './mcp-auth.middleware';
import { ProtectedResource } from './protected-resource';
import { ProtectedResourceController } from './protected-resource.controller';
import { ResourceMetadataService } from './resource-metadata.service';
import { ServerAccessRepository } from './server-access.repository';
import { SigningKeyCache } from './signing-key-cache';
import { TokenVerifier } from './token-verifier';
import { UpstreamTokenProvider } from './upstream-token-provider';

async function createVerifier(config: AppConfig, logger: PinoLogger): Promise<TokenVerifier> {
  logger.setContext(TokenVerifier.name);
  const { auth } = config;
  if (auth.mode === 'dev') {
    const key = await loadOrCreateDevKey(config.dataDir);
    logger.warn(
      { dataDir: config.dataDir },
      `AUTH_MODE=dev: ${config.mcpPrefix} accepts tokens signed by the local development key in DATA_DIR ` +
        '(from `mcp-gateway token`), not Entra ID tokens. NEVER RUN THIS IN PRODUCTION.',
    );
    return new TokenVerifier(new DevTokenValidator(key, auth));
  }
  const keys = new SigningKeyCache({
    maxAgeMs: auth.jwksCacheMaxAgeMs,
    onFetchError: (url, error) => logger.warn({ url, err: error }, 'fetching signing keys failed'),
  });
  const validator = new EntraTokenValidator(auth, keys);
  if (validator.unavailableReason) {
    logger.warn(`${validator.unavailableReason}: ${config.mcpPrefix} answers 503 to every request`);
  }
  return new TokenVerifier(validator);
}

/**
 * Entra ID token validation for MCP_PREFIX, OAuth discovery (RFC 9728), the
 * access policy and upstream tokens. Global: the MCP endpoints and the
 * upstream connector use its providers.
 */
@Global()
@Module({
  controllers: [ProtectedResourceController],
  providers: [
    { provide: TokenVerifier, inject: [APP_CONFIG, PinoLogger], useFactory: createVerifier },
    AccessPolicy,
    ProtectedResource,
    ResourceMetadataService,
    ServerAccessRepository,
    UpstreamTokenProvider,
    McpAuthMiddleware,
  ],
  exports: [
    TokenVerifier,
    AccessPolicy,
    ProtectedResource,
    ServerAccessRepository,
    UpstreamTokenProvider,
    McpAuthMiddleware,
  ],
})
export class AuthModule implements NestModule {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly ipLimit: IpRateLimitMiddleware,
    private readonly authentication: McpAuthMiddleware,
  ) {}

  configure(consumer: MiddlewareConsumer): void {
    // Mounted as a prefix: every path under MCP_PREFIX is guarded, including ones no route serves.
    // The per-IP limit goes first, so a flood of bad tokens never reaches the signature check or JWKS.
    // The provider instances themselves (Nest would make middleware instances of its own): the POST lane
    // (src/mcp/mcp-post-lane.ts) uses them too, and both must charge the same per-IP buckets.
    consumer
      .apply(
        (req: Request, res: Response, next: NextFunction) => this.ipLimit.use(req, res, next),
        (req: Request, res: Response, next: NextFunction) => this.authentication.use(req, res, next),
      )
      .forRoutes({ path: `${this.config.mcpPrefix}{/*rest}`, method: RequestMethod.ALL });
  }
}
