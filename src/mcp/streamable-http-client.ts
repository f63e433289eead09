import type { Agent, Dispatcher } from 'undici';
import { type Abortable, delay } from '../common/call-signal';
import { loopRefusalOf } from '../upstream/gateway-via';
import { guardedAgent } from '../upstream/guarded-connection';
import type { UrlGuard } from '../upstream/url-guard';
import { classifyUpstreamError, UpstreamError } from '../upstream/upstream-error';
import { type ByteStream, parseSse, type SseEventStream } from './sse';
import { isRepeatable } from './jsonrpc';
import { UpstreamAnswer } from './upstream-answer';

/** The MCP Streamable HTTP headers a relay reads and writes. */
export const SESSION_HEADER = 'mcp-session-id';
export const PROTOCOL_VERSION_HEADER = 'mcp-protocol-version';
export const LAST_EVENT_ID_HEADER = 'last-event-id';

export interface UpstreamRequestOptions {
  /** The upstream's own session id (never the gateway's). */
  sessionId?: string;
  protocolVersion?: string;
  /** The gateway's credentials for this upstream; the caller's are never among them. */
  headers: Record<string, string>;
  signal?: Abortable;
}

export type UpstreamBody =
  { kind: 'json'; value: unknown } | { kind: 'sse'; events: SseEventStream } | { kind: 'none' };

export interface UpstreamReply {
  status: number;
  /** The session id the upstream assigned (on initialize) or echoed. */
  sessionId?: string;
  body: UpstreamBody;
  /** Text of a non-MCP answer (an error page), for the log; bounded. */
  text?: string;
}

const MAX_ERROR_TEXT = 2_000;
/** How long to wait before resuming a stream that named no reconnection time (`retry`), as the SDK's client does. */
const DEFAULT_RETRY_MS = 1_000;
/**
 * The least wait before resuming a stream, whatever `retry` it named: a `retry: 0` upstream that closes its streams
 * at once would otherwise have each call it holds reconnect in a loop, as fast as the network allows. An upstream
 * closes a call's stream because the answer is not near, so the quarter second costs an answer next to nothing, and
 * a call resumes at most four times a second.
 */
export const MIN_RETRY_MS = 250;
/**
 * Resumptions in a row that bring no event with a new id, after which the call fails (an upstream error) instead of
 * resuming again: an upstream that keeps ending the stream without a priming event, progress or answer is getting
 * nowhere. Ten leave room for one that closes a quiet stream now and then while it works (the SDK's server sends
 * nothing on a resumed stream until it has something to say), and give up on one that ends every stream at once
 * after ten GETs: 2.5 s at the least wait, 10 s at the default one, well within a call's default bound of 60 s.
 */
export const MAX_FRUITLESS_RESUMPTIONS = 10;

/**
 * Keep-alive connection pools, one per upstream origin, shared by every client of the same URL policy (in the
 * gateway, one). No limit per upstream: a slow upstream must not queue the calls of the fast ones behind it. No
 * time limit of its own on headers or body either: every request is bounded by its caller's signal, and a GET stream
 * may stay quiet for as long as the session lives. Each new connection goes only to an address the policy allows.
 */
const DISPATCHERS = new WeakMap<UrlGuard, Agent>();

function dispatcherFor(guard: UrlGuard): Agent {
  let dispatcher = DISPATCHERS.get(guard);
  if (dispatcher === undefined) {
    dispatcher = guardedAgent(guard, { headersTimeout: 0, bodyTimeout: 0 });
    DISPATCHERS.set(guard, dispatcher);
  }
  return dispatcher;
}

/** Socket errors of a kept-alive connection the upstream closed (a restart) before it answered. */
const STALE_CONNECTION = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET']);

/**
 * A lean Streamable HTTP client for relaying: it moves JSON-RPC messages and
 * SSE events between the gateway and an upstream without interpreting them,
 * so what the upstream says reaches the client as it was said.
 *
 * Built on undici's dispatcher rather than fetch or `node:http`: on the relay's hot path fetch's WHATWG
 * layer (Request and Response objects, web streams) cost about a sixth of the gateway's CPU per call, and
 * `node:http`'s client (ClientRequest, Agent, IncomingMessage) about three times undici's per request (see
 * `npm run bench`). The answer is taken from the dispatcher's callbacks (`UpstreamAnswer`), not from undici's
 * `request()` and its body stream. What fetch did for us is kept: redirects are refused (an error, never
 * followed, so the URL policy cannot be walked around), and an aborted signal rejects with its reason, also
 * mid-body. Connections are opened only to addresses `guard` allows, checked as each connection is opened.
 */
export class StreamableHttpClient {
  private readonly dispatcher: Dispatcher;

  constructor(guard: UrlGuard) {
    this.dispatcher = dispatcherFor(guard);
  }

  async post(url: string, message: unknown, options: UpstreamRequestOptions): Promise<UpstreamReply> {
    const headers = this.headersOf(options);
    headers['content-type'] = 'application/json';
    headers.accept = 'application/json, text/event-stream';
    const answer = await this.request(url, 'POST', headers, options.signal, message);
    return this.reply(answer);
  }

  async get(url: string, options: UpstreamRequestOptions & { lastEventId?: string }): Promise<UpstreamReply> {
    return this.reply(await this.openStream(url, options));
  }

  /**
   * The rest of a request's event stream, which the upstream closed before its answer (`SseEventStream.resumeWith`):
   * after `retryMs` (or a second; MIN_RETRY_MS at the least), a GET with Last-Event-ID. Undefined when the upstream
   * has no such stream to give (an error status, or no event stream). A reconnection refused or reset before its
   * headers is tried again after the same wait. Fails once MAX_FRUITLESS_RESUMPTIONS in a row brought nothing new
   * (as an upstream that breaks the protocol) or reached nothing (as one that cannot be reached).
   */
  async resume(
    url: string,
    options: UpstreamRequestOptions,
    lastEventId: string,
    retryMs = DEFAULT_RETRY_MS,
    fruitless = 0,
  ): Promise<ByteStream | undefined> {
    let unreached: { attempts: number; reason: string } | undefined;
    for (let attempt = fruitless; ; attempt++) {
      if (attempt >= MAX_FRUITLESS_RESUMPTIONS) {
        if (unreached) {
          throw new UpstreamError(
            'connection_refused',
            `the upstream's event stream could not be resumed: ${unreached.reason}, ${unreached.attempts} times in a row`,
          );
        }
        throw new UpstreamError(
          'protocol',
          `the upstream's event stream, resumed ${attempt} times in a row, ended each time without a new event`,
        );
      }
      await delay(Math.max(retryMs, MIN_RETRY_MS), options.signal);
      let answer: UpstreamAnswer;
      try {
        answer = await this.openStream(url, { ...options, lastEventId });
      } catch (error) {
        // Refused or reset before its headers: an upstream restarting (its events kept in a store of its own) or
        // one whose connection dropped. Tried again after the same wait, as a resumption that brought nothing.
        const { kind, message } = classifyUpstreamError(error);
        if (kind !== 'connection_refused' || options.signal?.aborted) throw error;
        unreached = { attempts: (unreached?.attempts ?? 0) + 1, reason: message };
        continue;
      }
      if (answer.statusCode === 200 && answer.contentType.startsWith('text/event-stream')) return answer;
      await answer.dump();
      return undefined;
    }
  }

  async delete(url: string, options: UpstreamRequestOptions): Promise<number> {
    const answer = await this.request(url, 'DELETE', this.headersOf(options), options.signal);
    await answer.dump();
    return answer.statusCode;
  }

  private openStream(url: string, options: UpstreamRequestOptions & { lastEventId?: string }): Promise<UpstreamAnswer> {
    const headers = this.headersOf(options);
    headers.accept = 'text/event-stream';
    if (options.lastEventId) headers[LAST_EVENT_ID_HEADER] = options.lastEventId;
    return this.request(url, 'GET', headers, options.signal);
  }

  /** The gateway's credentials and the session's headers, in a new object the caller may add to. */
  private headersOf(options: UpstreamRequestOptions): Record<string, string> {
    const headers: Record<string, string> = Object.assign({}, options.headers);
    if (options.sessionId) headers[SESSION_HEADER] = options.sessionId;
    if (options.protocolVersion) headers[PROTOCOL_VERSION_HEADER] = options.protocolVersion;
    return headers;
  }

  /**
   * The answer once its headers are in; its body stays readable until it ends, fails or `signal` aborts (with the
   * signal's reason, as fetch rejects: callers tell a timeout from a client that left by it). `message` is the
   * JSON body, if any. A request whose connection drops before the answer is sent once more on a new connection,
   * if it may run twice.
   */
  private async request(
    url: string,
    method: Dispatcher.HttpMethod,
    headers: Record<string, string>,
    signal: Abortable | undefined,
    message?: unknown,
  ): Promise<UpstreamAnswer> {
    signal?.throwIfAborted();
    const target = targetOf(url);
    const body = message === undefined ? undefined : JSON.stringify(message);
    const options: Dispatcher.DispatchOptions = { origin: target.origin, path: target.path, method, headers, body };
    let answer = this.dispatch(options, signal);
    try {
      await answer.headers;
    } catch (error) {
      if (!STALE_CONNECTION.has((error as NodeJS.ErrnoException).code ?? '') || signal?.aborted) throw error;
      // The connection dropped once the request was on it (undici fails the request it was writing or waiting on;
      // those queued behind it wait for a new connection): a kept-alive connection the upstream had just closed,
      // or an upstream that read the request and then stopped (a crash, a restart). Which one cannot be told, so
      // only what may run twice is sent again.
      if (message !== undefined && !isRepeatable(message)) throw new DroppedBeforeAnswer();
      answer = this.dispatch(options, signal);
      await answer.headers;
    }
    if (answer.statusCode >= 300 && answer.statusCode < 400 && answer.location !== undefined) {
      await answer.dump();
      throw new UnexpectedRedirect(answer.statusCode);
    }
    // Told apart from the upstream's own 400s by its header, whoever reads the answer (src/upstream/gateway-via.ts).
    const loop = answer.loop === undefined ? undefined : loopRefusalOf(answer.statusCode, answer.loop, headers.via);
    if (loop) {
      await answer.dump();
      throw loop;
    }
    return answer;
  }

  private dispatch(options: Dispatcher.DispatchOptions, signal: Abortable | undefined): UpstreamAnswer {
    const answer = new UpstreamAnswer(signal);
    this.dispatcher.dispatch(options, answer);
    return answer;
  }

  /** The reply to relay: an event stream's at once, its events read as they come; any other once its body is read. */
  private reply(answer: UpstreamAnswer): UpstreamReply | Promise<UpstreamReply> {
    const { statusCode: status, sessionId, contentType: type } = answer;
    // Each reply built field by field: on Node 20 a literal that begins with a spread is promoted, with what it holds
    // (here the SSE reader and the answer under it, on every relayed call).
    if (status === 202 || status === 204 || answer.contentLength === '0') {
      return answer.dump().then((): UpstreamReply => ({ status, sessionId, body: { kind: 'none' } }));
    }
    if (type.startsWith('text/event-stream')) {
      return { status, sessionId, body: { kind: 'sse', events: parseSse(answer) } };
    }
    return answer.text().then((text) => replyOfText(status, sessionId, type, text));
  }
}

/** A reply read whole: its JSON, or the start of a text that is none, for the log. */
function replyOfText(status: number, sessionId: string | undefined, type: string, text: string): UpstreamReply {
  if (type.includes('json')) {
    try {
      return { status, sessionId, body: { kind: 'json', value: JSON.parse(text) as unknown } };
    } catch {
      return { status, sessionId, body: { kind: 'none' }, text: text.slice(0, MAX_ERROR_TEXT) };
    }
  }
  return { status, sessionId, body: { kind: 'none' }, text: text.slice(0, MAX_ERROR_TEXT) };
}

/** The connection dropped before the upstream answered a request that may not run twice (a tool call). */
export class DroppedBeforeAnswer extends UpstreamError {
  constructor() {
    super(
      'connection_refused',
      'the upstream dropped the connection before answering; not sent again, since the upstream may have acted on it',
    );
  }
}

/** An upstream answered with a redirect, which the gateway never follows. */
export class UnexpectedRedirect extends UpstreamError {
  constructor(status: number) {
    super('http_status', `the upstream answered with a redirect (HTTP ${status}), which is not followed`, status);
  }
}

/** Upstream URLs as undici takes them, each parsed once rather than a `URL` built per request. */
const TARGETS = new Map<string, { origin: string; path: string }>();
/** More upstream URLs than a registry holds: past this, new ones are parsed each time. */
const TARGETS_KEPT = 1_000;

function targetOf(url: string): { origin: string; path: string } {
  let target = TARGETS.get(url);
  if (target === undefined) {
    const parsed = new URL(url);
    target = { origin: parsed.origin, path: `${parsed.pathname}${parsed.search}` };
    if (TARGETS.size < TARGETS_KEPT) TARGETS.set(url, target);
  }
  return target;
}
