import { Injectable, type OnModuleDestroy } from '@nestjs/common';
import { PinoLogger } from 'nestjs-pino';
import type { UpstreamCaller } from '../auth/principal';
import { type Abortable, CallSignal, timeoutError } from '../common/call-signal';
import { LoopRefused } from '../upstream/gateway-via';
import { UpstreamConnector } from '../upstream/upstream-connector';
import { UpstreamError, upstreamStatusMessage } from '../upstream/upstream-error';
import { UrlGuard } from '../upstream/url-guard';
import { ErrorCodes, errorResponse, type JsonRpcRequest } from './jsonrpc';
import { principalKeyOf } from './principal-key';
import type { GatewayServer } from './server-directory';
import type { ByteStream } from './sse';
import { StreamableHttpClient, type UpstreamReply, type UpstreamRequestOptions } from './streamable-http-client';
import { discard, endUpstreamSession, openUpstreamSession, type UpstreamHandshake } from './upstream-exchange';

/** Sends `notifications/cancelled` for a dispatched request to its upstream. */
export type UpstreamCancel = (reason?: string) => Promise<void>;

/** Answers, on the session a request went out on, a request the upstream sent back while answering it. */
export type UpstreamDecline = (asked: JsonRpcRequest) => void;

/** Upstream sessions kept at most (one per on-behalf-of caller and server); the least recently used are ended. */
const MAX_SESSIONS = 5_000;
/** How long shutdown waits for upstreams to hear that their sessions end. */
const END_SESSIONS_MS = 2_000;

interface PoolEntry {
  session: Promise<UpstreamHandshake>;
  url: string;
  headers: Record<string, string>;
}

/** Consecutive failures that open a server's circuit, and how long it stays open before one probe call. */
const BREAKER_THRESHOLD = 5;
const BREAKER_OPEN_MS = 15_000;

interface Breaker {
  failures: number;
  openUntil: number;
  probing: boolean;
}

/**
 * The aggregate endpoint's sessions with upstreams: one per server, shared by
 * every caller when the gateway's own identity is used, one per caller for
 * on-behalf-of servers. Initialized on first use, re-initialized when the
 * upstream forgets them, and guarded by a circuit breaker so a failing server
 * fails fast instead of making every caller wait for its timeout.
 */
@Injectable()
export class UpstreamPool implements OnModuleDestroy {
  private readonly http: StreamableHttpClient;
  /** In order of last use: the first entry is the one evicted. */
  private readonly sessions = new Map<string, PoolEntry>();
  private readonly breakers = new Map<string, Breaker>();
  private nextId = 0;

  constructor(
    private readonly connector: UpstreamConnector,
    private readonly urlGuard: UrlGuard,
    private readonly logger: PinoLogger,
  ) {
    this.http = new StreamableHttpClient(urlGuard);
    this.logger.setContext(UpstreamPool.name);
  }

  /** Upstream sessions open (or opening) now. */
  get size(): number {
    return this.sessions.size;
  }

  /** Tells every upstream its session ends, so none is left holding state for a gateway that is gone. */
  async onModuleDestroy(): Promise<void> {
    const entries = [...this.sessions.values()];
    this.sessions.clear();
    const deadline = AbortSignal.timeout(END_SESSIONS_MS);
    await Promise.all(entries.map((entry) => this.end(entry, deadline)));
  }

  /** Servers whose circuit is open or half-open (calls fail fast but for one probe), for metrics. */
  get openCircuits(): number {
    let open = 0;
    for (const breaker of this.breakers.values()) if (breaker.failures >= BREAKER_THRESHOLD) open++;
    return open;
  }

  /**
   * Sends one request, bounded by `signal` and the server's request timeout; the reply (JSON or SSE) answers `id`.
   * `decline` answers what the upstream asks meanwhile (sampling, elicitation, roots): the gateway declared no
   * capabilities, so a well-behaved upstream asks nothing, and one that does is told so rather than left waiting.
   * An event stream the upstream closes before its answer is resumed (GET with Last-Event-ID) within the same bounds.
   */
  async request(
    server: GatewayServer,
    caller: UpstreamCaller,
    method: string,
    params: Record<string, unknown> | undefined,
    signal?: Abortable,
    onDispatch?: (cancel: UpstreamCancel) => void,
  ): Promise<{ reply: UpstreamReply; id: string; decline: UpstreamDecline }> {
    this.checkBreaker(server);
    const id = `mcp-gateway-${++this.nextId}`;
    const message: JsonRpcRequest = { jsonrpc: '2.0', id, method, ...(params ? { params } : {}) };
    // `timeouts.requestMs` bounds the whole exchange: the reply's event stream is read under this signal too, after
    // `dispose()` below (which releases it only once that read lets go), and its resumptions until `deadline`.
    const timeoutMs = this.connector.requestTimeoutMs(server);
    const deadline = Date.now() + timeoutMs;
    const bounded = new CallSignal(signal, timeoutMs);
    try {
      const headers = await this.connector.headersFor(server, caller);
      const key = this.keyOf(server, caller);
      const send = (session: UpstreamHandshake): Promise<UpstreamReply> => {
        onDispatch?.((reason) => this.cancel(server, session, headers, id, reason));
        return this.http.post(server.url, message, { ...session, headers, signal: bounded });
      };
      let session = await this.session(key, server, headers, bounded);
      let reply = await send(session);
      if (reply.status === 404 && session.sessionId) {
        await discard(reply);
        this.sessions.delete(key);
        session = await this.session(key, server, headers, bounded);
        reply = await send(session);
      }
      if (reply.status >= 500) throw new UpstreamError('http_status', upstreamStatusMessage(reply.status));
      this.succeeded(server);
      const answeredOn = session;
      const decline = (asked: JsonRpcRequest): void => void this.decline(server, answeredOn, headers, asked);
      if (reply.body.kind === 'sse') {
        reply.body.events.resumeWith((lastEventId, retryMs, fruitless) =>
          this.resume(server.url, { ...answeredOn, headers, signal }, deadline, lastEventId, retryMs, fruitless),
        );
      }
      return { reply, id, decline };
    } catch (error) {
      // A loop refusal is the caller's request turned away for its `Via`, which a client may have written: counted, a
      // client could open the server's circuit for everyone.
      if ((!bounded.aborted || isTimeout(bounded)) && !(error instanceof LoopRefused)) this.failed(server);
      throw error;
    } finally {
      bounded.dispose();
    }
  }

  /**
   * The rest of a reply's event stream, which the upstream closed before its answer, under the caller's signal and
   * what is left of the request's time (the first signal has let go once the first stream ended).
   */
  private async resume(
    url: string,
    options: UpstreamRequestOptions,
    deadline: number,
    lastEventId: string,
    retryMs: number | undefined,
    fruitless: number,
  ): Promise<ByteStream | undefined> {
    const left = deadline - Date.now();
    if (left <= 0) throw timeoutError();
    const bounded = new CallSignal(options.signal, left);
    try {
      return await this.http.resume(url, { ...options, signal: bounded }, lastEventId, retryMs, fruitless);
    } finally {
      bounded.dispose();
    }
  }

  /** Tells the upstream to stop working on request `id` (closing our connection would not). */
  private async cancel(
    server: GatewayServer,
    session: UpstreamHandshake,
    headers: Record<string, string>,
    id: string,
    reason?: string,
  ): Promise<void> {
    const notification = {
      jsonrpc: '2.0',
      method: 'notifications/cancelled',
      params: { requestId: id, ...(reason ? { reason } : {}) },
    };
    const reply = await this.http.post(server.url, notification, {
      ...session,
      headers,
      signal: AbortSignal.timeout(this.connector.connectTimeoutMs(server)),
    });
    await discard(reply);
  }

  private async decline(
    server: GatewayServer,
    session: UpstreamHandshake,
    headers: Record<string, string>,
    asked: JsonRpcRequest,
  ): Promise<void> {
    const text = `The gateway cannot be asked ${asked.method}: it declared no such capability`;
    try {
      const reply = await this.http.post(server.url, errorResponse(asked.id, ErrorCodes.methodNotFound, text), {
        ...session,
        headers,
        signal: AbortSignal.timeout(this.connector.connectTimeoutMs(server)),
      });
      await discard(reply);
    } catch (error) {
      this.logger.debug({ err: error, url: server.url }, 'declining an upstream request failed');
    }
  }

  /** Forgets the sessions of a server (deleted, or its registration changed). */
  forget(serverId: string): void {
    for (const [key, entry] of this.sessions) {
      if (!key.startsWith(`${serverId}\0`)) continue;
      this.sessions.delete(key);
      void this.end(entry, AbortSignal.timeout(END_SESSIONS_MS));
    }
    this.breakers.delete(serverId);
  }

  /** DELETEs an upstream session; the upstream expires it anyway if this fails. */
  private async end(entry: PoolEntry, signal: AbortSignal): Promise<void> {
    try {
      await endUpstreamSession(this.http, entry.url, await entry.session, entry.headers, signal);
    } catch (error) {
      this.logger.debug({ err: error, url: entry.url }, 'ending an upstream session failed');
    }
  }

  private keyOf(server: GatewayServer, caller: UpstreamCaller): string {
    const identity = server.auth.type === 'entra-obo' ? principalKeyOf(caller.principal) : 'gateway';
    return `${server.id}\0${identity}\0${server.url}`;
  }

  private session(
    key: string,
    server: GatewayServer,
    headers: Record<string, string>,
    signal: Abortable,
  ): Promise<UpstreamHandshake> {
    let entry = this.sessions.get(key);
    if (entry) {
      // Most recently used goes last.
      this.sessions.delete(key);
      this.sessions.set(key, entry);
      return entry.session;
    }
    // Shared by the callers to come, the session is opened as the gateway's own, without the first one's `Via`: a
    // client's entries would have the upstream's gateway refuse it for them all. A loop through this gateway is still
    // found, its entry being there; the requests on it carry each caller's.
    const own = this.connector.ownHeaders(headers);
    entry = { session: this.open(server, own, signal), url: server.url, headers: own };
    this.sessions.set(key, entry);
    const opened = entry;
    // A failed handshake is not kept: the next request tries again.
    opened.session.catch(() => {
      if (this.sessions.get(key) === opened) this.sessions.delete(key);
    });
    if (this.sessions.size > MAX_SESSIONS) {
      const [oldestKey, oldest] = this.sessions.entries().next().value as [string, PoolEntry];
      this.sessions.delete(oldestKey);
      void this.end(oldest, AbortSignal.timeout(END_SESSIONS_MS));
    }
    return opened.session;
  }

  private async open(
    server: GatewayServer,
    headers: Record<string, string>,
    signal: Abortable,
  ): Promise<UpstreamHandshake> {
    const handshake = new CallSignal(signal, this.connector.connectTimeoutMs(server));
    try {
      const id = `mcp-gateway-init-${++this.nextId}`;
      return await openUpstreamSession(this.http, this.urlGuard, server.url, headers, id, handshake);
    } finally {
      handshake.dispose();
    }
  }

  private checkBreaker(server: GatewayServer): void {
    const breaker = this.breakers.get(server.id);
    if (!breaker || breaker.failures < BREAKER_THRESHOLD) return;
    const now = Date.now();
    if (now < breaker.openUntil || breaker.probing) {
      throw new UpstreamError(
        'connection_refused',
        'the upstream is failing; calls are paused for a moment (circuit open)',
      );
    }
    // Half-open: this one call probes; the others keep failing fast until it answers.
    breaker.probing = true;
  }

  private succeeded(server: GatewayServer): void {
    this.breakers.delete(server.id);
  }

  private failed(server: GatewayServer): void {
    const breaker = this.breakers.get(server.id) ?? { failures: 0, openUntil: 0, probing: false };
    breaker.failures += 1;
    breaker.probing = false;
    if (breaker.failures >= BREAKER_THRESHOLD) breaker.openUntil = Date.now() + BREAKER_OPEN_MS;
    this.breakers.set(server.id, breaker);
  }
}

function isTimeout(signal: Abortable): boolean {
  return (signal.reason as { name?: string } | undefined)?.name === 'TimeoutError';
}
