import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Controller, Get, Module, Req } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { Request } from 'express';
import { AppModule, type AppDependencies } from '../../src/app.module';
import { callerOf, principalOf } from '../../src/auth/principal';
import { configureApp, MIGRATIONS_DIR, NEST_OPTIONS, RunningGateway } from '../../src/bootstrap';
import { GatewayExpressAdapter } from '../../src/common/express-adapter';
import { type EnvSource, loadConfig } from '../../src/config/config';
import { openDatabase } from '../../src/database/database';
import { applyMigrations } from '../../src/database/migrator';
import { createLogger } from '../../src/logging/logger';
import { openStore } from '../../src/redis/open-store';
import { LogCapture, profileEnv, type TestGateway } from './gateway';

/** Where the probe answers: a route under MCP_PREFIX, as the MCP endpoints will be. */
export const PROBE_PATH = '/mcp/__probe/whoami';

/** Echoes what the MCP_PREFIX guard attached to the request, as an MCP handler would read it. */
@Controller(PROBE_PATH.slice(1))
class PrincipalProbeController {
  @Get()
  whoami(@Req() req: Request): Record<string, unknown> {
    const caller = callerOf(req);
    return {
      principal: principalOf(req),
      auth: { ...req.auth, token: undefined, tokenMatches: req.auth?.token === caller.token },
    };
  }
}

/**
 * The real gateway (PostgreSQL, Redis, the production pipeline) with one extra
 * route under MCP_PREFIX that shows the principal: no MCP endpoint exists yet
 * to show it otherwise.
 */
export async function startProbeGateway(env: EnvSource = {}): Promise<TestGateway> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'mcp-gateway-auth-'));
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    DISCOVERY_INTERVAL_MS: '0',
    HEALTH_PROBE_INTERVAL_MS: '0',
    ...profileEnv('services'),
    ...env,
  });
  const logs = new LogCapture();
  const logger = createLogger({ logLevel: 'info' }, logs.stream);
  const database = await openDatabase(config.database, logger);
  await applyMigrations(database.adapterFactory, MIGRATIONS_DIR);
  const store = await openStore(config, logger);
  const deps: AppDependencies = { config, logger, database, store };

  @Module({ imports: [AppModule.forRoot(deps)], controllers: [PrincipalProbeController] })
  class ProbeRootModule {}

  const app = await NestFactory.create(ProbeRootModule, new GatewayExpressAdapter(), NEST_OPTIONS);
  configureApp(app, logger);
  await app.listen(config.port, config.host);
  const gateway = new RunningGateway(app, deps);
  return {
    gateway,
    url: gateway.url,
    logs,
    dataDir,
    close: async () => {
      await gateway.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
