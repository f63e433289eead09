import * as http from 'node:http';
import * as https from 'node:https';
import { UpstreamError } from '../upstream/upstream-error';
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
 * Keep-alive connection pools shared by every client in the process, as fetch's global dispatcher was. No limit
 * per upstream: a slow upstream must not queue the calls of the fast ones behind it.
 */
const AGENTS = {
  'http:': new http.Agent({ keepAlive: true }),
  'https:': new https.Agent({ keepAlive: true }),
};

/**
 * A lean Streamable HTTP client for relaying: it moves JSON-RPC messages and
 * SSE events between the gateway and an upstream without interpreting them,
 * so what the upstream says reaches the client as it was said.
 *
 * Built on `node:http` rather than fetch: on the relay's hot path fetch's WHATWG layer (Request and Response
 * objects, web streams, their transfer bookkeeping) cost about a sixth of the gateway's CPU per call (see
 * `npm run bench`). What fetch did for us is kept: redirects are refused (an error, never followed, so the URL
 * policy cannot be walked around), and an aborted signal rejects with its reason, also mid-body.
 */
export class StreamableHttpClient {
  async post(url: string, message: unknown, options: UpstreamRequestOptions): Promise<UpstreamReply> {
    const body = JSON.stringify(message);
    const response = await this.request(
      url,
      'POST',
      {
        ...options.headers,
        ...this.sessionHeaders(options),
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'content-length': String(Buffer.byteLength(body)),
      },
      options.signal,
      body,
    );
    return this.reply(response);
  }

  async get(url: string, options: UpstreamRequestOptions & { lastEventId?: string }): Promise<UpstreamReply> {
    const response = await this.request(
      url,
      'GET',
      {
        ...options.headers,
        ...this.sessionHeaders(options),
        accept: 'text/event-stream',
        ...(options.lastEventId ? { [LAST_EVENT_ID_HEADER]: options.lastEventId } : {}),
      },
      options.signal,
    );
    return this.reply(response);
  }

  async delete(url: string, options: UpstreamRequestOptions): Promise<number> {
    const response = await this.request(
      url,
      'DELETE',
      { ...options.headers, ...this.sessionHeaders(options) },
      options.signal,
    );
    response.resume();
    return response.statusCode ?? 0;
  }

  private sessionHeaders(options: UpstreamRequestOptions): Record<string, string> {
    const headers: Record<string, string> = {};
    if (options.sessionId) headers[SESSION_HEADER] = options.sessionId;
    if (options.protocolVersion) headers[PROTOCOL_VERSION_HEADER] = options.protocolVersion;
    return headers;
  }

  /** The response once its headers are in; its body stays readable until it ends, fails or `signal` aborts. */
  private request(
    url: string,
    method: string,
    headers: Record<string, string>,
    signal: AbortSignal | undefined,
    body?: string,
    retried = false,
  ): Promise<http.IncomingMessage> {
    return new Promise((resolve, reject) => {
      signal?.throwIfAborted();
      const target = new URL(url);
      const transport = target.protocol === 'https:' ? https : http;
      const agent = target.protocol === 'https:' ? AGENTS['https:'] : AGENTS['http:'];
      const req = transport.request(target, { method, headers, agent });
      let response: http.IncomingMessage | undefined;
      // The reason itself, as fetch rejects with it: callers tell a timeout from a client that left by it.
      const onAbort = (): void => {
        // A DOMException (AbortSignal.timeout) is no `Error` instance here, yet carries the name callers read.
        const reason = (signal?.reason ?? new Error('aborted')) as Error;
        if (response) response.destroy(reason);
        else req.destroy(reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const release = (): void => signal?.removeEventListener('abort', onAbort);
      req.once('error', (error: NodeJS.ErrnoException) => {
        release();
        // A kept-alive connection the upstream closed (a restart) fails before it answers: once more on a new one.
        const stale = req.reusedSocket && !response && (error.code === 'ECONNRESET' || error.code === 'EPIPE');
        if (stale && !retried && !signal?.aborted) {
          resolve(this.request(url, method, headers, signal, body, true));
          return;
        }
        reject(error);
      });
      req.once('response', (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 300 && status < 400 && res.headers.location !== undefined) {
          res.resume();
          release();
          reject(new UnexpectedRedirect(status));
          return;
        }
        response = res;
        res.once('close', release);
        resolve(res);
      });
      req.end(body);
    });
  }

  private async reply(response: http.IncomingMessage): Promise<UpstreamReply> {
    const header = response.headers[SESSION_HEADER];
    const sessionId = typeof header === 'string' ? header : undefined;
    const type = response.headers['content-type'] ?? '';
    const status = response.statusCode ?? 0;
    const base = { status, sessionId };
    if (status === 202 || status === 204 || response.headers['content-length'] === '0') {
      response.resume();
      return { ...base, body: { kind: 'none' } };
    }
    if (type.startsWith('text/event-stream')) {
      return { ...base, body: { kind: 'sse', events: parseSse(response) } };
    }
    const text = await readText(response);
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

/** An upstream answered with a redirect, which the gateway never follows. */
export class UnexpectedRedirect extends UpstreamError {
  constructor(status: number) {
    super('http_status', `the upstream answered with a redirect (HTTP ${status}), which is not followed`, status);
  }
}

async function readText(response: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of response) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
