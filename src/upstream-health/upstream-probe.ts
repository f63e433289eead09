import { performance } from 'node:perf_hooks';
import { Injectable } from '@nestjs/common';
import { ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';
import { ErrorCodes } from '../mcp/jsonrpc';
import { StreamableHttpClient } from '../mcp/streamable-http-client';
import { endUpstreamSession, openUpstreamSession, pingUpstream } from '../mcp/upstream-exchange';
import type { UpstreamTarget } from '../registry/server.schema';
import { UpstreamConnector } from '../upstream/upstream-connector';
import { classifyUpstreamError, UpstreamError } from '../upstream/upstream-error';
import { UrlGuard } from '../upstream/url-guard';
import type { ProbeResult } from './health-state';

export interface ProbeOptions {
  /** Bounds the whole probe: URL check, connect, initialize and ping. */
  timeoutMs: number;
  /** Aborting gives up at once; the session is still closed in the background. */
  signal?: AbortSignal;
  /**
   * Probe without credentials, and take an auth challenge (401/403) as proof
   * that the upstream is up: for servers the gateway can only authenticate to
   * on behalf of a signed-in user (`entra-obo`), whom a background probe does not have.
   */
  unauthenticated?: boolean;
}

/** Raised inside a probe that ran out of time or was given up; never escapes `run`. */
class ProbeInterrupted extends Error {
  constructor(readonly why: 'timeout' | 'aborted') {
    super(why);
  }
}

/**
 * One health probe of one upstream: a fresh MCP session (initialize, initialized),
 * a `ping`, and the session ended again (DELETE), all within one deadline. Never
 * throws; every failure comes back classified. Over the relay's own HTTP client:
 * the MCP SDK's client also opened the session's GET event stream on every probe,
 * and its web streams made most of what an idle gateway allocated (with the 100
 * servers of `npm run bench` registered: 41 MB a minute, 7 MB now, list-changed
 * watchers included).
 */
@Injectable()
export class UpstreamProbe {
  private probes = 0;
  private readonly http: StreamableHttpClient;

  constructor(
    private readonly connector: UpstreamConnector,
    private readonly urlGuard: UrlGuard,
  ) {
    this.http = new StreamableHttpClient(urlGuard);
  }

  async run(target: UpstreamTarget, options: ProbeOptions): Promise<ProbeResult> {
    const started = performance.now();
    const deadline = new Deadline(options.timeoutMs, options.signal);
    const probed: UpstreamTarget = options.unauthenticated ? { ...target, auth: { type: 'none' } } : target;
    try {
      // The race bounds the wait; the session work itself goes on until it closes its session.
      const latencyMs = await Promise.race([
        this.pingOnce(probed, options.timeoutMs, started, deadline),
        deadline.expired,
      ]);
      return { ok: true, at: new Date(), latencyMs };
    } catch (error) {
      if (error instanceof ProbeInterrupted) {
        return {
          ok: false,
          at: new Date(),
          kind: 'timeout',
          message:
            error.why === 'timeout'
              ? `no answer within ${options.timeoutMs} ms`
              : 'the probe was abandoned (the gateway is stopping)',
        };
      }
      const { kind, message } = classifyUpstreamError(error);
      if (kind === 'auth' && options.unauthenticated) {
        return { ok: true, at: new Date(), latencyMs: round(performance.now() - started) };
      }
      return { ok: false, at: new Date(), kind, message };
    } finally {
      deadline.clear();
    }
  }

  /** Resolves with the latency of connect + initialize + ping; the session ends afterwards, in the background. */
  private async pingOnce(
    target: UpstreamTarget,
    timeoutMs: number,
    started: number,
    deadline: Deadline,
  ): Promise<number> {
    if (target.transport === 'sse') return this.pingOverSdk(target, timeoutMs, started, deadline);
    const headers = await this.connector.headersFor(target);
    const id = ++this.probes;
    const { url } = target;
    const session = await openUpstreamSession(
      this.http,
      this.urlGuard,
      url,
      headers,
      `mcp-gateway-probe-${id}`,
      deadline.signal,
    );
    try {
      deadline.throwIfOver();
      const response = await pingUpstream(
        this.http,
        url,
        session,
        headers,
        `mcp-gateway-probe-ping-${id}`,
        deadline.signal,
      );
      // An upstream that completed initialize and answers `ping` with "method not found" is up: it answered.
      if ('error' in response && response.error.code !== ErrorCodes.methodNotFound) {
        throw new UpstreamError('protocol', `MCP error ${response.error.code}: ${response.error.message}`);
      }
      return round(performance.now() - started);
    } finally {
      // Not awaited: ending the session is bounded on its own and must not count as probe time or delay the result.
      const ending = AbortSignal.timeout(Math.max(1_000, Math.ceil(deadline.remainingMs())));
      endUpstreamSession(this.http, url, session, headers, ending).catch(() => undefined);
    }
  }

  /** The same over the MCP SDK's client, for a server on the deprecated HTTP+SSE transport. */
  private async pingOverSdk(
    target: UpstreamTarget,
    timeoutMs: number,
    started: number,
    deadline: Deadline,
  ): Promise<number> {
    const session = await this.connector.connect(target, { timeoutMs });
    try {
      deadline.throwIfOver();
      const remaining = Math.max(1, timeoutMs - (performance.now() - started));
      try {
        await session.client.ping({ timeout: remaining, signal: AbortSignal.any([deadline.signal, session.tooLarge]) });
      } catch (error) {
        if (session.tooLarge.aborted) throw session.tooLarge.reason;
        if (!(error instanceof McpError && error.code === (ErrorCode.MethodNotFound as number))) throw error;
      }
      return round(performance.now() - started);
    } finally {
      void session.close().catch(() => undefined);
    }
  }
}

/** A deadline a probe races against; also expires when the outer signal aborts. */
class Deadline {
  readonly expired: Promise<never>;
  private readonly controller = new AbortController();
  private readonly endsAt: number;
  private readonly timer: NodeJS.Timeout;
  private readonly detach: () => void;
  private reason?: ProbeInterrupted;

  constructor(timeoutMs: number, outer?: AbortSignal) {
    this.endsAt = performance.now() + timeoutMs;
    let reject: (error: ProbeInterrupted) => void = () => undefined;
    this.expired = new Promise<never>((_, rejectExpired) => {
      reject = rejectExpired;
    });
    // Nobody may be listening any more once the probe settled; an unhandled rejection must not follow.
    this.expired.catch(() => undefined);
    const expire = (why: ProbeInterrupted['why']): void => {
      if (this.reason) return;
      this.reason = new ProbeInterrupted(why);
      this.controller.abort(this.reason);
      reject(this.reason);
    };
    this.timer = setTimeout(() => expire('timeout'), timeoutMs);
    this.timer.unref();
    const onAbort = (): void => expire('aborted');
    if (outer?.aborted) onAbort();
    outer?.addEventListener('abort', onAbort, { once: true });
    this.detach = () => outer?.removeEventListener('abort', onAbort);
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  remainingMs(): number {
    return Math.max(0, this.endsAt - performance.now());
  }

  throwIfOver(): void {
    if (this.reason) throw this.reason;
  }

  clear(): void {
    clearTimeout(this.timer);
    this.detach();
  }
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
