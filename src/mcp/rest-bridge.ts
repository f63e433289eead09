import { Inject, Injectable } from '@nestjs/common';
import { PinoLogger } from 'nestjs-pino';
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv';
import type { JsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/types.js';
import type { ServerResponse } from 'node:http';
import { AccessPolicy } from '../auth/access-policy';
import { callerOf, type McpRequest, type Principal, principalOf } from '../auth/principal';
import { DomainError } from '../common/domain-error';
import type { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { bearerChallenge } from '../auth/bearer-challenge';
import { ProtectedResource } from '../auth/protected-resource';
import { LoopRefused } from '../upstream/gateway-via';
import { claimsChallengeOf, classifyUpstreamError } from '../upstream/upstream-error';
import { GATEWAY_VERSION } from '../version';
import { Catalog, type CatalogEntry, type CatalogSnapshot, definitionOf } from './catalog';
import { type GatewayServer, ServerDirectory } from './server-directory';
import { type UpstreamCancel, UpstreamPool } from './upstream-pool';
import { McpTraffic } from '../traffic/mcp-traffic';
import { ExchangeRecorder } from './exchange-recorder';
import { abortOnClose } from './http-replies';
import { errorResponse, ErrorCodes, type JsonRpcRequest } from './jsonrpc';
import { responseTo } from './upstream-exchange';

/**
 * `/mcp/{slug}/tools[/{tool}]` and `/mcp/{slug}/openapi.json`: a server's
 * tools as plain JSON over HTTP, for clients that do not speak MCP. Same
 * token, roles and upstream path as MCP calls; errors are problem+json.
 */
@Injectable()
export class RestBridge {
  /** Argument validators of the catalog snapshot they were compiled for (see validatorFor). */
  private validation?: Validation;

  constructor(
    private readonly directory: ServerDirectory,
    private readonly catalog: Catalog,
    private readonly policy: AccessPolicy,
    private readonly pool: UpstreamPool,
    private readonly traffic: McpTraffic,
    private readonly resource: ProtectedResource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly logger: PinoLogger,
  ) {
    this.logger.setContext(RestBridge.name);
  }

  /** The tools of the server the caller may use, as the upstream names and describes them. */
  async listTools(req: McpRequest, res: ServerResponse, slug: string): Promise<{ tools: Record<string, unknown>[] }> {
    const server = await this.server(req, slug);
    const exchanges = new ExchangeRecorder(this.traffic, req, res, 'rest', principalOf(req), server);
    const request = restRequest('tools/list', {});
    await this.admit(exchanges, request);
    const tools = this.usableTools(req, server).map((entry) => this.upstreamDefinition(entry));
    exchanges.answered(request, { jsonrpc: '2.0', id: request.id, result: {} });
    return { tools };
  }

  async callTool(
    req: McpRequest,
    res: ServerResponse,
    slug: string,
    tool: string,
    args: unknown,
  ): Promise<Record<string, unknown>> {
    const server = await this.server(req, slug);
    const principal = principalOf(req);
    const exchanges = new ExchangeRecorder(this.traffic, req, res, 'rest', principal, server);
    const request = restRequest('tools/call', { name: tool, arguments: args });
    const entry = this.usableTool(principal, server, tool);
    // A tool the caller may not use (or that is not there) spends no budget of its own: callers refused it could
    // otherwise drain it for everyone (a `scope: all` one).
    await this.admit(exchanges, request, entry ? tool : undefined);
    const refuse = (error: DomainError): DomainError => {
      exchanges.answered(request, errorResponse(request.id, ErrorCodes.invalidParams, error.detail));
      return error;
    };
    if (!entry) {
      const decision = this.policy.canUseTool(principal, server, tool);
      const notFound = new DomainError('not_found', `server ${slug} has no tool ${tool}`);
      if (decision.allowed) throw refuse(notFound);
      exchanges.denied(request, decision.rule);
      throw notFound;
    }
    const input = args ?? {};
    if (typeof input !== 'object' || Array.isArray(input)) {
      throw refuse(
        new DomainError('validation_error', 'the body must be a JSON object of the tool arguments', [
          { field: '(body)', message: 'must be an object' },
        ]),
      );
    }
    const verdict = this.validatorFor(entry)(input);
    if (!verdict.valid) {
      throw refuse(
        new DomainError('validation_error', `the arguments do not match the input schema of ${tool}`, [
          { field: '(body)', message: verdict.errorMessage },
        ]),
      );
    }
    exchanges.begin(request);
    exchanges.upstreamStarted();
    // A REST client that hangs up cannot send notifications/cancelled as an MCP client would: the gateway tells the
    // upstream for it, then lets go of the call.
    let cancelUpstream: UpstreamCancel | undefined;
    const abort = abortOnClose(res, {
      closed: () => {
        cancelUpstream?.('the client closed the connection').catch((error: unknown) =>
          this.logger.warn({ err: error }, 'cancelling upstream failed'),
        );
      },
    });
    try {
      const { reply, id, decline } = await this.pool.request(
        server,
        callerOf(req),
        'tools/call',
        { name: tool, arguments: input },
        abort.signal,
        (cancel) => (cancelUpstream = cancel),
      );
      const response = await responseTo(reply, id, decline);
      if (response) exchanges.settle({ ...response, id: request.id }, reply.status);
      if (!response) throw new DomainError('upstream_error', `upstream ${slug} sent no answer`);
      if ('error' in response) {
        const code = response.error.code === -32602 ? 'validation_error' : 'upstream_error';
        throw new DomainError(code, `upstream ${slug}: ${response.error.message}`);
      }
      return response.result;
    } catch (error) {
      if (error instanceof DomainError) throw error;
      if (abort.signal.aborted) {
        exchanges.cancelled({ clientClosed: true });
        throw new DomainError('upstream_error', `the client closed the connection before upstream ${slug} answered`);
      }
      exchanges.fail(error);
      const { kind, message } = classifyUpstreamError(error);
      const claims = claimsChallengeOf(error);
      if (claims) {
        throw new DomainError('unauthorized', message, undefined, {
          'www-authenticate': bearerChallenge({
            error: 'insufficient_claims',
            description: message,
            resourceMetadata: this.resource.metadataUrl(slug),
            scopes: this.resource.scopes,
            claims,
          }),
        });
      }
      if (error instanceof LoopRefused && !error.ours) {
        // Refused for a gateway the request's own `Via` names: what the caller sent, not the upstream, is at fault.
        throw new DomainError('validation_error', `upstream ${slug} failed: ${message}`, [
          { field: 'Via', message: `names gateway ${error.gateway}, which refused the request as a loop` },
        ]);
      }
      if (kind === 'timeout') throw new DomainError('upstream_timeout', `upstream ${slug} did not answer in time`);
      // Unclassified, it may be a fault of the gateway's own: the exception filter's 500 with an error id, not its text.
      if (kind === 'other') throw error;
      throw new DomainError('upstream_error', `upstream ${slug} failed: ${message}`);
    } finally {
      abort.done();
      exchanges.close();
    }
  }

  /** Spends the request's budget, or refuses it with 429 (its RateLimit fields are already on the response). */
  private async admit(exchanges: ExchangeRecorder, request: JsonRpcRequest, tool?: string): Promise<void> {
    const limited = await exchanges.admit(request, tool !== undefined ? { tool } : {});
    if (!limited) return;
    const retryAfter = String(limited.verdict.retryAfterSeconds ?? 1);
    throw new DomainError('rate_limited', `rate limit exceeded; retry after ${retryAfter} s`, undefined, {
      'retry-after': retryAfter,
    });
  }

  /** An OpenAPI 3.1 document with one operation per tool the caller may use. */
  async openApi(req: McpRequest, slug: string): Promise<Record<string, unknown>> {
    const server = await this.server(req, slug);
    const paths: Record<string, unknown> = {};
    for (const entry of this.usableTools(req, server)) {
      const definition = definitionOf(entry);
      paths[`/${encodeURIComponent(entry.name)}`] = {
        post: {
          operationId: entry.gatewayName,
          summary: definition.title ?? entry.name,
          description: definition.description,
          requestBody: { required: true, content: { 'application/json': { schema: definition.inputSchema ?? {} } } },
          responses: {
            '200': {
              description: 'The tool result (MCP CallToolResult)',
              content: { 'application/json': { schema: callToolResultSchema(definition.outputSchema) } },
            },
            '400': { description: 'The arguments do not match the input schema', content: PROBLEM },
            '404': { description: 'No such tool', content: PROBLEM },
            '429': { description: 'A rate limit is met; Retry-After says when to try again', content: PROBLEM },
            '502': { description: 'The upstream failed', content: PROBLEM },
            '504': { description: 'The upstream did not answer in time', content: PROBLEM },
          },
        },
      };
    }
    return {
      openapi: '3.1.0',
      info: { title: `${server.title ?? server.name} (through mcp-gateway)`, version: GATEWAY_VERSION },
      servers: [{ url: `${this.config.publicUrl}${this.config.mcpPrefix}/${server.slug}/tools` }],
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
      security: [{ bearer: [] }],
      paths,
    };
  }

  private async server(req: McpRequest, slug: string): Promise<GatewayServer> {
    const server = await this.directory.bySlug(slug);
    if (!server || !this.policy.canSeeServer(principalOf(req), server).allowed) {
      throw new DomainError('not_found', `no MCP server ${slug}`);
    }
    return server;
  }

  private usableTools(req: McpRequest, server: GatewayServer): CatalogEntry[] {
    const principal = principalOf(req);
    const tools = this.catalog.current().toolsByServer.get(server.id)?.values() ?? [];
    return [...tools].filter((entry) => this.catalog.allows(principal, entry));
  }

  private upstreamDefinition(entry: CatalogEntry): Record<string, unknown> {
    return { ...definitionOf(entry), name: entry.name };
  }

  /** The tool, when the catalog has it and the caller may use it: one lookup, whatever the catalog's size. */
  private usableTool(principal: Principal, server: GatewayServer, tool: string): CatalogEntry | undefined {
    const entry = this.catalog.current().toolsByServer.get(server.id)?.get(tool);
    return entry && this.catalog.allows(principal, entry) ? entry : undefined;
  }

  /**
   * Compiled once per catalog entry: a new catalog (a changed schema among them) brings new entries. Ajv keeps
   * every schema it compiled for as long as it lives, so each catalog snapshot gets an Ajv of its own, which
   * goes with the snapshot's entries instead of growing with every rebuild.
   */
  private validatorFor(entry: CatalogEntry): JsonSchemaValidator<unknown> {
    const snapshot = this.catalog.current();
    if (this.validation?.snapshot !== snapshot) this.validation = newValidation(snapshot);
    const { ajv, validators } = this.validation;
    let validator = validators.get(entry);
    if (!validator) {
      validator = ajv.getValidator(definitionOf(entry).inputSchema ?? {});
      validators.set(entry, validator);
    }
    return validator;
  }
}

interface Validation {
  snapshot: CatalogSnapshot;
  ajv: AjvJsonSchemaValidator;
  validators: WeakMap<CatalogEntry, JsonSchemaValidator<unknown>>;
}

function newValidation(snapshot: CatalogSnapshot): Validation {
  return {
    snapshot,
    ajv: new AjvJsonSchemaValidator(),
    validators: new WeakMap<CatalogEntry, JsonSchemaValidator<unknown>>(),
  };
}

/** A REST call as the JSON-RPC request it stands for, so it is limited and recorded as MCP calls are. */
function restRequest(method: string, params: Record<string, unknown>): JsonRpcRequest {
  return { jsonrpc: '2.0', id: 'rest', method, params };
}

const PROBLEM = { 'application/problem+json': { schema: { type: 'object' } } };

function callToolResultSchema(outputSchema: unknown): Record<string, unknown> {
  return {
    type: 'object',
    properties: {
      content: { type: 'array', items: { type: 'object' } },
      ...(outputSchema ? { structuredContent: outputSchema } : {}),
      isError: { type: 'boolean' },
    },
    required: ['content'],
  };
}
