import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { HttpException, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { Application } from 'express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { Logger as NestPinoLogger } from 'nestjs-pino';
import { cleanupOpenApiDoc } from 'nestjs-zod';
import type { Logger } from 'pino';
import { pinoHttp } from 'pino-http';
import { type AppDependencies, AppModule } from './app.module';
import { GatewayExpressAdapter } from './common/express-adapter';
import { useJsonBody } from './common/json-body';
import { ProblemDetailsFilter } from './common/problem-details.filter';
import { RequestValidationPipe } from './common/request-validation.pipe';
import type { AppConfig } from './config/config';
import { APP_CONFIG } from './config/config.module';
import { AggregateServer } from './mcp/aggregate-server';
import { mcpEdge, mcpEdgeCheck } from './mcp/mcp-edge';
import { McpPostLane, type ProxyTrust } from './mcp/mcp-post-lane';
import { RestBridge } from './mcp/rest-bridge';
import { sendRpcProblem } from './mcp/rpc-problem';
import { SlugRelay } from './mcp/slug-relay';
import { isRestBridgePath, isUnder } from './common/request-path';
import { sendText } from './common/send-text';
import { McpAuthMiddleware } from './auth/mcp-auth.middleware';
import { IpRateLimitMiddleware } from './ratelimit/ip-rate-limit.middleware';
import { GatewayMetrics } from './metrics/gateway-metrics';
import { httpMetricsMiddleware, httpRequestMeter } from './metrics/http-metrics';
import { type DatabaseConnection, openDatabase } from './database/database';
import { applyMigrations, logMigrations, MIGRATIONS_DIR, migrationStatus } from './database/migrator';
import { DrainState } from './health/drain-state';
import { AuditTrail } from './audit/audit-trail';
import { openStore } from './redis/open-store';
import { GATEWAY_VERSION } from './version';
import { FACADE_PATH } from './registry-facade/registry-facade.controller';
import { sendRegistryError } from './registry-facade/registry-facade-error.filter';
import { httpLoggerOptions } from './logging/logger';

export { MIGRATIONS_DIR };

/** Options for every Nest application of ours; `configureApp` installs the body parser itself. */
export const NEST_OPTIONS = { bufferLogs: true, abortOnError: false, bodyParser: false } as const;

/**
 * The production HTTP pipeline, for an app made with `GatewayExpressAdapter`. `startGateway` and the tests that
 * build an app of their own both go through here, so tests run what production runs.
 */
export function configureApp(app: INestApplication, logger: Logger): void {
  const express = app as NestExpressApplication;
  express.disable('x-powered-by');
  express.useLogger(app.get(NestPinoLogger));
  const config = app.get<AppConfig>(APP_CONFIG);
  const underMcpPrefix = isUnder(config.mcpPrefix);
  // The MCP endpoints themselves, not the REST bridge beside them (which answers problem+json).
  const isJsonRpcPath = (path: string): boolean =>
    underMcpPrefix(path) && !isRestBridgePath(path.slice(config.mcpPrefix.length));
  const problems = new ProblemDetailsFilter(logger, [
    { covers: isUnder(`${config.apiPrefix}/${FACADE_PATH}`), send: sendRegistryError },
    { covers: isJsonRpcPath, send: sendRpcProblem },
  ]);
  express.useGlobalFilters(problems);
  express.useGlobalPipes(new RequestValidationPipe());
  // `req.ip` is the client behind trusted proxies (X-Forwarded-For), else the TCP peer.
  if (config.trustProxy !== undefined) express.set('trust proxy', config.trustProxy);
  const metrics = app.get(GatewayMetrics);
  const edgeOptions = {
    mcpPrefix: config.mcpPrefix,
    publicUrl: config.publicUrl,
    allowedHosts: config.mcp.allowedHosts,
    allowedOrigins: config.mcp.allowedOrigins,
  };
  // First of all, so requests refused by any later middleware are counted (and logged) too.
  express.use(httpMetricsMiddleware(metrics, config.mcpPrefix));
  // The access log line and request id of what Express serves (McpPostLane writes its own).
  express.use(pinoHttp(httpLoggerOptions(logger)));
  // Ahead of body parsing and of the token check: a wrong Host or a preflight needs neither.
  express.use(mcpEdge(edgeOptions));
  useJsonBody(app, {
    maxBytes: config.maxBodyBytes,
    isJsonRpc: (req) => isJsonRpcPath(req.path),
    takesJsonOnly: (req) => !underMcpPrefix(req.path),
  });
  // The MCP paths answer an unknown method by their own rules.
  const adapter = express.getHttpAdapter();
  if (adapter instanceof GatewayExpressAdapter) adapter.answerWrongMethods(underMcpPrefix);

  // POSTs to the MCP endpoints and the REST bridge's tool calls go around Express (see McpPostLane), through
  // the same steps.
  const ipLimit = app.get(IpRateLimitMiddleware);
  const authentication = app.get(McpAuthMiddleware);
  const aggregate = app.get(AggregateServer);
  const relay = app.get(SlugRelay);
  const bridge = app.get(RestBridge);
  new McpPostLane(
    {
      meter: httpRequestMeter(metrics),
      edge: mcpEdgeCheck(edgeOptions),
      ipLimit: (req, res) => ipLimit.admit(req, res),
      authenticate: (req, res) => authentication.admit(req, res),
      aggregate: (req, res) => aggregate.post(req, res),
      relay: (req, res, slug) => relay.post(req, res, slug),
      // What RestBridgeController does for this route; what it throws goes to `fault`, as to the exception filter.
      rest: async (req, res, slug, tool) => {
        const result = await bridge.callTool(req, res, slug, tool, req.body);
        sendText(res, 200, 'application/json', JSON.stringify(result));
      },
      problem: (req, res, status, detail) => problems.respond(new HttpException(detail, status), req, res),
      fault: (req, res, error) => problems.respond(error, req, res),
    },
    {
      mcpPrefix: config.mcpPrefix,
      maxBodyBytes: config.maxBodyBytes,
      trustProxy:
        config.trustProxy === undefined
          ? undefined
          : ((express.getHttpAdapter().getInstance() as Application).get('trust proxy fn') as ProxyTrust),
      logger,
    },
  ).install(app.getHttpServer() as Server);

  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('mcp-gateway')
      .setDescription('Registry of MCP servers and the gateway in front of them')
      .setVersion(GATEWAY_VERSION)
      .build(),
  );
  SwaggerModule.setup('docs', app, cleanupOpenApiDoc(document), {
    jsonDocumentUrl: 'docs-json',
    yamlDocumentUrl: 'docs-yaml',
  });
}

export interface StartOptions {
  logger: Logger;
  /** Apply pending migrations before serving (the default); `serve --no-migrate` turns it off. */
  migrate?: boolean;
  /** Another process took over the embedded database's lock: see `OpenOptions.onLockLost`. */
  onLockLost?: (owner: string) => void;
}

/** The response a connection is answering now, kept on its socket. */
const ANSWERING = Symbol('answering');
type Connection = Socket & { [ANSWERING]?: ServerResponse };

/**
 * A response's 'close' listener: its connection no longer answers it. One function for every response, not a closure
 * and a `once` wrapper per request (about 0.3 KB of a relayed call's 52 KB of allocations); 'close' comes once.
 */
function forgetAnswering(this: ServerResponse): void {
  const socket = this.req.socket as Connection;
  if (socket[ANSWERING] === this) socket[ANSWERING] = undefined;
}

/** A gateway that is serving; `close()` drains and stops it in reverse order of start. */
export class RunningGateway {
  private closing?: Promise<void>;
  /**
   * Open connections, each with the response it is answering (on the socket, cleared when the response closes),
   * so draining can tell their clients not to reuse the connection. Kept per connection, not per response: a
   * long-lived Set that took in and let go of every response allocated a new table as it grew and shrank, and
   * those tables outlived young collections (at concurrency 1, a twenty-fifth of the bytes that did).
   */
  private readonly connections = new Set<Connection>();

  constructor(
    readonly app: INestApplication,
    private readonly deps: AppDependencies,
  ) {
    const server = app.getHttpServer() as Server;
    server.on('connection', (socket: Connection) => {
      this.connections.add(socket);
      socket.once('close', () => this.connections.delete(socket));
    });
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      if (this.closing) {
        res.setHeader('connection', 'close');
        return;
      }
      (req.socket as Connection)[ANSWERING] = res;
      res.on('close', forgetAnswering);
    });
  }

  get url(): string {
    const address = (this.app.getHttpServer() as Server).address() as AddressInfo;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    return `http://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${address.port}`;
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  /**
   * For a process about to exit without draining: what the audit trail holds in memory is written to the spool,
   * synchronously, so that nothing is lost. Nothing else is closed.
   */
  abandon(): void {
    this.app.get(AuditTrail).spoolQueuedNow();
  }

  private async shutdown(): Promise<void> {
    const { config, logger, store, database } = this.deps;
    logger.info({ graceMs: config.shutdownGraceMs }, 'shutting down: draining requests');
    this.app.get(DrainState).startDraining();
    for (const socket of this.connections) {
      // Keep-alive clients then reconnect (elsewhere) instead of reusing a connection about to close.
      const res = socket[ANSWERING];
      if (res && !res.headersSent) res.setHeader('connection', 'close');
    }
    const server = this.app.getHttpServer() as Server;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const cut = setTimeout(() => {
      logger.warn('grace period over: closing the connections still open');
      server.closeAllConnections();
    }, config.shutdownGraceMs);
    try {
      await closed;
    } finally {
      clearTimeout(cut);
      try {
        await this.app.close();
      } finally {
        await store.close().catch((error: unknown) => logger.warn({ err: error }, 'closing Redis failed'));
        await database.close().catch((error: unknown) => logger.warn({ err: error }, 'closing the database failed'));
      }
    }
    logger.info('stopped');
  }
}

/**
 * Starts in order: database (+ migrations), Redis, modules, HTTP. A failing
 * step closes what was already opened and rejects with a clear message.
 */
export async function startGateway(config: AppConfig, options: StartOptions): Promise<RunningGateway> {
  const { logger } = options;
  const database = await openDatabase(config.database, logger, { onLockLost: options.onLockLost });
  let store: AppDependencies['store'] | undefined;
  let app: INestApplication | undefined;
  try {
    if (options.migrate !== false) {
      logMigrations(logger, await applyMigrations(database.adapterFactory, MIGRATIONS_DIR));
    } else {
      await requireMigrated(database, logger);
    }
    store = await openStore(config, logger);
    const deps: AppDependencies = { config, logger, database, store };
    app = await NestFactory.create(AppModule.forRoot(deps), new GatewayExpressAdapter(), NEST_OPTIONS);
    configureApp(app, logger);
    await app.listen(config.port, config.host);
    const gateway = new RunningGateway(app, deps);
    logger.info(
      { url: gateway.url, database: database.description, redis: store.kind },
      `mcp-gateway ${GATEWAY_VERSION} serving`,
    );
    return gateway;
  } catch (error) {
    await app?.close().catch(() => undefined);
    await store?.close().catch(() => undefined);
    await database.close().catch(() => undefined);
    throw error;
  }
}

/**
 * `serve --no-migrate` leaves the schema to `mcp-gateway migrate` (a Kubernetes Job): a database that lacks a
 * migration of this release would pass readiness and then fail every request, so the start stops instead.
 * Migrations this release does not know are a newer release's, applied before its rollout (they only add what
 * this release can ignore, the rule of the deployment docs): the previous release keeps serving during that
 * rollout, and a replica of it restarted then must start too.
 */
async function requireMigrated(database: DatabaseConnection, logger: Logger): Promise<void> {
  const { pending, unfinished, unknown } = await migrationStatus(database.adapterFactory, MIGRATIONS_DIR);
  const problems = [
    ...(pending.length ? [`lacks ${pending.length} migration(s) of this release: ${pending.join(', ')}`] : []),
    ...(unfinished.length ? [`records as failed or in progress: ${unfinished.join(', ')}`] : []),
  ];
  if (problems.length) {
    throw new Error(
      `the database at ${database.description} ${problems.join('; and ')}. Run \`mcp-gateway migrate\` ` +
        '(serve --no-migrate applies none)',
    );
  }
  if (unknown.length) logger.info({ newer: unknown }, 'the database has migrations of a newer release');
  else logger.info('database schema is up to date');
}
