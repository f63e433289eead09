import { performance } from 'node:perf_hooks';
import { requestIdOf } from '../logging/logger';
import type { ServerResponse } from 'node:http';
import type { McpRequest, Principal } from '../auth/principal';
import { sendText } from '../common/send-text';
import type { McpExchange, McpSurface, ServerRef } from '../traffic/mcp-exchange';
import type { McpTraffic } from '../traffic/mcp-traffic';
import type { RateLimitVerdict } from '../traffic/rate-limiter';
import { classifyUpstreamError } from '../upstream/upstream-error';
import {
  errorResponse,
  type JsonRpcErrorResponse,
  type JsonRpcRequest,
  type JsonRpcResponse,
  type RequestId,
} from './jsonrpc';
import { SessionStoreRefused, SessionStoreUnavailable } from './session-store';

/** JSON-RPC code of a request refused for its rate limit (`data.retryAfter` says when to try again). */
export const RATE_LIMITED_CODE = -32029;

/** Requests too trivial to audit or count. They still ask for budget. */
const UNRECORDED = new Set(['ping']);

interface Pending {
  request: JsonRpcRequest;
  server?: ServerRef;
  target?: string;
  upstreamStart?: number;
}

/** A request refused for its rate limit: its error answer, and the verdict behind it. */
export interface RateLimitRefusal {
  refusal: JsonRpcErrorResponse;
  verdict: RateLimitVerdict;
}

type Base = Pick<McpExchange, 'at' | 'requestId' | 'surface' | 'ip' | 'principal' | 'sessionId' | 'server'>;

/**
 * The JSON-RPC requests of one HTTP request to an MCP endpoint: asks the rate
 * limiter for each (its fields go on the HTTP response), and reports each to
 * `McpTraffic` once it has ended — refused, answered or failed.
 */
export class ExchangeRecorder {
  private readonly started = performance.now();
  private readonly base: Base;
  private readonly pending = new Map<RequestId, Pending>();

  constructor(
    private readonly traffic: McpTraffic,
    req: McpRequest,
    private readonly res: ServerResponse,
    surface: McpSurface,
    principal: Principal,
    server?: ServerRef,
  ) {
    // Every field present from the start, so that the records made from it all share one shape.
    this.base = {
      at: new Date(),
      requestId: requestIdOf(req),
      surface,
      ip: req.ip,
      principal,
      sessionId: undefined,
      server: server ? { id: server.id, slug: server.slug } : undefined,
    };
  }

  set sessionId(id: string) {
    this.base.sessionId = id;
  }

  /**
   * Spends budget for one request. Returns the error answer when the limit is
   * met (already recorded), else undefined; either way the verdict's
   * RateLimit fields go on the HTTP response while it can still take headers.
   * At once when the limiter decides at once (most requests), else a promise.
   */
  admit(
    request: JsonRpcRequest,
    route: { server?: ServerRef; tool?: string } = {},
  ): RateLimitRefusal | undefined | Promise<RateLimitRefusal | undefined> {
    const server = route.server ?? this.base.server;
    const verdict = this.traffic.admit({
      principal: this.base.principal!,
      surface: this.base.surface,
      method: request.method,
      server,
      tool: route.tool,
    });
    if (verdict instanceof Promise) return verdict.then((decided) => this.admitted(request, server, decided));
    return this.admitted(request, server, verdict);
  }

  private admitted(
    request: JsonRpcRequest,
    server: ServerRef | undefined,
    verdict: RateLimitVerdict,
  ): RateLimitRefusal | undefined {
    if (!this.res.headersSent) {
      const headers = verdict.headers;
      for (const name in headers) this.res.setHeader(name, headers[name]!);
    }
    if (verdict.allowed) return undefined;
    const retryAfter = Math.max(1, Math.ceil(verdict.retryAfterSeconds ?? 1));
    this.emit(request, server, {
      decision: 'rate_limited',
      outcome: 'refused',
      ...(verdict.policy ? { rule: verdict.policy } : {}),
    });
    const refusal = errorResponse(request.id, RATE_LIMITED_CODE, `Rate limit exceeded; retry after ${retryAfter} s`, {
      retryAfter,
      ...(verdict.policy ? { policy: verdict.policy } : {}),
    });
    return { refusal, verdict: { ...verdict, retryAfterSeconds: retryAfter } };
  }

  /** A request the access policy refused; it was answered as if its target did not exist. */
  denied(request: JsonRpcRequest, rule: string, server?: ServerRef, target?: string): void {
    this.emit(request, server ?? this.base.server, { decision: 'denied', rule, outcome: 'refused' }, target);
  }

  /** A request the gateway will answer: `settle` or `fail` reports how it ended. */
  begin(request: JsonRpcRequest, server?: ServerRef, target?: string): void {
    this.pending.set(request.id, { request, server: server ?? this.base.server, target });
  }

  /** A request the gateway answered itself (lists from the catalog, ping, errors). */
  answered(request: JsonRpcRequest, response: JsonRpcResponse): void {
    this.begin(request);
    this.settle(response);
  }

  /**
   * The request was answered for its session before any of its messages was served (`ending` says how): one record,
   * with the method and id of `body` when it is one JSON-RPC request (a batch's, or a GET's or DELETE's, is `http`,
   * as a refused token's), as every refusal the gateway answers is audited, one record a request.
   */
  sessionRefused(ending: SessionRefusal, body?: unknown): void {
    const request = body as { method?: unknown; id?: unknown } | undefined;
    const method = typeof request?.method === 'string' && request.method.length <= 100 ? request.method : 'http';
    if (UNRECORDED.has(method)) return;
    const id = request?.id;
    const base = this.base;
    this.traffic.record({
      at: base.at,
      requestId: base.requestId,
      surface: base.surface,
      ip: base.ip,
      principal: base.principal,
      sessionId: undefined,
      server: base.server,
      method,
      rpcId: method !== 'http' && (typeof id === 'string' || typeof id === 'number') ? id : undefined,
      target: undefined,
      arguments: undefined,
      decision: 'allowed',
      rule: undefined,
      outcome: ending.outcome,
      latencyMs: performance.now() - this.started,
      upstreamMs: undefined,
      upstreamStatus: undefined,
      errorKind: ending.errorKind,
    });
  }

  /** Every request begun has been answered (or failed). */
  get answeredAll(): boolean {
    return this.pending.size === 0;
  }

  /** The upstream is being asked (all pending requests, or the one with this id). */
  upstreamStarted(id?: RequestId): void {
    const now = performance.now();
    if (id !== undefined) {
      const pending = this.pending.get(id);
      if (pending) pending.upstreamStart = now;
      return;
    }
    for (const pending of this.pending.values()) pending.upstreamStart = now;
  }

  /** Reports the request this message answers, if it is an answer to a pending one. */
  settle(message: unknown, upstreamStatus?: number): void {
    const candidate = message as { id?: unknown; result?: { isError?: unknown }; error?: unknown };
    if (typeof candidate !== 'object' || candidate === null) return;
    if (typeof candidate.id !== 'string' && typeof candidate.id !== 'number') return;
    const pending = this.pending.get(candidate.id);
    if (!pending || (candidate.result === undefined && candidate.error === undefined)) return;
    this.pending.delete(candidate.id);
    const outcome =
      candidate.error !== undefined ? 'rpc_error' : candidate.result?.isError === true ? 'tool_error' : 'ok';
    this.finish(pending, { decision: 'allowed', outcome, ...(upstreamStatus ? { upstreamStatus } : {}) });
  }

  /**
   * Every pending request (or the one with this id) failed on its way to or from the upstream, or because the
   * gateway's session store did not answer (`SessionStoreUnavailable`, answered 503).
   */
  fail(error: unknown, id?: RequestId): void {
    const ending = failureOf(error);
    for (const pending of this.take(id)) this.finish(pending, ending);
  }

  /**
   * Every pending request's event stream broke after an event with an id and was passed on broken, for the client to
   * resume by GET with Last-Event-ID: its answer, if any, comes on that stream, which this record does not follow.
   * `error` is the break, kept as the record's error kind.
   */
  leftToResume(error: unknown): void {
    const { kind } = classifyUpstreamError(error);
    for (const pending of this.take()) {
      this.finish(pending, { decision: 'allowed', outcome: 'resumable', errorKind: kind });
    }
  }

  /**
   * Every pending request (or the one with this id) ended on the client's side: cancelled with
   * `notifications/cancelled`, or, when `clientClosed`, given up by a client that closed its connection first
   * (recorded with the error kind `client_closed`).
   */
  cancelled(options: { id?: RequestId; clientClosed?: boolean } = {}): void {
    const ending = options.clientClosed
      ? ({ decision: 'allowed', outcome: 'cancelled', errorKind: 'client_closed' } as const)
      : ({ decision: 'allowed', outcome: 'cancelled' } as const);
    for (const pending of this.take(options.id)) this.finish(pending, ending);
  }

  /** What is still pending got no answer: the upstream broke the protocol. */
  close(): void {
    for (const pending of this.take()) {
      this.finish(pending, { decision: 'allowed', outcome: 'upstream_error', errorKind: 'protocol' });
    }
  }

  private take(id?: RequestId): Pending[] {
    if (id === undefined) {
      const all = [...this.pending.values()];
      this.pending.clear();
      return all;
    }
    const one = this.pending.get(id);
    this.pending.delete(id);
    return one ? [one] : [];
  }

  private finish(
    pending: Pending,
    ending: Pick<McpExchange, 'decision' | 'outcome' | 'upstreamStatus' | 'errorKind'>,
  ): void {
    const upstreamMs = pending.upstreamStart === undefined ? undefined : performance.now() - pending.upstreamStart;
    this.emit(pending.request, pending.server, ending, pending.target, upstreamMs);
  }

  private emit(
    request: JsonRpcRequest,
    server: ServerRef | undefined,
    ending: Pick<McpExchange, 'decision' | 'outcome' | 'rule' | 'upstreamStatus' | 'errorKind'>,
    target?: string,
    upstreamMs?: number,
  ): void {
    if (UNRECORDED.has(request.method)) return;
    const params = request.params;
    const base = this.base;
    // One object literal with every field, absent ones undefined: built with spreads, a record cost about 4 KB
    // of allocations per call (a sampling heap profile at concurrency 32; all of a call's are about 80 KB).
    this.traffic.record({
      at: base.at,
      requestId: base.requestId,
      surface: base.surface,
      ip: base.ip,
      principal: base.principal,
      sessionId: base.sessionId,
      server: server ? { id: server.id, slug: server.slug } : base.server,
      method: request.method,
      rpcId: request.id,
      target: target ?? targetOf(request),
      arguments: params && 'arguments' in params ? params.arguments : undefined,
      decision: ending.decision,
      rule: ending.rule,
      outcome: ending.outcome,
      latencyMs: performance.now() - this.started,
      upstreamMs,
      upstreamStatus: ending.upstreamStatus,
      errorKind: ending.errorKind,
    });
  }
}

/** The error kind of a request the gateway answered 503 because its session store (Redis) did not answer. */
const SESSION_STORE_UNAVAILABLE = 'session_store_unavailable';
/** The error kind of a request the gateway answered -32603 because its session store (Redis) refused a command. */
const SESSION_STORE_ERROR = 'session_store_error';

/** How a request ended that was answered for its session before any of its messages was served. */
export type SessionRefusal = Pick<McpExchange, 'outcome' | 'errorKind'>;

/** No Mcp-Session-Id header: 400. */
export const SESSION_ID_MISSING: SessionRefusal = { outcome: 'refused', errorKind: 'session_id_missing' };
/** A session that is gone or not the caller's: 404. */
export const SESSION_NOT_FOUND: SessionRefusal = { outcome: 'refused', errorKind: 'session_not_found' };

/** How a request ended whose session could not be read: the store did not answer (503), or refused (-32603). */
export function sessionReadFailure(error: unknown): SessionRefusal | undefined {
  if (error instanceof SessionStoreUnavailable) return { outcome: 'rpc_error', errorKind: SESSION_STORE_UNAVAILABLE };
  if (error instanceof SessionStoreRefused) return { outcome: 'rpc_error', errorKind: SESSION_STORE_ERROR };
  return undefined;
}

/**
 * How a failed request ended. The session store's outage is the gateway's own, answered with a JSON-RPC error whatever
 * the upstream did (it may have answered): not counted against the upstream as an `upstream_error` of kind `other`.
 */
function failureOf(error: unknown): Pick<McpExchange, 'decision' | 'outcome' | 'errorKind'> {
  const session = sessionReadFailure(error);
  if (session) return { decision: 'allowed', ...session };
  const { kind } = classifyUpstreamError(error);
  return { decision: 'allowed', outcome: kind === 'timeout' ? 'timeout' : 'upstream_error', errorKind: kind };
}

/** What a request is about: the tool or prompt name, the resource URI, or a completion's reference. */
function targetOf(request: JsonRpcRequest): string | undefined {
  const params = request.params;
  if (!params) return undefined;
  if (typeof params.name === 'string') return params.name;
  if (typeof params.uri === 'string') return params.uri;
  const ref = params.ref as { name?: unknown; uri?: unknown } | undefined;
  if (typeof ref?.name === 'string') return ref.name;
  if (typeof ref?.uri === 'string') return ref.uri;
  return undefined;
}

/** The HTTP answer to a lone request refused for its rate limit: 429 with Retry-After and the JSON-RPC error. */
export function sendRateLimited(res: ServerResponse, refused: RateLimitRefusal): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.setHeader('retry-after', String(refused.verdict.retryAfterSeconds ?? 1));
  sendText(res, 429, 'application/json', JSON.stringify(refused.refusal));
}
