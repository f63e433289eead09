import { LATEST_PROTOCOL_VERSION } from '@modelcontextprotocol/sdk/types.js';
import { CallSignal, timeoutError } from '../common/call-signal';
import { ErrorCodes, errorResponse, type JsonRpcMessage } from '../mcp/jsonrpc';
import { StreamableHttpClient } from '../mcp/streamable-http-client';
import type { SseEvent } from '../mcp/sse';
import {
  discard,
  endUpstreamSession,
  openUpstreamSession,
  pingUpstream,
  safeJson,
  statusFailure,
  type UpstreamHandshake,
} from '../mcp/upstream-exchange';
import type { UpstreamTarget } from '../registry/server.schema';
import type { UpstreamConnector, UpstreamSession } from '../upstream/upstream-connector';
import { UpstreamError } from '../upstream/upstream-error';
import type { UrlGuard } from '../upstream/url-guard';

/** What a listening session reports to its watcher. */
export interface ListenHandlers {
  /** A notification from the upstream (its method), on the session's event stream. */
  notified(method: string): void;
  /** The session's event stream ended or failed; the session is of no further use. */
  dropped(error?: unknown): void;
}

/** An open MCP session kept to hear what the upstream announces. */
export interface ListenSession {
  /** Resolves once the upstream answered a ping within `timeoutMs`; rejects otherwise. */
  ping(timeoutMs: number): Promise<void>;
  /** Ends the event stream and the upstream's session; the handlers hear nothing more. */
  close(): Promise<void>;
}

let nextId = 0;

/**
 * Opens a session with the upstream to listen on: the handshake, then the GET event stream of server messages
 * (an upstream that offers none, 405, is only pinged). Built on the relay's lean client rather than the MCP SDK's
 * client, whose fetch-based transport held about 85 KB of objects per watched server (web streams and their
 * promises): a third of what registering the 100 servers of `npm run bench` added to the gateway's heap. Servers
 * on the deprecated HTTP+SSE transport are still reached through the SDK (`UpstreamConnector.connect`).
 */
export async function openListenSession(
  connector: UpstreamConnector,
  urlGuard: UrlGuard,
  target: UpstreamTarget,
  handlers: ListenHandlers,
): Promise<ListenSession> {
  if (target.transport === 'sse') return sdkListenSession(await connector.connect(target), handlers);
  const http = new StreamableHttpClient(urlGuard);
  const listener = new UpstreamListener(http, connector, target, handlers, await connector.headersFor(target));
  await listener.open(urlGuard);
  return listener;
}

class UpstreamListener implements ListenSession {
  /** Bounds the event stream for its whole life: aborted by `close` or a failed open, never by a timer. */
  private readonly stream = new CallSignal();
  private readonly connectMs: number;
  private session: UpstreamHandshake = { protocolVersion: LATEST_PROTOCOL_VERSION };
  private closed = false;

  constructor(
    private readonly http: StreamableHttpClient,
    private readonly connector: UpstreamConnector,
    private readonly target: UpstreamTarget,
    private readonly handlers: ListenHandlers,
    private readonly headers: Record<string, string>,
  ) {
    this.connectMs = connector.connectTimeoutMs(target);
  }

  async open(urlGuard: UrlGuard): Promise<void> {
    const handshake = new CallSignal(this.stream, this.connectMs);
    try {
      const id = `mcp-gateway-watch-${++nextId}`;
      this.session = await openUpstreamSession(this.http, urlGuard, this.target.url, this.headers, id, handshake);
      // The stream outlives the handshake, so its headers are waited for by a timer of their own.
      const timer = setTimeout(() => this.stream.abort(timeoutError()), this.connectMs);
      const reply = await this.http
        .get(this.target.url, { ...this.session, headers: this.headers, signal: this.stream })
        .finally(() => clearTimeout(timer));
      if (reply.body.kind === 'sse' && reply.status < 300) {
        void this.read(reply.body.events);
        return;
      }
      await discard(reply);
      if (reply.status === 405) return;
      throw reply.status >= 400
        ? statusFailure(reply)
        : new UpstreamError('protocol', 'the upstream answered its event stream without one');
    } catch (error) {
      this.stream.abort(error);
      await this.end();
      throw error;
    } finally {
      handshake.dispose();
    }
  }

  async ping(timeoutMs: number): Promise<void> {
    const signal = new CallSignal(this.stream, timeoutMs);
    try {
      // Asked for each ping: an Entra token outlives no long session.
      const headers = await this.connector.headersFor(this.target);
      const id = `mcp-gateway-ping-${++nextId}`;
      const response = await pingUpstream(this.http, this.target.url, this.session, headers, id, signal);
      if ('error' in response) throw new UpstreamError('protocol', `ping failed: ${response.error.message}`);
    } finally {
      signal.dispose();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stream.abort(new Error('the watcher closed its session'));
    await this.end();
  }

  /** Reads the event stream to its end: notifications go to the watcher, requests are answered. */
  private async read(events: AsyncIterable<SseEvent>): Promise<void> {
    try {
      for await (const event of events) {
        const message = safeJson(event.data) as Partial<Record<'id' | 'method', unknown>> | null | undefined;
        if (typeof message !== 'object' || message === null || typeof message.method !== 'string') continue;
        if (message.id === undefined) this.handlers.notified(message.method);
        else if (typeof message.id === 'string' || typeof message.id === 'number') {
          this.answer(message.id, message.method).catch(() => undefined);
        }
      }
      if (!this.closed) this.handlers.dropped();
    } catch (error) {
      if (!this.closed) this.handlers.dropped(error);
    }
  }

  /** What an MCP client owes a server's request: `{}` for a ping; the gateway declares no capability for others. */
  private async answer(id: string | number, method: string): Promise<void> {
    const message: JsonRpcMessage =
      method === 'ping'
        ? { jsonrpc: '2.0', id, result: {} }
        : errorResponse(id, ErrorCodes.methodNotFound, `Method not found: ${method}`);
    const signal = new CallSignal(undefined, this.connectMs);
    try {
      await discard(await this.http.post(this.target.url, message, { ...this.session, headers: this.headers, signal }));
    } finally {
      signal.dispose();
    }
  }

  /** DELETEs the upstream's session; it expires there anyway if this fails. */
  private async end(): Promise<void> {
    const signal = new CallSignal(undefined, this.connectMs);
    await endUpstreamSession(this.http, this.target.url, this.session, this.headers, signal)
      .catch(() => undefined)
      .finally(() => signal.dispose());
  }
}

/** A session of the MCP SDK's client, for the deprecated HTTP+SSE transport, seen through the same interface. */
function sdkListenSession(session: UpstreamSession, handlers: ListenHandlers): ListenSession {
  let closed = false;
  // Every notification no handler of the SDK's own takes, as the lean listener passes them all on.
  session.client.fallbackNotificationHandler = (notification) => {
    handlers.notified(notification.method);
    return Promise.resolve();
  };
  session.client.onerror = (error) => {
    if (!closed) handlers.dropped(error);
  };
  session.client.onclose = () => {
    if (!closed) handlers.dropped();
  };
  return {
    ping: async (timeoutMs) => {
      await session.client.ping({ timeout: timeoutMs, signal: session.tooLarge });
    },
    close: async () => {
      closed = true;
      await session.close();
    },
  };
}
