import { parseSse, type SseEvent } from './sse';

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
  signal?: AbortSignal;
}

export type UpstreamBody =
  { kind: 'json'; value: unknown } | { kind: 'sse'; events: AsyncIterable<SseEvent> } | { kind: 'none' };

export interface UpstreamReply {
  status: number;
  /** The session id the upstream assigned (on initialize) or echoed. */
  sessionId?: string;
  body: UpstreamBody;
  /** Text of a non-MCP answer (an error page), for the log; bounded. */
  text?: string;
}

const MAX_ERROR_TEXT = 2_000;

/**
 * A lean Streamable HTTP client for relaying: it moves JSON-RPC messages and
 * SSE events between the gateway and an upstream without interpreting them,
 * so what the upstream says reaches the client as it was said.
 */
export class StreamableHttpClient {
  async post(url: string, message: unknown, options: UpstreamRequestOptions): Promise<UpstreamReply> {
    const response = await fetch(url, {
      method: 'POST',
      headers: {
        ...options.headers,
        ...this.sessionHeaders(options),
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify(message),
      signal: options.signal,
      redirect: 'error',
    });
    return this.reply(response);
  }

  async get(url: string, options: UpstreamRequestOptions & { lastEventId?: string }): Promise<UpstreamReply> {
    const response = await fetch(url, {
      method: 'GET',
      headers: {
        ...options.headers,
        ...this.sessionHeaders(options),
        accept: 'text/event-stream',
        ...(options.lastEventId ? { [LAST_EVENT_ID_HEADER]: options.lastEventId } : {}),
      },
      signal: options.signal,
      redirect: 'error',
    });
    return this.reply(response);
  }

  async delete(url: string, options: UpstreamRequestOptions): Promise<number> {
    const response = await fetch(url, {
      method: 'DELETE',
      headers: { ...options.headers, ...this.sessionHeaders(options) },
      signal: options.signal,
      redirect: 'error',
    });
    await response.body?.cancel();
    return response.status;
  }

  private sessionHeaders(options: UpstreamRequestOptions): Record<string, string> {
    const headers: Record<string, string> = {};
    if (options.sessionId) headers[SESSION_HEADER] = options.sessionId;
    if (options.protocolVersion) headers[PROTOCOL_VERSION_HEADER] = options.protocolVersion;
    return headers;
  }

  private async reply(response: Response): Promise<UpstreamReply> {
    const sessionId = response.headers.get(SESSION_HEADER) ?? undefined;
    const type = response.headers.get('content-type') ?? '';
    const base = { status: response.status, sessionId };
    if (response.body === null || response.status === 202 || response.status === 204) {
      await response.body?.cancel();
      return { ...base, body: { kind: 'none' } };
    }
    if (type.startsWith('text/event-stream')) {
      return { ...base, body: { kind: 'sse', events: parseSse(response.body) } };
    }
    const text = await response.text();
    if (type.includes('json')) {
      try {
        return { ...base, body: { kind: 'json', value: JSON.parse(text) as unknown } };
      } catch {
        return { ...base, body: { kind: 'none' }, text: text.slice(0, MAX_ERROR_TEXT) };
      }
    }
    return { ...base, body: { kind: 'none' }, text: text.slice(0, MAX_ERROR_TEXT) };
  }
}
