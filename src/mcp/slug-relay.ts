import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type { ServerResponse } from 'node:http';
import { PinoLogger } from 'nestjs-pino';
import { AccessPolicy } from '../auth/access-policy';
import type { Abortable } from '../common/call-signal';
import { callerOf, type McpRequest, principalOf, type Principal, type UpstreamCaller } from '../auth/principal';
import { LOOP_HEADER, LOOP_REFUSED, LoopRefused } from '../upstream/gateway-via';
import { UpstreamConnector } from '../upstream/upstream-connector';
import { ProtectedResource } from '../auth/protected-resource';
import { claimsChallengeOf, classifyUpstreamError, UpstreamError } from '../upstream/upstream-error';
import { UrlGuard } from '../upstream/url-guard';
import { McpTraffic } from '../traffic/mcp-traffic';
import { ExchangeRecorder, type RateLimitRefusal, sendRateLimited } from './exchange-recorder';
import {
  abortOnClose,
  acceptableFor,
  endWith,
  endWithEvent,
  headerOf,
  requestedSession,
  refuseUnlessEventStream,
  sendClaimsChallenge,
  sendJson,
  sendRpcError,
  sendSessionStoreOutage,
  startSse,
  writeEvent,
} from './http-replies';
import {
  ErrorCodes,
  errorResponse,
  isRequest,
  type JsonRpcMessage,
  type JsonRpcRequest,
  type JsonRpcResponse,
  parseBody,
} from './jsonrpc';
import { InFlightRequests } from './in-flight';
import { principalKeyOf } from './principal-key';
import { type GatewayServer, ServerDirectory } from './server-directory';
import { type McpSession, McpSessionStore, SessionStoreUnavailable } from './session-store';
import {
  LAST_EVENT_ID_HEADER,
  SESSION_HEADER,
  StreamableHttpClient,
  type UpstreamReply,
} from './streamable-http-client';
import type { SseEvent, SseEventStream } from './sse';
import { discard, initializeUpstream, safeJson, sendInitialized, statusFailure } from './upstream-exchange';
import { upstreamFailureOf } from './upstream-failure';

/**
 * `/mcp/{slug}`: the upstream as if reached directly. Messages pass through as
 * they are, over a session of the upstream's own that the gateway keeps under
 * a session id of its own; the gateway adds its credentials for the upstream,
 * hides what the caller's roles do not allow, and re-initializes an upstream
 * that forgot its session. Session state lives in the shared store, so any
 * replica serves any request.
 *
 * The server's lookup, the session, the rate-limit verdict and the upstream's headers are most often at hand
 * (cached, leased, no token to fetch): given as values then, and awaited only when they come as promises
 * (`value instanceof Promise ? await value : value`), a relayed call goes through a few async functions, not about
 * twenty, each a promise and a turn of the microtask queue (bench/HISTORY.md, session 25).
 */
@Injectable()
export class SlugRelay {
  private readonly http: StreamableHttpClient;

  constructor(
    private readonly directory: ServerDirectory,
    private readonly policy: AccessPolicy,
    private readonly connector: UpstreamConnector,
    private readonly urlGuard: UrlGuard,
    private readonly resource: ProtectedResource,
    @Inject(McpSessionStore) private readonly sessions: McpSessionStore,
    @Inject(InFlightRequests) private readonly inFlight: InFlightRequests,
    private readonly traffic: McpTraffic,
    private readonly logger: PinoLogger,
  ) {
    this.http = new StreamableHttpClient(urlGuard);
    this.logger.setContext(SlugRelay.name);
  }

  async post(req: McpRequest, res: ServerResponse, slug: string): Promise<void> {
    const principal = principalOf(req);
    const found = this.directory.bySlug(slug);
    const known = found instanceof Promise ? await found : found;
    const access = known && this.policy.canSeeServer(principal, known);
    const parsed = parseBody(req.body);
    if (!known || !access?.allowed) {
      // Audited as what it is, answered as if the server did not exist.
      if (known && access && !('problem' in parsed)) {
        const exchanges = new ExchangeRecorder(this.traffic, req, res, 'server', principal, known);
        for (const message of parsed.messages) if (isRequest(message)) exchanges.denied(message, access.rule);
      }
      return sendRpcError(res, 404, null, ErrorCodes.invalidRequest, `Unknown MCP server: ${slug}`);
    }
    const server = known;
    if ('problem' in parsed) return sendRpcError(res, 400, null, parsed.code, parsed.problem);
    const { messages, batch } = parsed;

    const initialize = messages.find((message) => isRequest(message) && message.method === 'initialize');
    const exchanges = new ExchangeRecorder(this.traffic, req, res, 'server', principal, server);
    if (initialize) {
      if (messages.length > 1) {
        return sendRpcError(res, 400, null, ErrorCodes.invalidRequest, 'initialize must be sent on its own');
      }
      const limited = await exchanges.admit(initialize as JsonRpcRequest);
      if (limited) return sendRateLimited(res, limited);
      return this.initialize(req, res, server, principal, initialize as JsonRpcRequest, exchanges);
    }

    const requested = this.sessionFor(req, res, server, principal, exchanges);
    const session = requested instanceof Promise ? await requested : requested;
    if (!session) return;
    exchanges.sessionId = session.id;
    // Our side of a cancelled request ends wherever it runs; the upstream hears the notification too.
    const cancelling = this.inFlight.cancelNamedIn(session.id, messages);
    if (cancelling) await cancelling;

    const requests = messages.filter(isRequest);
    // The rule of each tool call the access policy refuses: such a call spends no budget of its tool, which callers
    // refused it could otherwise drain for everyone (a `scope: all` one), and is answered as a tool that is not there.
    let deniedTools: Map<JsonRpcRequest, string> | undefined;
    const admit = (request: JsonRpcRequest): ReturnType<ExchangeRecorder['admit']> => {
      if (request.method !== 'tools/call') return exchanges.admit(request);
      const tool = toolNameOf(request);
      const decision = tool === undefined ? undefined : this.policy.canUseTool(principal, server, tool);
      if (decision?.allowed === false) (deniedTools ??= new Map()).set(request, decision.rule);
      return exchanges.admit(request, decision?.allowed === false ? {} : { tool });
    };
    // A lone request, as most are, is admitted alone: Promise.all costs a promise and a callback per element.
    let limits: (RateLimitRefusal | undefined)[];
    if (requests.length === 1) {
      const admitted = admit(requests[0]!);
      limits = [admitted instanceof Promise ? await admitted : admitted];
    } else limits = await Promise.all(requests.map((request) => Promise.resolve(admit(request))));
    const limited = new Map(requests.map((request, index) => [request, limits[index]]));
    const lone = limits.length === 1 && messages.length === 1 && !batch ? limits[0] : undefined;
    if (lone) return sendRateLimited(res, lone);

    const refused: JsonRpcResponse[] = [];
    const forward: JsonRpcMessage[] = [];
    const listRequests = new Set<string | number>();
    for (const message of messages) {
      const refusal = isRequest(message)
        ? (limited.get(message)?.refusal ?? this.refusal(message, deniedTools?.get(message), exchanges))
        : undefined;
      if (refusal) refused.push(refusal);
      else forward.push(message);
      if (isRequest(message) && !refusal) {
        exchanges.begin(message);
        if (message.method === 'tools/list') listRequests.add(message.id);
      }
    }
    if (forward.length === 0) return sendJson(res, 200, batch ? refused : refused[0]!);

    const forwardedRequests = forward.filter(isRequest);
    let clientClosed = false;
    const abort = abortOnClose(res, {
      timeoutMs: this.connector.requestTimeoutMs(server),
      closed: () => (clientClosed = true),
    });
    // A lone request the client cancels (on any replica) stops here too: the upstream answers it no more.
    let cancelled = false;
    const untrack =
      forwardedRequests.length === 1 && forward.length === 1
        ? this.inFlight.track(session.id, forwardedRequests[0]!.id, () => {
            cancelled = true;
            abort.signal.abort(new Error('cancelled by the client'));
          })
        : undefined;
    let reply: UpstreamReply | undefined;
    try {
      exchanges.upstreamStarted();
      reply = await this.send(server, session, callerOf(req), batch ? forward : forward[0]!, abort.signal);
      // A client that takes no event stream cannot resume one: the gateway resumes the upstream's on its behalf.
      if (reply.body.kind === 'sse' && !acceptableFor(req).eventStream) {
        this.resumeForClient(reply.body.events, server, session, callerOf(req), abort.signal);
      }
      // What the upstream asks while it answers cannot reach a client that takes no event stream: declined for it.
      const decline = (asked: JsonRpcRequest): void => {
        const text = `The client cannot be asked ${asked.method}: it takes no event stream`;
        this.send(
          server,
          session,
          callerOf(req),
          errorResponse(asked.id, ErrorCodes.methodNotFound, text),
          abort.signal,
        )
          .then(discard)
          .catch((error: unknown) => this.logFailure(server, error));
      };
      await this.relay(res, reply, server, principal, listRequests, refused, batch, exchanges, decline);
    } catch (error) {
      if (cancelled || clientClosed) {
        exchanges.cancelled({ clientClosed: !cancelled });
        if (!res.headersSent) res.statusCode = 202;
        res.end();
      } else if (!abort.signal.aborted && brokeAfterEventId(reply, res)) {
        // The upstream's event stream broke after an event with an id, which the client has: the client's breaks too,
        // so that it resumes it by GET with Last-Event-ID, through the gateway, as it would the upstream's. An error
        // event instead would answer the request it can still get.
        exchanges.leftToResume(error);
        this.logFailure(server, error);
        res.destroy();
      } else {
        exchanges.fail(error);
        this.answerFailure(req, res, server, forwardedRequests[0]?.id ?? null, error);
      }
    } finally {
      untrack?.();
      exchanges.close();
      abort.done();
    }
  }

  async get(req: McpRequest, res: ServerResponse, slug: string): Promise<void> {
    const principal = principalOf(req);
    const server = await this.visibleServer(principal, slug);
    if (!server) return sendRpcError(res, 404, null, ErrorCodes.invalidRequest, `Unknown MCP server: ${slug}`);
    if (refuseUnlessEventStream(req, res)) return;
    const session = await this.sessionFor(req, res, server, principal);
    if (!session) return;
    const abort = abortOnClose(res);
    try {
      const caller = callerOf(req);
      const lastEventId = headerOf(req, LAST_EVENT_ID_HEADER);
      const open = (headers: Record<string, string>): Promise<UpstreamReply> =>
        this.http.get(server.url, {
          sessionId: session.upstreamSessions[server.id],
          protocolVersion: session.protocolVersion,
          headers,
          signal: abort.signal,
          lastEventId,
        });
      const reply = await this.withLiveUpstreamSession(server, session, caller, abort.signal, open);
      if (reply.body.kind !== 'sse') {
        await discard(reply);
        // 405: no stream offered; 409: one is open already on this session (the client's, through us). Else ours failed.
        const status = reply.status === 405 || reply.status === 409 ? reply.status : 502;
        endWith(res, status);
        return;
      }
      startSse(res);
      // A resumed stream (Last-Event-ID) replays earlier answers, a tools/list result among them: narrowed as on POST.
      const narrow = (value: unknown): unknown =>
        Array.isArray(value)
          ? value.map((message) => this.filterToolList(message, server, principal))
          : this.filterToolList(value, server, principal);
      for await (const event of reply.body.events) {
        writeEvent(res, TOOLS_OR_ESCAPE.test(event.data) ? filterEvent(event, narrow) : event);
      }
      res.end();
    } catch (error) {
      if (!abort.signal.aborted) this.logFailure(server, error);
      if (!res.headersSent) endWith(res, 502);
      else if (abort.signal.aborted) res.end();
      // The upstream's stream broke (a reset, not an end): the client's breaks too, so that it reconnects, with the
      // Last-Event-ID of what it got, through the gateway, as a POST's broken stream is passed on. Ended cleanly, it
      // read as a stream the upstream closed on purpose.
      else res.destroy();
    } finally {
      abort.done();
    }
  }

  async delete(req: McpRequest, res: ServerResponse, slug: string): Promise<void> {
    const principal = principalOf(req);
    const server = await this.visibleServer(principal, slug);
    if (!server) return sendRpcError(res, 404, null, ErrorCodes.invalidRequest, `Unknown MCP server: ${slug}`);
    const session = await this.sessionFor(req, res, server, principal);
    if (!session) return;
    await this.sessions.delete(session.id);
    const upstreamSession = session.upstreamSessions[server.id];
    if (upstreamSession) {
      try {
        const headers = await this.connector.headersFor(server, callerOf(req));
        await this.http.delete(server.url, {
          sessionId: upstreamSession,
          protocolVersion: session.protocolVersion,
          headers,
          signal: AbortSignal.timeout(this.connector.connectTimeoutMs(server)),
        });
      } catch (error) {
        // The gateway's session is gone either way; the upstream's expires on its own.
        this.logFailure(server, error);
      }
    }
    endWith(res, 200);
  }

  private async visibleServer(principal: Principal, slug: string): Promise<GatewayServer | undefined> {
    const server = await this.directory.bySlug(slug);
    // A server the caller may not see answers exactly like one that does not exist.
    return server && this.policy.canSeeServer(principal, server).allowed ? server : undefined;
  }

  /** The caller's session for this server, or an answer saying why there is none; at once when it is cached. */
  private sessionFor(
    req: McpRequest,
    res: ServerResponse,
    server: GatewayServer,
    principal: Principal,
    exchanges = new ExchangeRecorder(this.traffic, req, res, 'server', principal, server),
  ): McpSession | undefined | Promise<McpSession | undefined> {
    return requestedSession(this.sessions, req, res, principalKeyOf(principal), server.id, (ending) =>
      exchanges.sessionRefused(ending, req.body),
    );
  }

  /** The error answer for a request the caller's roles do not allow; it reads as if the tool did not exist. */
  /** The answer to a tool call the access policy refused by `rule` (undefined: it did not). */
  private refusal(
    request: JsonRpcRequest,
    rule: string | undefined,
    exchanges: ExchangeRecorder,
  ): JsonRpcResponse | undefined {
    if (rule === undefined) return undefined;
    exchanges.denied(request, rule);
    return errorResponse(request.id, ErrorCodes.invalidParams, `Tool ${toolNameOf(request)} not found`);
  }

  private async initialize(
    req: McpRequest,
    res: ServerResponse,
    server: GatewayServer,
    principal: Principal,
    request: JsonRpcRequest,
    exchanges: ExchangeRecorder,
  ): Promise<void> {
    const abort = abortOnClose(res, { timeoutMs: this.connector.connectTimeoutMs(server) });
    exchanges.begin(request);
    try {
      exchanges.upstreamStarted();
      const { response, sessionId } = await this.initializeUpstream(server, callerOf(req), request, abort.signal);
      if ('error' in response) {
        exchanges.settle(response);
        return sendJson(res, 200, response);
      }
      const protocolVersion = response.result.protocolVersion;
      const session: McpSession = {
        id: McpSessionStore.newId(),
        principalKey: principalKeyOf(principal),
        serverId: server.id,
        protocolVersion: typeof protocolVersion === 'string' ? protocolVersion : '2025-03-26',
        initializeParams: request.params ?? {},
        upstreamSessions: sessionId ? { [server.id]: sessionId } : {},
        createdAt: Date.now(),
      };
      await this.sessions.create(session);
      exchanges.sessionId = session.id;
      exchanges.settle(response);
      res.setHeader(SESSION_HEADER, session.id);
      sendJson(res, 200, response);
    } catch (error) {
      exchanges.fail(error);
      this.answerFailure(req, res, server, request.id, error);
    } finally {
      exchanges.close();
      abort.done();
    }
  }

  private async initializeUpstream(
    server: GatewayServer,
    caller: UpstreamCaller,
    request: JsonRpcRequest,
    signal: Abortable,
  ): Promise<{ response: JsonRpcResponse; sessionId?: string }> {
    const headers = await this.connector.headersFor(server, caller);
    return initializeUpstream(this.http, this.urlGuard, server.url, headers, request, signal);
  }

  /** Opens a fresh upstream session with the client's original initialize, after the upstream lost ours. */
  private async reinitialize(
    server: GatewayServer,
    session: McpSession,
    caller: UpstreamCaller,
    signal: Abortable,
  ): Promise<void> {
    const request: JsonRpcRequest = {
      jsonrpc: '2.0',
      id: `mcp-gateway-reinit-${randomUUID()}`,
      method: 'initialize',
      params: session.initializeParams,
    };
    const { response, sessionId } = await this.initializeUpstream(server, caller, request, signal);
    if ('error' in response) throw new UpstreamError('protocol', `re-initialize failed: ${response.error.message}`);
    const headers = await this.connector.headersFor(server, caller);
    await sendInitialized(this.http, server.url, headers, sessionId, session.protocolVersion, signal);
    if (sessionId) session.upstreamSessions[server.id] = sessionId;
    else delete session.upstreamSessions[server.id];
    await this.sessions.save(session);
    this.logger.info({ server: server.slug, session: session.id }, 'upstream session re-initialized');
  }

  private send(
    server: GatewayServer,
    session: McpSession,
    caller: UpstreamCaller,
    payload: JsonRpcMessage | JsonRpcMessage[],
    signal: Abortable,
  ): Promise<UpstreamReply> {
    const post = (headers: Record<string, string>): Promise<UpstreamReply> =>
      this.http.post(server.url, payload, {
        sessionId: session.upstreamSessions[server.id],
        protocolVersion: session.protocolVersion,
        headers,
        signal,
      });
    return this.withLiveUpstreamSession(server, session, caller, signal, post);
  }

  /**
   * Sends with the session's upstream session (`attempt`, given the gateway's headers for the upstream, asked for
   * anew each time); when the upstream forgot it (restart, expiry), takes the one another replica may already have
   * opened in its place, else opens one, and sends again.
   */
  private async withLiveUpstreamSession(
    server: GatewayServer,
    session: McpSession,
    caller: UpstreamCaller,
    signal: Abortable,
    attempt: (headers: Record<string, string>) => Promise<UpstreamReply>,
  ): Promise<UpstreamReply> {
    const reply = await this.withHeaders(server, caller, attempt);
    const lost = session.upstreamSessions[server.id];
    if (reply.status !== 404 || !lost) return reply;
    await discard(reply);
    const stored = (await this.sessions.fresh(session.id))?.upstreamSessions[server.id];
    if (stored && stored !== lost) {
      session.upstreamSessions[server.id] = stored;
      const retried = await this.withHeaders(server, caller, attempt);
      if (retried.status !== 404) return retried;
      await discard(retried);
    }
    await this.reinitialize(server, session, caller, signal);
    return this.withHeaders(server, caller, attempt);
  }

  /** `attempt` with the gateway's headers for the upstream, waited for only when they are not at hand. */
  private withHeaders(
    server: GatewayServer,
    caller: UpstreamCaller,
    attempt: (headers: Record<string, string>) => Promise<UpstreamReply>,
  ): Promise<UpstreamReply> {
    const headers = this.connector.headersFor(server, caller);
    return headers instanceof Promise ? headers.then(attempt) : attempt(headers);
  }

  /** Passes the upstream's answer on, with `tools/list` results narrowed to what the caller may use. */
  private async relay(
    res: ServerResponse,
    reply: UpstreamReply,
    server: GatewayServer,
    principal: Principal,
    listRequests: Set<string | number>,
    refused: JsonRpcResponse[],
    batch: boolean,
    exchanges: ExchangeRecorder,
    decline: (asked: JsonRpcRequest) => void,
  ): Promise<void> {
    const filter = (message: unknown): unknown => {
      exchanges.settle(message, reply.status);
      return listRequests.size > 0 ? this.filterToolList(message, server, principal, listRequests) : message;
    };
    if (reply.status >= 400) throw statusFailure(reply);
    switch (reply.body.kind) {
      case 'none':
        if (refused.length > 0) return sendJson(res, 200, batch ? refused : refused[0]!);
        endWith(res, 202);
        return;
      case 'json': {
        const value = reply.body.value;
        const messages = (Array.isArray(value) ? value : [value]).map(filter) as JsonRpcMessage[];
        const all = [...refused, ...messages];
        return sendJson(res, 200, batch || all.length > 1 ? all : all[0]!);
      }
      case 'sse': {
        if (!acceptableFor(res.req).eventStream) {
          return this.relayAsJson(res, reply.body.events, filter, refused, batch, exchanges, decline);
        }
        startSse(res);
        for (const refusal of refused) writeEvent(res, { data: JSON.stringify(refusal) });
        for await (const event of reply.body.events) {
          // Once every request has its answer the client's response ends; the upstream's stream is only drained.
          if (res.writableEnded) continue;
          const relayed = filterEvent(event, filter);
          if (exchanges.answeredAll) endWithEvent(res, relayed);
          else writeEvent(res, relayed);
        }
        if (!res.writableEnded) res.end();
        return;
      }
    }
  }

  /**
   * An upstream's event stream, answered as JSON to a client that takes no streams: the responses, sent once every
   * request has one; the gateway resumes the stream should the upstream close or break it first (`resumeForClient`).
   * Notifications (progress, logs) have no place in a JSON answer and are left out; the upstream's own requests
   * (sampling, elicitation, roots) are declined, so that it does not wait for an answer that cannot come.
   */
  private async relayAsJson(
    res: ServerResponse,
    events: SseEventStream,
    filter: (message: unknown) => unknown,
    refused: JsonRpcResponse[],
    batch: boolean,
    exchanges: ExchangeRecorder,
    decline: (asked: JsonRpcRequest) => void,
  ): Promise<void> {
    const answers: JsonRpcMessage[] = [...refused];
    const send = (): void => {
      if (answers.length === 0) {
        sendRpcError(res, 502, null, ErrorCodes.internalError, 'The upstream ended its stream without an answer');
      } else sendJson(res, 200, batch || answers.length > 1 ? answers : answers[0]!);
    };
    for await (const event of events) {
      // Once every request has its answer the client's response ends; the upstream's stream is only drained.
      if (res.writableEnded) continue;
      const value = safeJson(event.data);
      for (const message of Array.isArray(value) ? value : [value]) {
        if (typeof message !== 'object' || message === null || !('id' in message)) continue;
        if ('method' in message) decline(message as JsonRpcRequest);
        else answers.push(filter(message) as JsonRpcMessage);
      }
      if (exchanges.answeredAll) {
        // Nothing more to resume for: a resumed stream the upstream keeps open is left, not waited on.
        events.answered();
        send();
      }
    }
    if (!res.writableEnded) send();
  }

  /** `message` without the tools the caller may not use when it answers a tools/list (one of `ids`, when given). */
  private filterToolList(
    message: unknown,
    server: GatewayServer,
    principal: Principal,
    ids?: Set<string | number>,
  ): unknown {
    const candidate = message as { id?: string | number; result?: { tools?: unknown } } | null;
    if (typeof candidate !== 'object' || candidate === null || candidate.id === undefined) return message;
    if ((ids && !ids.has(candidate.id)) || !Array.isArray(candidate.result?.tools)) return message;
    const tools = (candidate.result.tools as { name?: unknown }[]).filter(
      (tool) => typeof tool.name === 'string' && this.policy.canUseTool(principal, server, tool.name).allowed,
    );
    return { ...candidate, result: { ...candidate.result, tools } };
  }

  /**
   * Resumes `events` by GET with Last-Event-ID once the upstream closes or breaks them before the answers, as the
   * pooled client does for `/mcp`: within the call's bound (`signal`), and never past MAX_FRUITLESS_RESUMPTIONS.
   */
  private resumeForClient(
    events: SseEventStream,
    server: GatewayServer,
    session: McpSession,
    caller: UpstreamCaller,
    signal: Abortable,
  ): void {
    events.resumeWith(async (lastEventId, retryMs, fruitless) => {
      const options = {
        sessionId: session.upstreamSessions[server.id],
        protocolVersion: session.protocolVersion,
        headers: await this.connector.headersFor(server, caller),
        signal,
      };
      return this.http.resume(server.url, options, lastEventId, retryMs, fruitless);
    });
  }

  private answerFailure(
    req: McpRequest,
    res: ServerResponse,
    server: GatewayServer,
    id: string | number | null,
    error: unknown,
  ): void {
    if (error instanceof SessionStoreUnavailable) return sendSessionStoreOutage(res, id, error);
    const failure = upstreamFailureOf(this.logger, server.slug, error, req.id);
    const claims = claimsChallengeOf(error);
    if (claims && !res.headersSent) return sendClaimsChallenge(res, this.resource, server.slug, claims, failure.reason);
    if (res.headersSent) {
      // Mid-stream: say it as an event when the stream can still carry one.
      if (id !== null)
        writeEvent(res, {
          data: JSON.stringify(errorResponse(id, ErrorCodes.internalError, failure.message, failure.data)),
        });
      res.end();
      return;
    }
    if (error instanceof LoopRefused && !error.ours) {
      // The loop leads back to a gateway in front of this one, which sent the request: the refusal goes on to it as
      // one, so that it tells its caller the loop leads back to it (its answer to a client that is no gateway is its
      // own 4xx, caused by its `Via`).
      res.setHeader(LOOP_HEADER, error.gateway);
      return sendRpcError(res, LOOP_REFUSED, id, ErrorCodes.internalError, failure.message, failure.data);
    }
    // In-band, so the client's pending request fails with this message rather than a bare HTTP status.
    if (id !== null)
      return sendJson(res, 200, errorResponse(id, ErrorCodes.internalError, failure.message, failure.data));
    sendRpcError(res, 502, null, ErrorCodes.internalError, failure.message, failure.data);
  }

  private logFailure(server: GatewayServer, error: unknown): void {
    const { kind, message } = classifyUpstreamError(error);
    this.logger.warn({ server: server.slug, kind, reason: message }, 'upstream request failed');
  }
}

/** The upstream's event stream, relayed as one, failed after an event with an id, the client's still open. */
function brokeAfterEventId(reply: UpstreamReply | undefined, res: ServerResponse): boolean {
  return (
    reply?.body.kind === 'sse' &&
    reply.body.events.lastEventId !== undefined &&
    res.headersSent &&
    !res.writableEnded &&
    acceptableFor(res.req).eventStream
  );
}

/** Event data that may hold a tool list: the word, or a JSON escape that could spell it. Others pass unparsed. */
const TOOLS_OR_ESCAPE = /tools|\\u/;

function toolNameOf(request: JsonRpcRequest): string | undefined {
  const name = request.params?.name;
  return typeof name === 'string' ? name : undefined;
}

function filterEvent(event: SseEvent, filter: (message: unknown) => unknown): SseEvent {
  const value = safeJson(event.data);
  if (value === undefined) return event;
  const filtered = filter(value);
  return filtered === value ? event : { ...event, data: JSON.stringify(filtered) };
}
