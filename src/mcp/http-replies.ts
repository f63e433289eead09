import type { IncomingMessage, ServerResponse } from 'node:http';
import { SUPPORTED_PROTOCOL_VERSIONS } from '@modelcontextprotocol/sdk/types.js';
import { sendChallenge } from '../auth/bearer-challenge';
import type { ProtectedResource } from '../auth/protected-resource';
import { SESSION_ID_MISSING, SESSION_NOT_FOUND, type SessionRefusal, sessionReadFailure } from './exchange-recorder';
import { ErrorCodes, errorResponse, type JsonRpcMessage, type RequestId } from './jsonrpc';
import { type McpSession, type McpSessionStore, SessionStoreUnavailable } from './session-store';
import { formatSse, type SseEvent } from './sse';
import { PROTOCOL_VERSION_HEADER, SESSION_HEADER } from './streamable-http-client';
import { CallSignal } from '../common/call-signal';
import { sendText } from '../common/send-text';

/** An answer without a body. */
export function endWith(res: ServerResponse, httpStatus: number): void {
  res.statusCode = httpStatus;
  res.end();
}

/** A request header's (first) value. */
export function headerOf(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** A JSON-RPC error as the whole HTTP answer (transport-level problems: bad session, bad body). */
export function sendRpcError(
  res: ServerResponse,
  httpStatus: number,
  id: RequestId | null,
  code: number,
  message: string,
  data?: unknown,
): void {
  sendJson(res, httpStatus, errorResponse(id, code, message, data));
}

/**
 * 503 to a request whose MCP session could not be created, read or changed because the session store (Redis) does
 * not answer; the request may be tried again. An event stream already begun is ended instead.
 */
export function sendSessionStoreOutage(
  res: ServerResponse,
  id: RequestId | null,
  outage: SessionStoreUnavailable,
): void {
  if (res.headersSent) res.end();
  else sendRpcError(res, 503, id, ErrorCodes.internalError, `Service unavailable: ${outage.detail}`);
}

/**
 * The session the request's Mcp-Session-Id names, when it is the caller's (`principalKey`) on this endpoint
 * (`serverId`: the server's on `/mcp/{slug}`, undefined on `/mcp`); otherwise undefined, with the answer sent: 400
 * without the header, 503 while the store does not answer (GET and DELETE too, which Express serves; the POST lane
 * answers its own alike), 404 for a session that is gone or not theirs, or the protocol version's refusal.
 */
export function requestedSession(
  sessions: McpSessionStore,
  req: IncomingMessage,
  res: ServerResponse,
  principalKey: string,
  serverId: string | undefined,
  refused: (ending: SessionRefusal) => void,
): McpSession | undefined | Promise<McpSession | undefined> {
  const id = headerOf(req, SESSION_HEADER);
  if (!id) {
    refused(SESSION_ID_MISSING);
    sendRpcError(res, 400, null, ErrorCodes.connectionClosed, 'Bad Request: Mcp-Session-Id header is required');
    return undefined;
  }
  let read: McpSession | undefined | Promise<McpSession | undefined>;
  try {
    read = sessions.get(id);
  } catch (error) {
    return unreadSession(error, res, refused);
  }
  // Most sessions are cached on the replica: checked at once, without a promise (bench/HISTORY.md, session 25).
  if (!(read instanceof Promise)) return checkedSession(read, req, res, principalKey, serverId, refused);
  return read.then(
    (session) => checkedSession(session, req, res, principalKey, serverId, refused),
    (error: unknown) => unreadSession(error, res, refused),
  );
}

/** `session` when it is the caller's on this endpoint (see `requestedSession`); else undefined, with the answer sent. */
function checkedSession(
  session: McpSession | undefined,
  req: IncomingMessage,
  res: ServerResponse,
  principalKey: string,
  serverId: string | undefined,
  refused: (ending: SessionRefusal) => void,
): McpSession | undefined {
  // Another principal's session is as unknown as an expired one.
  if (!session || session.principalKey !== principalKey || session.serverId !== serverId) {
    refused(SESSION_NOT_FOUND);
    sendRpcError(res, 404, null, ErrorCodes.requestTimeout, 'Session not found');
    return undefined;
  }
  if (refuseUnknownProtocolVersion(req, res, session.protocolVersion)) return undefined;
  return session;
}

/** A session the store could not read: answered 503 when the store is out, thrown on otherwise. */
function unreadSession(error: unknown, res: ServerResponse, refused: (ending: SessionRefusal) => void): undefined {
  // Audited here, whatever answers it: a refusal of Redis is an internal fault, answered by the exception filter.
  const failure = sessionReadFailure(error);
  if (failure) refused(failure);
  if (!(error instanceof SessionStoreUnavailable)) throw error;
  sendSessionStoreOutage(res, null, error);
  return undefined;
}

/** Which of the Streamable HTTP transport's two kinds of answer a request takes. */
export interface Acceptable {
  json: boolean;
  eventStream: boolean;
}

const EITHER: Acceptable = { json: true, eventStream: true };
/** The last Accept header read, and what it allowed: clients send the same one with every request. */
let lastAccept: string | undefined;
let lastAcceptable = EITHER;

/**
 * What a request's Accept header lets its answer be. The MCP spec has clients list both `application/json` and
 * `text/event-stream`, and most do; a client that lists only one (a plain JSON-RPC client, a proxy that wants only
 * streams) gets that one. Wildcards count (any type, `application/*`, `text/*`), `q=0` excludes. A header that allows
 * neither, or none at all, leaves both: the gateway answers as spec-following clients expect instead of refusing
 * (the SDK's server answers 406).
 */
export function acceptableFor(req: IncomingMessage | undefined): Acceptable {
  const header = req?.headers.accept;
  if (header === undefined) return EITHER;
  if (header === lastAccept) return lastAcceptable;
  let json = false;
  let eventStream = false;
  for (const range of header.split(',')) {
    const [type = '', ...params] = range.split(';').map((part) => part.trim().toLowerCase());
    if (params.some((param) => /^q\s*=\s*0(\.0{0,3})?$/.test(param))) continue;
    if (type === '*/*') json = eventStream = true;
    else if (type === 'application/json' || type === 'application/*') json = true;
    else if (type === 'text/event-stream' || type === 'text/*') eventStream = true;
  }
  lastAccept = header;
  lastAcceptable = json || eventStream ? { json, eventStream } : EITHER;
  return lastAcceptable;
}

/**
 * A JSON-RPC message (or batch) as the whole answer; a 200 goes out as one event to a client that takes only event
 * streams (`acceptableFor`).
 */
export function sendJson(res: ServerResponse, httpStatus: number, body: JsonRpcMessage | JsonRpcMessage[]): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  if (httpStatus === 200 && !acceptableFor(res.req).json) return sendEvent(res, JSON.stringify(body));
  sendText(res, httpStatus, 'application/json', JSON.stringify(body));
}

/** A 200 whose whole answer is one event carrying `data`: to a client that takes only event streams. */
export function sendEvent(res: ServerResponse, data: string): void {
  startSse(res);
  endWithEvent(res, { data });
}

/**
 * 400 to a request whose `MCP-Protocol-Version` is neither a version the gateway speaks nor the one its session agreed
 * on (an upstream behind `/mcp/{slug}` may speak a newer one): the spec's answer to an "invalid or unsupported"
 * version. A request without the header is taken to be in the session's version.
 */
export function refuseUnknownProtocolVersion(req: IncomingMessage, res: ServerResponse, agreed: string): boolean {
  const version = headerOf(req, PROTOCOL_VERSION_HEADER);
  if (version === undefined || version === agreed || SUPPORTED_PROTOCOL_VERSIONS.includes(version)) return false;
  const shown = version.length > 64 ? `${version.slice(0, 64)}…` : version;
  sendRpcError(res, 400, null, ErrorCodes.invalidRequest, `Bad Request: unsupported protocol version ${shown}`, {
    supported: [...new Set([agreed, ...SUPPORTED_PROTOCOL_VERSIONS])],
  });
  return true;
}

/** 406 to a GET for the event stream from a client that takes only JSON. */
export function refuseUnlessEventStream(req: IncomingMessage, res: ServerResponse): boolean {
  if (acceptableFor(req).eventStream) return false;
  sendRpcError(res, 406, null, ErrorCodes.invalidRequest, 'Not Acceptable: this stream is text/event-stream');
  return true;
}

/**
 * 401 `insufficient_claims`: the upstream's token needs claims the caller's token lacks (Entra ID conditional
 * access). The client signs in again asking for `claims` and repeats the request.
 */
export function sendClaimsChallenge(
  res: ServerResponse,
  resource: ProtectedResource,
  slug: string | undefined,
  claims: string,
  description: string,
): void {
  sendChallenge(res, 401, {
    error: 'insufficient_claims',
    description,
    resourceMetadata: resource.metadataUrl(slug),
    scopes: resource.scopes,
    claims,
  });
}

/** How long an SSE answer's headers wait for its first event (see `startSse`). */
const SSE_HEADERS_WAIT_MS = 20;

/**
 * Starts an SSE answer; events are written with `writeEvent`. The headers leave with the first event, or after
 * SSE_HEADERS_WAIT_MS when none is written before: an answer relayed at once then costs one socket write instead
 * of two (a measurable share of a relayed call's CPU in `npm run bench`; waiting only for the next turn of the
 * event loop missed most answers, which arrive a turn or two later), and a stream that stays quiet still shows
 * its headers at once to a person watching.
 */
export function startSse(res: ServerResponse): void {
  res.statusCode = 200;
  res.setHeader('content-type', 'text/event-stream');
  res.setHeader('cache-control', 'no-cache, no-transform');
  res.setHeader('connection', 'keep-alive');
  // Proxies such as nginx buffer streams unless told otherwise.
  res.setHeader('x-accel-buffering', 'no');
  const timer = setTimeout(() => {
    headerTimers.delete(res);
    if (!res.headersSent && !res.writableEnded && !res.destroyed) res.flushHeaders();
  }, SSE_HEADERS_WAIT_MS).unref();
  headerTimers.set(res, timer);
}

/**
 * The timers of SSE answers whose headers wait for their first event, stopped by it: left to fire, each kept its
 * answer (the response, its request, what they hold) alive 20 ms after the call was over, through young
 * collections, about three times as many answers as were in flight at concurrency 32 (`npm run bench`).
 */
const headerTimers = new WeakMap<ServerResponse, NodeJS.Timeout>();

function firstEventOut(res: ServerResponse): void {
  const timer = headerTimers.get(res);
  if (timer === undefined) return;
  clearTimeout(timer);
  headerTimers.delete(res);
}

export function writeEvent(res: ServerResponse, event: SseEvent): void {
  firstEventOut(res);
  res.write(formatSse(event));
}

/**
 * Writes the last event and ends the answer in one call. `write` then `end` cost Node a cork of the socket and a
 * `process.nextTick` to uncork it, and on Node 20 every `nextTick` spends ~4,000 instructions in V8's runtime on
 * the tick's object literal (its symbol-keyed fields; callgrind).
 */
export function endWithEvent(res: ServerResponse, event: SseEvent): void {
  firstEventOut(res);
  res.end(formatSse(event));
}

/**
 * A signal that aborts upstream work when the client goes away before its answer is finished, or when
 * `timeoutMs` passes; `closed` runs first, when the client went away. `done()` once the work is over.
 */
export function abortOnClose(
  res: ServerResponse,
  options: { timeoutMs?: number; closed?: () => void } = {},
): { signal: CallSignal; done: () => void } {
  const signal = new CallSignal(undefined, options.timeoutMs);
  const onClose = (): void => {
    if (res.writableFinished) return;
    options.closed?.();
    signal.abort(new Error('the client closed the connection'));
  };
  res.on('close', onClose);
  return {
    signal,
    done: () => {
      signal.dispose();
      res.off('close', onClose);
    },
  };
}
