import { Inject, Injectable, Optional } from '@nestjs/common';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { FetchLike, Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { ClientCapabilities } from '@modelcontextprotocol/sdk/types.js';
import type { UpstreamCaller } from '../auth/principal';
import { UpstreamTokenProvider } from '../auth/upstream-token-provider';
import type { AppConfig, UpstreamConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import type { UpstreamTarget } from '../registry/server.schema';
import { GATEWAY_VERSION } from '../version';
import { type Dispatcher, fetch as undiciFetch, type RequestInit as UndiciRequestInit } from 'undici';
import { LOOP_HEADER, loopRefusalOf, viaAfter, viaEntryOf } from './gateway-via';
import { guardedAgent } from './guarded-connection';
import { UpstreamError } from './upstream-error';
import { UrlGuard } from './url-guard';

export interface ConnectOptions {
  /** Bounds connect + initialize; defaults to the server's `timeouts.connectMs`, then UPSTREAM_CONNECT_TIMEOUT_MS. */
  timeoutMs?: number;
  /** Capabilities the gateway declares to the upstream (none by default). */
  capabilities?: ClientCapabilities;
  /** The calling user, for `entra-obo` servers (the upstream gets a token on their behalf, never theirs). */
  caller?: UpstreamCaller;
}

/** An initialized MCP client session with one upstream. */
export interface UpstreamSession {
  readonly client: Client;
  /** The protocol version negotiated at initialize. */
  readonly protocolVersion?: string;
  /**
   * Aborted, with an UpstreamError as its reason, once the upstream has sent more than MAX_SESSION_READ_BYTES:
   * requests should pass it (or a signal it aborts) as their `signal`, since a streamed answer cut short never
   * settles on its own.
   */
  readonly tooLarge: AbortSignal;
  close(): Promise<void>;
}

/**
 * Most the SDK sessions this connector opens (discovery, watchers and probes of SSE servers) read from their
 * upstream, every answer together: the SDK keeps a JSON answer, or an event, whole in memory however long it is, so
 * an upstream answering `tools/list` with an endless body grew the gateway's memory by some 100 MB a second until
 * the process was killed. Discovery keeps at most 10,000 items of each kind, which fit well within it.
 */
export const MAX_SESSION_READ_BYTES = 64 * 1024 * 1024;

/**
 * Opens MCP client sessions to upstreams with the gateway's own identity:
 * URL policy checked first, static header secrets read from the environment,
 * bounded time. The caller's `Authorization` is never involved here.
 */
@Injectable()
export class UpstreamConnector {
  private readonly upstream: UpstreamConfig;
  /** Connections of the SDK's sessions, each opened only to an address the URL policy allows. */
  private readonly dispatcher: Dispatcher;
  /** This gateway's `Via` entry (src/upstream/gateway-via.ts), on every request to an upstream. */
  private readonly via: string;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly urlGuard: UrlGuard,
    @Optional() private readonly tokens?: UpstreamTokenProvider,
  ) {
    this.upstream = config.upstream;
    this.dispatcher = guardedAgent(urlGuard);
    this.via = viaEntryOf(config.publicUrl);
  }

  requestTimeoutMs(target: UpstreamTarget): number {
    return target.timeouts.requestMs ?? this.upstream.requestTimeoutMs;
  }

  connectTimeoutMs(target: UpstreamTarget): number {
    return target.timeouts.connectMs ?? this.upstream.connectTimeoutMs;
  }

  async connect(target: UpstreamTarget, options: ConnectOptions = {}): Promise<UpstreamSession> {
    const verdict = await this.urlGuard.check(target.url);
    if (!verdict.allowed) throw new UpstreamError('refused_url', `the upstream URL ${verdict.reason}`);
    const tooLarge = new AbortController();
    const headers = await this.headersFor(target, options.caller);
    const fetch = readingAtMost(MAX_SESSION_READ_BYTES, tooLarge, this.dispatcher, headers.via);
    const transport = this.transportFor(target, headers, fetch);
    const client = new Client(
      { name: 'mcp-gateway', version: GATEWAY_VERSION },
      { capabilities: options.capabilities ?? {} },
    );
    try {
      await client.connect(transport, {
        timeout: options.timeoutMs ?? this.connectTimeoutMs(target),
        signal: tooLarge.signal,
      });
    } catch (error) {
      await client.close().catch(() => undefined);
      throw tooLarge.signal.aborted ? tooLarge.signal.reason : error;
    }
    const protocolVersion = (transport as { protocolVersion?: string }).protocolVersion;
    return {
      client,
      protocolVersion,
      tooLarge: tooLarge.signal,
      close: async () => {
        // Ends the upstream's session too (HTTP DELETE) instead of leaving it to expire there.
        if (transport instanceof StreamableHTTPClientTransport)
          await transport.terminateSession().catch(() => undefined);
        await client.close();
      },
    };
  }

  /**
   * Headers the gateway adds for this upstream; a missing secret is an `auth` failure, named but not shown.
   * `entra-*` servers get an Entra token of their own (for `entra-obo`, on behalf of `caller`). Every request of the
   * gateway to an upstream (relayed, pooled, discovery, probes, watchers) takes its headers from here, so every one
   * carries the gateway's `Via` entry, by which the gateway knows a request of its own that came back to it, after the
   * `Via` of the caller's request, by which a gateway it came through knows it (src/upstream/gateway-via.ts).
   * Given at once when no token is to be had (every relayed call asks), else as a promise; a missing secret or token
   * provider throws at once too.
   */
  headersFor(
    target: UpstreamTarget,
    caller?: UpstreamCaller,
  ): Record<string, string> | Promise<Record<string, string>> {
    const { auth } = target;
    const via = viaAfter(caller?.via, this.via);
    switch (auth.type) {
      case 'none':
        return { via };
      case 'headers': {
        const headers: Record<string, string> = {};
        for (const [name, { env }] of Object.entries(auth.headers)) {
          // Refused when written; a server stored before that may still name it, and must not replace the chain.
          if (name.toLowerCase() === 'via') continue;
          const value = this.upstream.secretSource[env];
          if (!value) throw new UpstreamError('auth', `environment variable ${env} (for header ${name}) is not set`);
          headers[name] = value;
        }
        headers.via = via;
        return headers;
      }
      case 'entra-obo':
      case 'entra-client-credentials': {
        if (!this.tokens) throw new UpstreamError('auth', `upstream auth ${auth.type} is not available here`);
        return this.tokens.tokenFor(target, caller).then((token) => ({ authorization: `Bearer ${token}`, via }));
      }
    }
  }

  /** `headers` (from `headersFor`) with this gateway's own `Via` entry alone, for a session shared by many callers. */
  ownHeaders(headers: Record<string, string>): Record<string, string> {
    return { ...headers, via: this.via };
  }

  private transportFor(target: UpstreamTarget, headers: Record<string, string>, fetch: FetchLike): Transport {
    const url = new URL(target.url);
    if (target.transport === 'sse') {
      return new SSEClientTransport(url, { requestInit: { headers }, fetch });
    }
    // Redirects stay on the upstream's origin: a redirect must not become a way around the URL policy.
    return new StreamableHTTPClientTransport(url, { requestInit: { headers }, redirectPolicy: 'same-origin', fetch });
  }
}

/** Responses with no body by definition: `new Response` refuses one for them. */
const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);

/**
 * `fetch` over `dispatcher`, whose responses' bodies, all together, end in an error once they have brought more than
 * `limit` bytes; `tooLarge` is aborted then, with that error as its reason. undici's own fetch, the one that goes with
 * its Agent (Node's fetch, a copy of an older undici, turns the Agent's connection errors into plain errors, a
 * refused address among them); its answer is handed on as the platform's Response the SDK expects. A loop refusal
 * (`loopRefusalOf`) of a request sent with `sentVia` fails the request instead.
 */
function readingAtMost(
  limit: number,
  tooLarge: AbortController,
  dispatcher: Dispatcher,
  sentVia: string | undefined,
): FetchLike {
  let read = 0;
  return async (url, init) => {
    const response = await undiciFetch(url, { ...(init as UndiciRequestInit), dispatcher });
    // The SDK's error for a 4xx says only its status: a loop refused by a gateway is told here, by its header.
    const loop = loopRefusalOf(response.status, response.headers.get(LOOP_HEADER) ?? undefined, sentVia);
    if (loop) {
      await response.body?.cancel();
      throw loop;
    }
    const answer = { status: response.status, statusText: response.statusText, headers: [...response.headers] };
    if (!response.body || NULL_BODY_STATUSES.has(response.status)) {
      await response.body?.cancel();
      return new Response(null, answer);
    }
    const counted = (response.body as ReadableStream<Uint8Array>).pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          read += chunk.byteLength;
          if (read <= limit) {
            controller.enqueue(chunk);
            return;
          }
          const error = new UpstreamError(
            'protocol',
            `the upstream sent more than ${limit / (1024 * 1024)} MiB in one session, more than the gateway reads`,
          );
          tooLarge.abort(error);
          controller.error(error);
        },
      }),
    );
    return new Response(counted, answer);
  };
}
