import { LATEST_PROTOCOL_VERSION } from '@modelcontextprotocol/sdk/types.js';
import type { Abortable } from '../common/call-signal';
import { UpstreamError, upstreamStatusMessage } from '../upstream/upstream-error';
import type { UrlGuard } from '../upstream/url-guard';
import { GATEWAY_VERSION } from '../version';
import { isResponse, type JsonRpcRequest, type JsonRpcResponse, parseMessage } from './jsonrpc';
import type { SseEventStream } from './sse';
import type { StreamableHttpClient, UpstreamReply } from './streamable-http-client';

/** Exchanges with an upstream shared by the per-server relay and the aggregate endpoint's pool. */

/**
 * Sends an initialize and waits for its answer (JSON, or the matching SSE
 * event). The URL policy is checked first: every new upstream session passes it.
 */
export async function initializeUpstream(
  http: StreamableHttpClient,
  urlGuard: UrlGuard,
  url: string,
  headers: Record<string, string>,
  request: JsonRpcRequest,
  signal: Abortable,
): Promise<{ response: JsonRpcResponse; sessionId?: string }> {
  const verdict = await urlGuard.check(url);
  if (!verdict.allowed) throw new UpstreamError('refused_url', `the upstream URL ${verdict.reason}`);
  const reply = await http.post(url, request, { headers, signal });
  const response = await responseTo(reply, request.id);
  if (!response) throw statusFailure(reply);
  return { response, sessionId: reply.sessionId };
}

/** An upstream session the gateway opened with its own identity (no session id: a stateless upstream). */
export interface UpstreamHandshake {
  sessionId?: string;
  protocolVersion: string;
}

/**
 * The whole handshake as the gateway itself, declaring no capabilities: initialize under `id`, then
 * `notifications/initialized`. An upstream that names no protocol version is taken to speak the latest.
 */
export async function openUpstreamSession(
  http: StreamableHttpClient,
  urlGuard: UrlGuard,
  url: string,
  headers: Record<string, string>,
  id: string,
  signal: Abortable,
): Promise<UpstreamHandshake> {
  const request: JsonRpcRequest = {
    jsonrpc: '2.0',
    id,
    method: 'initialize',
    params: {
      protocolVersion: LATEST_PROTOCOL_VERSION,
      capabilities: {},
      clientInfo: { name: 'mcp-gateway', version: GATEWAY_VERSION },
    },
  };
  const { response, sessionId } = await initializeUpstream(http, urlGuard, url, headers, request, signal);
  if ('error' in response) throw new UpstreamError('protocol', `initialize failed: ${response.error.message}`);
  const version = response.result.protocolVersion;
  const protocolVersion = typeof version === 'string' ? version : LATEST_PROTOCOL_VERSION;
  await sendInitialized(http, url, headers, sessionId, protocolVersion, signal);
  return { sessionId, protocolVersion };
}

/**
 * The upstream's answer to a `ping` under `id` (an error answer included), its event stream resumed if the upstream
 * closes it early; rejects when none comes.
 */
export async function pingUpstream(
  http: StreamableHttpClient,
  url: string,
  session: UpstreamHandshake,
  headers: Record<string, string>,
  id: string,
  signal: Abortable,
): Promise<JsonRpcResponse> {
  const options = { ...session, headers, signal };
  const reply = await http.post(url, { jsonrpc: '2.0', id, method: 'ping' }, options);
  if (reply.body.kind === 'sse') {
    reply.body.events.resumeWith((lastEventId, retryMs, fruitless) =>
      http.resume(url, options, lastEventId, retryMs, fruitless),
    );
  }
  const response = await responseTo(reply, id);
  if (response) return response;
  throw reply.status >= 400 ? statusFailure(reply) : new UpstreamError('protocol', 'the ping got no answer');
}

/** DELETEs an upstream session (one without an id has nothing to end); rejects when the upstream could not be told. */
export async function endUpstreamSession(
  http: StreamableHttpClient,
  url: string,
  session: UpstreamHandshake,
  headers: Record<string, string>,
  signal: Abortable,
): Promise<void> {
  if (session.sessionId) await http.delete(url, { ...session, headers, signal });
}

/** `notifications/initialized`, which ends the handshake. */
export async function sendInitialized(
  http: StreamableHttpClient,
  url: string,
  headers: Record<string, string>,
  sessionId: string | undefined,
  protocolVersion: string,
  signal: Abortable,
): Promise<void> {
  const reply = await http.post(
    url,
    { jsonrpc: '2.0', method: 'notifications/initialized' },
    { sessionId, protocolVersion, headers, signal },
  );
  await discard(reply);
}

/**
 * The upstream's answer to `id`, from a JSON body or the SSE stream; undefined when there is none. `asked` hears each
 * request the upstream sends back in the stream meanwhile.
 */
export async function responseTo(
  reply: UpstreamReply,
  id: string | number,
  asked?: (request: JsonRpcRequest) => void,
): Promise<JsonRpcResponse | undefined> {
  if (reply.status >= 400) {
    await discard(reply);
    return undefined;
  }
  if (reply.body.kind === 'json') {
    const values = Array.isArray(reply.body.value) ? reply.body.value : [reply.body.value];
    return values.find((value) => isResponseTo(value, id)) as JsonRpcResponse | undefined;
  }
  if (reply.body.kind === 'sse') {
    const events = reply.body.events[Symbol.asyncIterator]();
    for (let next = await events.next(); !next.done; next = await events.next()) {
      const value = safeJson(next.value.data);
      if (isResponseTo(value, id)) {
        readToTheEnd(events);
        return value as JsonRpcResponse;
      }
      if (asked && isRequestMessage(value)) asked(value as JsonRpcRequest);
    }
  }
  return undefined;
}

/** A JSON-RPC request as it arrives: an object with a method and an id. */
export function isRequestMessage(value: unknown): boolean {
  return typeof value === 'object' && value !== null && 'method' in value && 'id' in value;
}

export function isResponseTo(value: unknown, id: string | number): boolean {
  const parsed = parseMessage(value);
  return 'message' in parsed && isResponse(parsed.message) && parsed.message.id === id;
}

export function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** What an HTTP error status from the upstream means for the caller. */
export function statusFailure(reply: UpstreamReply): UpstreamError {
  if (reply.status === 401 || reply.status === 403) {
    return new UpstreamError(
      'auth',
      `the upstream refused the gateway's credentials (HTTP ${reply.status})`,
      reply.status,
    );
  }
  return new UpstreamError('http_status', upstreamStatusMessage(reply.status), reply.status);
}

/**
 * Reads what is left of an SSE reply in the background, for a reader that has the answer it waited for. An
 * upstream ends a request's stream once it has answered; read to that end, the connection goes back to the
 * keep-alive pool. Leaving the stream early (`break` in `for await`) destroys it: a new TCP connection for every
 * call, which doubled the upstream's CPU per call through the REST bridge (`npm run bench`). A stream the
 * upstream keeps open ends when the request's signal does; it is not resumed once it ends.
 */
export function readToTheEnd(events: SseEventStream): void {
  events.answered();
  const next = (): void => {
    events.next().then(
      (result) => {
        if (!result.done) next();
      },
      // Failed or aborted after the answer: nobody waits for the rest.
      () => undefined,
    );
  };
  next();
}

/** Lets go of a reply's body without reading it. */
export async function discard(reply: UpstreamReply): Promise<void> {
  if (reply.body.kind === 'sse') {
    // Ending the iteration cancels the stream underneath.
    for await (const _event of reply.body.events) break;
  }
}
