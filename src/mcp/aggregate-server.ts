import { Inject, Injectable, type OnModuleDestroy } from '@nestjs/common';
import {
  LATEST_PROTOCOL_VERSION,
  LoggingLevelSchema,
  SUPPORTED_PROTOCOL_VERSIONS,
} from '@modelcontextprotocol/sdk/types.js';
import type { ServerResponse } from 'node:http';
import { PinoLogger } from 'nestjs-pino';
import { callerOf, type McpRequest, principalOf, type Principal, type UpstreamCaller } from '../auth/principal';
import type { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { ProtectedResource } from '../auth/protected-resource';
import { LOOP_HEADER, LOOP_REFUSED, LoopRefused } from '../upstream/gateway-via';
import { claimsChallengeOf } from '../upstream/upstream-error';
import { GATEWAY_VERSION } from '../version';
import { gatewayResourceUri } from '../discovery/gateway-names';
import { Catalog, type CatalogEntry, type CatalogKind } from './catalog';
import {
  acceptableFor,
  endWith,
  endWithEvent,
  refuseUnknownProtocolVersion,
  requestedSession,
  refuseUnlessEventStream,
  sendClaimsChallenge,
  sendEvent,
  sendJson,
  sendRpcError,
  sendSessionStoreOutage,
  startSse,
  writeEvent,
} from './http-replies';
import { CallSignal } from '../common/call-signal';
import { sendAround } from '../common/send-text';
import {
  ErrorCodes,
  errorResponse,
  isRequest,
  type JsonRpcErrorResponse,
  type JsonRpcRequest,
  type JsonRpcResponse,
  parseBody,
  resultResponse,
} from './jsonrpc';
import { principalKeyOf } from './principal-key';
import type { GatewayServer } from './server-directory';
import { type McpSession, McpSessionStore, SessionStoreUnavailable } from './session-store';
import { SESSION_HEADER } from './streamable-http-client';
import { InFlightRequests } from './in-flight';
import { McpTraffic } from '../traffic/mcp-traffic';
import type { ServerRef } from '../traffic/mcp-exchange';
import { ExchangeRecorder, sendRateLimited } from './exchange-recorder';
import { type UpstreamCancel, UpstreamPool } from './upstream-pool';
import { isRequestMessage, isResponseTo, readToTheEnd, responseTo, safeJson } from './upstream-exchange';
import { upstreamFailureOf } from './upstream-failure';

const LIST_METHODS: Record<string, { kind: CatalogKind; field: string }> = {
  'tools/list': { kind: 'tool', field: 'tools' },
  'prompts/list': { kind: 'prompt', field: 'prompts' },
  'resources/list': { kind: 'resource', field: 'resources' },
  'resources/templates/list': { kind: 'resource_template', field: 'resourceTemplates' },
};
const LIST_CHANGED = [
  'notifications/tools/list_changed',
  'notifications/prompts/list_changed',
  'notifications/resources/list_changed',
];
const KEEPALIVE_MS = 25_000;
/** `logging/setLevel`'s levels, least severe first. */
const LOG_LEVELS: readonly string[] = LoggingLevelSchema.options;

interface Call {
  session: McpSession;
  principal: Principal;
  caller: UpstreamCaller;
  signal: CallSignal;
  exchanges: ExchangeRecorder;
  /** The request's id, which the log line of an internal fault carries. */
  requestId: unknown;
  /** A refusal of a loop through a gateway in front of this one that an upstream request met (`passOnLoop`). */
  loopRefused?: LoopRefused;
}

/**
 * `/mcp`: one MCP server over every upstream the caller may use. Lists come
 * from the in-memory catalog (no upstream is asked); calls go to the owning
 * upstream through the pool under the upstream's own names. Open GET streams
 * of this process hear `list_changed` whenever the catalog changes.
 */
@Injectable()
export class AggregateServer implements OnModuleDestroy {
  private readonly streams = new Map<string, Set<ServerResponse>>();
  private readonly stopListening: () => void;
  private readonly stopHearingDeletions: () => void;
  private readonly stopHearingMissedDeletions: () => void;
  /** MCP_STATELESS: no sessions, no event stream; each request stands alone. */
  private readonly stateless: boolean;

  constructor(
    private readonly catalog: Catalog,
    private readonly pool: UpstreamPool,
    @Inject(McpSessionStore) private readonly sessions: McpSessionStore,
    @Inject(InFlightRequests) private readonly inFlight: InFlightRequests,
    private readonly traffic: McpTraffic,
    private readonly resource: ProtectedResource,
    private readonly logger: PinoLogger,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.logger.setContext(AggregateServer.name);
    this.stateless = config.mcp.stateless;
    this.stopListening = catalog.onChange(() => this.announceListChanged());
    // A session ended on another replica ends its event streams here too.
    this.stopHearingDeletions = sessions.onDeleted((id) => this.endStreams(id));
    this.stopHearingMissedDeletions = sessions.onDeletionsMissed(() => void this.endStreamsOfEndedSessions());
  }

  onModuleDestroy(): void {
    this.stopListening();
    this.stopHearingDeletions();
    this.stopHearingMissedDeletions();
    for (const streams of this.streams.values()) for (const res of streams) res.end();
    this.streams.clear();
  }

  async post(req: McpRequest, res: ServerResponse): Promise<void> {
    const principal = principalOf(req);
    const parsed = parseBody(req.body);
    if ('problem' in parsed) return sendRpcError(res, 400, null, parsed.code, parsed.problem);
    const { messages, batch } = parsed;
    const initialize = messages.find((message) => isRequest(message) && message.method === 'initialize');
    const exchanges = new ExchangeRecorder(this.traffic, req, res, 'aggregate', principal);
    if (initialize) {
      if (messages.length > 1)
        return sendRpcError(res, 400, null, ErrorCodes.invalidRequest, 'initialize must be sent on its own');
      const limited = await exchanges.admit(initialize as JsonRpcRequest);
      if (limited) return sendRateLimited(res, limited);
      return this.initialize(res, principal, initialize as JsonRpcRequest, exchanges);
    }
    const session = await this.sessionFor(req, res, principal, exchanges);
    if (!session) return;
    exchanges.sessionId = session.id;

    const cancelling = this.inFlight.cancelNamedIn(session.id, messages);
    if (cancelling) await cancelling;
    const requests = messages.filter(isRequest);
    if (requests.length === 0) {
      endWith(res, 202);
      return;
    }
    const signal = new CallSignal();
    res.on('close', () => {
      if (!res.writableFinished) signal.abort(new Error('the client closed the connection'));
    });
    const call: Call = { session, principal, caller: callerOf(req), signal, exchanges, requestId: req.id };
    if (!batch && requests.length === 1) {
      const request = requests[0]!;
      const limited = await exchanges.admit(request, this.route(request, principal));
      if (limited) return sendRateLimited(res, limited);
      return this.answer(res, request, call);
    }
    const responses: JsonRpcResponse[] = [];
    for (const request of requests) {
      const limited = await exchanges.admit(request, this.route(request, principal));
      responses.push(limited ? limited.refusal : await this.respond(request, call));
    }
    sendJson(res, 200, responses);
  }

  async get(req: McpRequest, res: ServerResponse): Promise<void> {
    if (this.stateless)
      return sendRpcError(res, 405, null, ErrorCodes.invalidRequest, 'No event stream in stateless mode');
    if (refuseUnlessEventStream(req, res)) return;
    const session = await this.sessionFor(req, res, principalOf(req));
    if (!session) return;
    startSse(res);
    let streams = this.streams.get(session.id);
    if (!streams) {
      streams = new Set();
      this.streams.set(session.id, streams);
    }
    streams.add(res);
    const keepalive = setInterval(() => res.write(': keepalive\n\n'), KEEPALIVE_MS);
    keepalive.unref();
    res.on('close', () => {
      clearInterval(keepalive);
      streams.delete(res);
      if (streams.size === 0) this.streams.delete(session.id);
    });
  }

  async delete(req: McpRequest, res: ServerResponse): Promise<void> {
    if (this.stateless) return sendRpcError(res, 405, null, ErrorCodes.invalidRequest, 'No sessions in stateless mode');
    const session = await this.sessionFor(req, res, principalOf(req));
    if (!session) return;
    await this.sessions.delete(session.id);
    this.endStreams(session.id);
    endWith(res, 200);
  }

  private endStreams(sessionId: string): void {
    for (const stream of this.streams.get(sessionId) ?? []) stream.end();
    this.streams.delete(sessionId);
  }

  /**
   * Sessions may have ended on another replica unheard (the session store's subscription was interrupted): the
   * streams of each that the store no longer holds end, as its deletion would have ended them. Should the store not
   * answer, the rest stay, to be checked when deletions are missed next.
   */
  private async endStreamsOfEndedSessions(): Promise<void> {
    for (const sessionId of [...this.streams.keys()]) {
      try {
        if (!(await this.sessions.exists(sessionId))) this.endStreams(sessionId);
      } catch (error) {
        this.logger.warn({ err: error }, 'could not check which sessions with event streams ended meanwhile');
        return;
      }
    }
  }

  private async initialize(
    res: ServerResponse,
    principal: Principal,
    request: JsonRpcRequest,
    exchanges: ExchangeRecorder,
  ): Promise<void> {
    const requested = request.params?.protocolVersion;
    const protocolVersion =
      typeof requested === 'string' && SUPPORTED_PROTOCOL_VERSIONS.includes(requested)
        ? requested
        : LATEST_PROTOCOL_VERSION;
    const session: McpSession = {
      id: McpSessionStore.newId(),
      principalKey: principalKeyOf(principal),
      protocolVersion,
      initializeParams: request.params ?? {},
      upstreamSessions: {},
      createdAt: Date.now(),
    };
    if (!this.stateless) {
      try {
        await this.sessions.create(session);
      } catch (error) {
        // Audited as the gateway's own failure either way; a refusal of Redis is answered by the exception filter.
        exchanges.begin(request);
        exchanges.fail(error);
        if (!(error instanceof SessionStoreUnavailable)) throw error;
        return sendSessionStoreOutage(res, request.id, error);
      }
      exchanges.sessionId = session.id;
      res.setHeader(SESSION_HEADER, session.id);
    }
    const response = resultResponse(request.id, {
      protocolVersion,
      capabilities: {
        tools: { listChanged: true },
        prompts: { listChanged: true },
        resources: { listChanged: true },
        completions: {},
        logging: {},
      },
      serverInfo: { name: 'mcp-gateway', title: 'MCP Gateway', version: GATEWAY_VERSION },
      instructions:
        'Tools, prompts and resources of every MCP server you may use. Names are {server}__{name}; resource URIs are mcpgw://{server}/{uri}.',
    });
    exchanges.answered(request, response);
    sendJson(res, 200, response);
  }

  /** The server (and tool) a request is for, when the caller may see it: what its rate limits are counted against. */
  private route(request: JsonRpcRequest, principal: Principal): { server?: ServerRef; tool?: string } {
    const params = request.params;
    if (request.method === 'tools/call' || request.method === 'prompts/get') {
      const kind = request.method === 'tools/call' ? 'tool' : 'prompt';
      const entry =
        typeof params?.name === 'string' ? this.catalog.current().byGatewayName[kind].get(params.name) : undefined;
      if (!entry || !this.catalog.decide(principal, entry).allowed) return {};
      return kind === 'tool' ? { server: entry.server, tool: entry.name } : { server: entry.server };
    }
    if (request.method === 'resources/read' && typeof params?.uri === 'string') {
      const resolved = this.catalog.resolveResourceUri(params.uri);
      if (resolved && this.catalog.decide(principal, { kind: 'resource', server: resolved.server, name: '' }).allowed)
        return { server: resolved.server };
    }
    return {};
  }

  private async sessionFor(
    req: McpRequest,
    res: ServerResponse,
    principal: Principal,
    exchanges = new ExchangeRecorder(this.traffic, req, res, 'aggregate', principal),
  ): Promise<McpSession | undefined> {
    if (this.stateless) {
      if (refuseUnknownProtocolVersion(req, res, LATEST_PROTOCOL_VERSION)) return undefined;
      // Every request stands alone; cancellations are matched per caller.
      const principalKey = principalKeyOf(principal);
      return {
        id: `stateless:${principalKey}`,
        principalKey,
        protocolVersion: LATEST_PROTOCOL_VERSION,
        initializeParams: {},
        upstreamSessions: {},
        createdAt: Date.now(),
      };
    }
    return requestedSession(this.sessions, req, res, principalKeyOf(principal), undefined, (ending) =>
      exchanges.sessionRefused(ending, req.body),
    );
  }

  /** Answers one request on its own HTTP response: lists straight from the catalog's cache, calls possibly as a stream. */
  private async answer(res: ServerResponse, request: JsonRpcRequest, call: Call): Promise<void> {
    const list = LIST_METHODS[request.method];
    if (list && request.params?.cursor === undefined) {
      const body = this.catalog.listBodyFor(call.principal, list.kind);
      call.exchanges.answered(request, resultResponse(request.id, {}));
      const head = `{"jsonrpc":"2.0","id":${JSON.stringify(request.id)},"result":{"${list.field}":`;
      if (acceptableFor(res.req).json) return sendAround(res, 200, 'application/json', head, body, '}}');
      return sendEvent(res, `${head}${body.toString('utf8')}}}`);
    }
    if (request.method === 'tools/call' || request.method === 'prompts/get') return this.relayCall(res, request, call);
    const response = await this.respond(request, call);
    if (call.loopRefused && 'error' in response) return passOnLoop(res, call.loopRefused, response);
    sendJson(res, 200, response);
  }

  /** The response to one request, as a value (batches, and methods without streaming). */
  private async respond(request: JsonRpcRequest, call: Call): Promise<JsonRpcResponse> {
    const local = this.localAnswer(request, call);
    if (local) {
      call.exchanges.answered(request, local);
      return local;
    }
    switch (request.method) {
      case 'tools/call':
      case 'prompts/get': {
        const target = this.target(request, call);
        if ('error' in target) return target;
        return resourcesHere(await this.forward(request, target.server, target.params, call), target.server.slug);
      }
      case 'resources/read':
        return this.readResource(request, call);
      case 'logging/setLevel':
        return this.setLevel(request, call);
      default:
        return this.complete(request, call);
    }
  }

  /** The answer to a request no upstream is asked about, or undefined when one is. */
  private localAnswer(request: JsonRpcRequest, call: Call): JsonRpcResponse | undefined {
    const list = LIST_METHODS[request.method];
    if (list) {
      // Everything is on the first page: no cursor was ever handed out.
      if (request.params?.cursor !== undefined)
        return errorResponse(request.id, ErrorCodes.invalidParams, 'Invalid cursor: /mcp lists everything at once');
      return resultResponse(request.id, { [list.field]: this.catalog.listFor(call.principal, list.kind) });
    }
    switch (request.method) {
      case 'ping':
        return resultResponse(request.id, {});
      case 'tools/call':
      case 'prompts/get':
      case 'resources/read':
      case 'completion/complete':
      case 'logging/setLevel':
        return undefined;
      default:
        return errorResponse(request.id, ErrorCodes.methodNotFound, `Method not found: ${request.method}`);
    }
  }

  /** Where a tool call or prompt get goes, or the error that reads exactly like "no such tool". */
  private target(
    request: JsonRpcRequest,
    call: Call,
  ): { server: GatewayServer; params: Record<string, unknown> } | JsonRpcErrorResponse {
    const kind = request.method === 'tools/call' ? 'tool' : 'prompt';
    const name = request.params?.name;
    const entry = typeof name === 'string' ? this.catalog.current().byGatewayName[kind].get(name) : undefined;
    const decision = entry && this.catalog.decide(call.principal, entry);
    if (!entry || !decision?.allowed) {
      if (entry && decision) call.exchanges.denied(request, decision.rule, entry.server, entry.name);
      else call.exchanges.answered(request, errorResponse(request.id, ErrorCodes.invalidParams, 'not found'));
      return errorResponse(
        request.id,
        ErrorCodes.invalidParams,
        `${kind === 'tool' ? 'Tool' : 'Prompt'} ${String(name)} not found`,
      );
    }
    // `/mcp` declares no tasks: a task-augmented call is served as an ordinary one (the spec's rule), so the
    // upstream must not see the augmentation either.
    const { task: _task, ...params } = request.params ?? {};
    return { server: entry.server, params: { ...params, name: entry.name } };
  }

  private async relayCall(res: ServerResponse, request: JsonRpcRequest, call: Call): Promise<void> {
    const target = this.target(request, call);
    if ('error' in target) return sendJson(res, 200, target);
    const cancellable = this.cancellable(request, call);
    call.exchanges.begin(request, target.server, target.params.name as string);
    call.exchanges.upstreamStarted(request.id);
    try {
      const { reply, id, decline } = await this.pool.request(
        target.server,
        call.caller,
        request.method,
        target.params,
        cancellable.signal,
        cancellable.onDispatch,
      );
      if (reply.body.kind !== 'sse') {
        const response = await responseTo(reply, id, decline);
        const answer = response
          ? resourcesHere({ ...response, id: request.id }, target.server.slug)
          : this.noAnswer(request, target.server);
        call.exchanges.settle(answer, reply.status);
        return sendJson(res, 200, answer);
      }
      // Progress and log notifications travel with the call, as the upstream sends them, unless the client takes
      // only JSON: it then gets the answer alone.
      const stream = acceptableFor(res.req).eventStream;
      if (stream) startSse(res);
      let answer: JsonRpcResponse | undefined;
      const events = reply.body.events[Symbol.asyncIterator]();
      for (let next = await events.next(); !next.done; next = await events.next()) {
        const event = next.value;
        const value = safeJson(event.data);
        if (isResponseTo(value, id)) {
          answer = resourcesHere({ ...(value as JsonRpcResponse), id: request.id }, target.server.slug);
          call.exchanges.settle(answer, reply.status);
          readToTheEnd(events);
          break;
        }
        if (isRequestMessage(value)) decline(value as JsonRpcRequest);
        else if (stream && value !== undefined && !belowLevel(value, call.session.logLevel))
          writeEvent(res, { data: event.data });
      }
      answer ??= this.noAnswer(request, target.server);
      if (stream) endWithEvent(res, { data: JSON.stringify(answer) });
      else sendJson(res, 200, answer);
    } catch (error) {
      this.recordFailure(call, request, cancellable.signal, error);
      if (cancellable.signal.aborted && !call.signal.aborted && acceptableFor(res.req).eventStream) {
        // Cancelled by the client's notifications/cancelled: a cancelled request is not answered. The stream
        // ends empty (a client taking only JSON still gets the error: its POST must be answered).
        if (!res.headersSent) startSse(res);
        res.end();
        return;
      }
      const failure = this.failure(request, target.server, error, call);
      const claims = claimsChallengeOf(error);
      if (claims && !res.headersSent) {
        return sendClaimsChallenge(res, this.resource, undefined, claims, failure.error.message);
      }
      if (res.headersSent) {
        writeEvent(res, { data: JSON.stringify(failure) });
        res.end();
      } else if (call.loopRefused) passOnLoop(res, call.loopRefused, failure);
      else sendJson(res, 200, failure);
    } finally {
      call.exchanges.close();
      cancellable.done();
    }
  }

  /**
   * Records how a forwarded request failed: cancelled when its signal (`cancellable`) was aborted, by the client's
   * `notifications/cancelled` or by its closing the connection (the call's own signal); else as the upstream's failure.
   */
  private recordFailure(call: Call, request: JsonRpcRequest, signal: CallSignal, error: unknown): void {
    if (signal.aborted) call.exchanges.cancelled({ id: request.id, clientClosed: call.signal.aborted });
    else call.exchanges.fail(error, request.id);
  }

  /**
   * A signal for one upstream request that the client can cancel with
   * `notifications/cancelled` (on any replica): the upstream is told, then our
   * side of the request is dropped.
   */
  private cancellable(
    request: JsonRpcRequest,
    call: Call,
  ): { signal: CallSignal; onDispatch: (cancel: UpstreamCancel) => void; done: () => void } {
    const signal = new CallSignal(call.signal);
    let untrack = (): void => undefined;
    return {
      signal,
      onDispatch: (cancelUpstream) => {
        untrack();
        untrack = this.inFlight.track(call.session.id, request.id, (reason) => {
          cancelUpstream(reason).catch((error: unknown) =>
            this.logger.warn({ err: error }, 'cancelling upstream failed'),
          );
          signal.abort(new Error('cancelled by the client'));
        });
      },
      done: () => {
        untrack();
        signal.dispose();
      },
    };
  }

  private async forward(
    request: JsonRpcRequest,
    server: GatewayServer,
    params: Record<string, unknown>,
    call: Call,
  ): Promise<JsonRpcResponse> {
    const cancellable = this.cancellable(request, call);
    const target = params.name ?? params.uri ?? (params.ref as { name?: unknown; uri?: unknown } | undefined)?.name;
    call.exchanges.begin(request, server, typeof target === 'string' ? target : undefined);
    call.exchanges.upstreamStarted(request.id);
    try {
      const { reply, id, decline } = await this.pool.request(
        server,
        call.caller,
        request.method,
        params,
        cancellable.signal,
        cancellable.onDispatch,
      );
      const response = await responseTo(reply, id, decline);
      const answer = response ? { ...response, id: request.id } : this.noAnswer(request, server);
      call.exchanges.settle(answer, reply.status);
      return answer;
    } catch (error) {
      this.recordFailure(call, request, cancellable.signal, error);
      return this.failure(request, server, error, call);
    } finally {
      call.exchanges.close();
      cancellable.done();
    }
  }

  private async readResource(request: JsonRpcRequest, call: Call): Promise<JsonRpcResponse> {
    const uri = request.params?.uri;
    const resolved = typeof uri === 'string' ? this.catalog.resolveResourceUri(uri) : undefined;
    const decision =
      resolved && this.catalog.decide(call.principal, { kind: 'resource', server: resolved.server, name: '' });
    if (!resolved || !decision?.allowed) {
      const notFound = errorResponse(request.id, -32002, `Resource ${String(uri)} not found`);
      if (resolved && decision) {
        call.exchanges.denied(request, decision.rule, resolved.server, resolved.uri);
        return notFound;
      }
      return this.unanswerable(call, notFound, request);
    }
    const response = await this.forward(request, resolved.server, { ...request.params, uri: resolved.uri }, call);
    if (!('result' in response)) return response;
    const prefix = (uri as string).slice(0, (uri as string).length - resolved.uri.length);
    const contents = Array.isArray(response.result.contents)
      ? (response.result.contents as Record<string, unknown>[]).map((content) =>
          typeof content.uri === 'string' ? { ...content, uri: prefix + content.uri } : content,
        )
      : response.result.contents;
    return { ...response, result: { ...response.result, contents } };
  }

  /** Completion for a prompt's or a resource template's arguments, asked of the upstream that owns it. */
  private async complete(request: JsonRpcRequest, call: Call): Promise<JsonRpcResponse> {
    const ref = request.params?.ref as { type?: unknown; name?: unknown; uri?: unknown } | undefined;
    if (ref?.type === 'ref/prompt' && typeof ref.name === 'string') {
      const entry = this.catalog.current().byGatewayName.prompt.get(ref.name);
      if (!entry || !this.catalog.allows(call.principal, entry)) {
        return this.unanswerable(
          call,
          errorResponse(request.id, ErrorCodes.invalidParams, `Prompt ${ref.name} not found`),
          request,
        );
      }
      return noCompletionUnlessSupported(
        request,
        await this.forward(request, entry.server, { ...request.params, ref: { ...ref, name: entry.name } }, call),
      );
    }
    if (ref?.type === 'ref/resource' && typeof ref.uri === 'string') {
      const resolved = this.catalog.resolveResourceUri(ref.uri);
      if (
        !resolved ||
        !this.catalog.allows(call.principal, { kind: 'resource', server: resolved.server } as CatalogEntry)
      ) {
        return this.unanswerable(
          call,
          errorResponse(request.id, ErrorCodes.invalidParams, `Resource ${ref.uri} not found`),
          request,
        );
      }
      return noCompletionUnlessSupported(
        request,
        await this.forward(request, resolved.server, { ...request.params, ref: { ...ref, uri: resolved.uri } }, call),
      );
    }
    return this.unanswerable(
      call,
      errorResponse(request.id, ErrorCodes.invalidParams, 'completion/complete needs a ref/prompt or ref/resource'),
      request,
    );
  }

  /**
   * `logging/setLevel`: upstream log messages below `level` are no longer relayed to this session (upstreams keep
   * their own levels: their sessions are the gateway's, shared between clients).
   */
  private async setLevel(request: JsonRpcRequest, call: Call): Promise<JsonRpcResponse> {
    const level = request.params?.level;
    if (typeof level !== 'string' || !LOG_LEVELS.includes(level)) {
      const levels = LOG_LEVELS.join(', ');
      return this.unanswerable(
        call,
        errorResponse(request.id, ErrorCodes.invalidParams, `Invalid log level: expected one of ${levels}`),
        request,
      );
    }
    if (!this.stateless) await this.sessions.save({ ...call.session, logLevel: level });
    const response = resultResponse(request.id, {});
    call.exchanges.answered(request, response);
    return response;
  }

  /** An error the gateway answers itself, recorded as such. */
  private unanswerable(call: Call, response: JsonRpcErrorResponse, request: JsonRpcRequest): JsonRpcErrorResponse {
    call.exchanges.answered(request, response);
    return response;
  }

  private noAnswer(request: JsonRpcRequest, server: GatewayServer): JsonRpcResponse {
    return errorResponse(request.id, ErrorCodes.internalError, `Upstream ${server.slug} failed: it sent no answer`, {
      server: server.slug,
      kind: 'protocol',
    });
  }

  private failure(request: JsonRpcRequest, server: GatewayServer, error: unknown, call: Call): JsonRpcErrorResponse {
    const failure = upstreamFailureOf(this.logger, server.slug, error, call.requestId);
    if (error instanceof LoopRefused && !error.ours) call.loopRefused = error;
    const claims = claimsChallengeOf(error);
    return errorResponse(request.id, ErrorCodes.internalError, failure.message, {
      ...failure.data,
      ...(claims ? { claims } : {}),
    });
  }

  /** Each session hears it once, on its newest event stream: a message goes on one stream only, never on all. */
  private announceListChanged(): void {
    for (const streams of this.streams.values()) {
      let newest: ServerResponse | undefined;
      for (const res of streams) newest = res;
      if (!newest) continue;
      for (const method of LIST_CHANGED) writeEvent(newest, { data: JSON.stringify({ jsonrpc: '2.0', method }) });
    }
  }
}

/**
 * The answer to a lone request whose upstream request was refused as a loop through a gateway in front of this one:
 * the refusal goes on as one (LOOP_REFUSED with LOOP_HEADER, as `/mcp/{slug}` passes it on), so that the gateway that
 * sent the request tells its caller the loop leads back to it; a client that is no gateway wrote that gateway's entry
 * into its own `Via`, and gets the 4xx it caused. The whole HTTP request was about that one upstream, as on
 * `/mcp/{slug}`. In a batch the request's answer stays in-band beside the others', which a status would take from them;
 * lists are the catalog's, which asks no upstream at the request.
 */
function passOnLoop(res: ServerResponse, refused: LoopRefused, failure: JsonRpcErrorResponse): void {
  res.setHeader(LOOP_HEADER, refused.gateway);
  sendJson(res, LOOP_REFUSED, failure);
}

/** A log message (`notifications/message`) less severe than the level the session asked for, which it is not sent. */
function belowLevel(message: unknown, level: string | undefined): boolean {
  if (level === undefined || (message as { method?: unknown }).method !== 'notifications/message') return false;
  const messageLevel = (message as { params?: { level?: unknown } }).params?.level;
  return LOG_LEVELS.indexOf(messageLevel as string) < LOG_LEVELS.indexOf(level);
}

/** A content block, resource links and embedded resources under the gateway's URI for them. */
type ContentBlock = { type?: unknown; uri?: unknown; resource?: { uri?: unknown } };

function namesResource(block: ContentBlock | undefined): boolean {
  return (
    (block?.type === 'resource_link' && typeof block.uri === 'string') ||
    (block?.type === 'resource' && typeof block.resource?.uri === 'string')
  );
}

function blockHere(block: ContentBlock, slug: string): ContentBlock {
  if (!namesResource(block)) return block;
  return block.type === 'resource_link'
    ? { ...block, uri: gatewayResourceUri(slug, block.uri as string) }
    : { ...block, resource: { ...block.resource, uri: gatewayResourceUri(slug, block.resource!.uri as string) } };
}

/**
 * A tool's or prompt's answer with the resources its content names (`resource_link`, embedded `resource`) under
 * `mcpgw://{slug}/{uri}`: the only URIs a client of `/mcp` can read or subscribe to.
 */
function resourcesHere(response: JsonRpcResponse, slug: string): JsonRpcResponse {
  if (!('result' in response)) return response;
  const { content, messages } = response.result as { content?: unknown; messages?: unknown };
  if (Array.isArray(content) && content.some(namesResource)) {
    const blocks = (content as ContentBlock[]).map((block) => blockHere(block, slug));
    return { ...response, result: { ...response.result, content: blocks } };
  }
  const prompt = messages as { content?: ContentBlock }[] | undefined;
  if (Array.isArray(prompt) && prompt.some((message) => namesResource(message?.content))) {
    const rewritten = prompt.map((message) =>
      namesResource(message?.content) ? { ...message, content: blockHere(message.content!, slug) } : message,
    );
    return { ...response, result: { ...response.result, messages: rewritten } };
  }
  return response;
}

/** An upstream without completions has none to offer (`/mcp` declares completions for all of them). */
function noCompletionUnlessSupported(request: JsonRpcRequest, response: JsonRpcResponse): JsonRpcResponse {
  if ('error' in response && response.error.code === ErrorCodes.methodNotFound)
    return resultResponse(request.id, { completion: { values: [], hasMore: false } });
  return response;
}
