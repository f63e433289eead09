import { Inject, Injectable, Optional } from '@nestjs/common';
import { PinoLogger } from 'nestjs-pino';
import type { McpExchange } from './mcp-exchange';
import {
  RATE_LIMITER,
  type RateLimiter,
  type RateLimitRequest,
  type RateLimitVerdict,
  UNLIMITED,
} from './rate-limiter';

export type ExchangeListener = (exchange: McpExchange) => void;

/**
 * The one place the MCP endpoints report to: `admit` asks the rate limiter
 * before a request is served, `record` tells every listener (audit trail,
 * metrics) how it ended. Listeners run synchronously on the hot path, so they
 * only enqueue or count. While a listener cannot keep what it is told (the
 * audit trail's spool is full), it halts the traffic: the MCP endpoints refuse
 * requests, saying `haltedReason`, until it resumes.
 */
@Injectable()
export class McpTraffic {
  private readonly listeners = new Set<ExchangeListener>();
  private readonly limiter: RateLimiter;
  private halted?: string;

  constructor(
    private readonly logger: PinoLogger,
    @Optional() @Inject(RATE_LIMITER) limiter?: RateLimiter,
  ) {
    this.logger.setContext(McpTraffic.name);
    this.limiter = limiter ?? UNLIMITED;
  }

  admit(request: RateLimitRequest): RateLimitVerdict | Promise<RateLimitVerdict> {
    return this.limiter.consume(request);
  }

  record(exchange: McpExchange): void {
    for (const listener of this.listeners) {
      try {
        listener(exchange);
      } catch (error) {
        this.logger.error({ err: error }, 'an MCP exchange listener failed');
      }
    }
  }

  /** Why MCP requests are refused now, or undefined while they are served. */
  get haltedReason(): string | undefined {
    return this.halted;
  }

  /** Refuses MCP requests, giving `reason`, until `resume()`. */
  halt(reason: string): void {
    this.halted = reason;
  }

  resume(): void {
    this.halted = undefined;
  }

  /** Returns the function that stops listening. */
  onRecord(listener: ExchangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
