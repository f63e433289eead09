import { Inject, Injectable, Optional } from '@nestjs/common';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { ClientCapabilities } from '@modelcontextprotocol/sdk/types.js';
import type { UpstreamCaller } from '../auth/principal';
import { UpstreamTokenProvider } from '../auth/upstream-token-provider';
import type { AppConfig, UpstreamConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import type { UpstreamTarget } from '../registry/server.schema';
import { GATEWAY_VERSION } from '../version';
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
  close(): Promise<void>;
}

/**
 * Opens MCP client sessions to upstreams with the gateway's own identity:
 * URL policy checked first, static header secrets read from the environment,
 * bounded time. The caller's `Authorization` is never involved here.
 */
@Injectable()
export class UpstreamConnector {
  private readonly upstream: UpstreamConfig;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly urlGuard: UrlGuard,
    @Optional() private readonly tokens?: UpstreamTokenProvider,
  ) {
    this.upstream = config.upstream;
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
    const transport = this.transportFor(target, await this.headersFor(target, options.caller));
    const client = new Client(
      { name: 'mcp-gateway', version: GATEWAY_VERSION },
      { capabilities: options.capabilities ?? {} },
    );
    try {
      await client.connect(transport, { timeout: options.timeoutMs ?? this.connectTimeoutMs(target) });
    } catch (error) {
      await client.close().catch(() => undefined);
      throw error;
    }
    const protocolVersion = (transport as { protocolVersion?: string }).protocolVersion;
    return {
      client,
      protocolVersion,
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
   * `entra-*` servers get an Entra token of their own (for `entra-obo`, on behalf of `caller`).
   */
  async headersFor(target: UpstreamTarget, caller?: UpstreamCaller): Promise<Record<string, string>> {
    const { auth } = target;
    switch (auth.type) {
      case 'none':
        return {};
      case 'headers': {
        const headers: Record<string, string> = {};
        for (const [name, { env }] of Object.entries(auth.headers)) {
          const value = this.upstream.secretSource[env];
          if (!value) throw new UpstreamError('auth', `environment variable ${env} (for header ${name}) is not set`);
          headers[name] = value;
        }
        return headers;
      }
      case 'entra-obo':
      case 'entra-client-credentials': {
        if (!this.tokens) throw new UpstreamError('auth', `upstream auth ${auth.type} is not available here`);
        return { authorization: `Bearer ${await this.tokens.tokenFor(target, caller)}` };
      }
    }
  }

  private transportFor(target: UpstreamTarget, headers: Record<string, string>): Transport {
    const url = new URL(target.url);
    if (target.transport === 'sse') {
      return new SSEClientTransport(url, { requestInit: { headers } });
    }
    // Redirects stay on the upstream's origin: a redirect must not become a way around the URL policy.
    return new StreamableHTTPClientTransport(url, { requestInit: { headers }, redirectPolicy: 'same-origin' });
  }
}
