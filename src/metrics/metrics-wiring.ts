import { Inject, Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { TokenVerifier } from '../auth/token-verifier';
import type { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { McpSessionStore } from '../mcp/session-store';
import { UpstreamPool } from '../mcp/upstream-pool';
import { AuditTrail } from '../audit/audit-trail';
import { RateLimitStats } from '../ratelimit/rate-limit-stats';
import { McpTraffic } from '../traffic/mcp-traffic';
import { type ProbeReport, UpstreamHealthService } from '../upstream-health/upstream-health.service';
import { OTHER_LABEL } from './bounded-labels';
import { ExchangeMetrics } from './exchange-metrics';
import { GatewayMetrics } from './gateway-metrics';

/**
 * Connects the registry to what it counts: MCP exchanges and health probes
 * are pushed as they happen; sessions, the upstream pool, token counters and
 * upstream health are read at scrape time.
 */
@Injectable()
export class MetricsWiring implements OnModuleInit, OnModuleDestroy {
  private readonly exchanges: ExchangeMetrics;
  private readonly stops: (() => void)[] = [];

  constructor(
    private readonly metrics: GatewayMetrics,
    private readonly traffic: McpTraffic,
    private readonly health: UpstreamHealthService,
    private readonly pool: UpstreamPool,
    private readonly sessions: McpSessionStore,
    private readonly verifier: TokenVerifier,
    private readonly rateLimits: RateLimitStats,
    private readonly audit: AuditTrail,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.exchanges = new ExchangeMetrics(metrics, {
      toolsPerServer: config.metrics.toolLabelsPerServer,
      servers: config.metrics.serverLabels,
    });
  }

  onModuleInit(): void {
    this.stops.push(this.traffic.onRecord(this.exchanges.record));
    this.stops.push(this.health.onProbe((report) => this.onProbe(report)));
    this.stops.push(this.rateLimits.onDecision((decision) => this.metrics.rateLimits.decision(decision)));
    this.stops.push(
      this.rateLimits.onRedisState((state) =>
        state === 'down' ? this.metrics.rateLimits.redisUnavailable() : this.metrics.rateLimits.redisRecovered(),
      ),
    );
    this.wireAudit();
    const verifier = this.verifier;
    this.metrics.readFrom({
      sessionsOpen: () => this.sessions.openSessions(),
      upstreamPoolSessions: () => this.pool.size,
      upstreamCircuitsOpen: () => this.pool.openCircuits,
      tokenValidations: () => ({
        verified: verifier.stats.validations,
        cached: verifier.stats.cacheHits,
        invalidToken: verifier.stats.invalidToken,
        invalidRequest: verifier.stats.invalidRequest,
        unavailable: verifier.stats.unavailable,
      }),
      jwksFetches: () => {
        const keys = verifier.signingKeys;
        return keys ? { ok: keys.fetches - keys.fetchFailures, failed: keys.fetchFailures } : { ok: 0, failed: 0 };
      },
      // From the database, not from this process's probes: with Redis, another replica may have made them.
      upstreamHealth: async () =>
        (await this.health.statuses()).flatMap(({ slug, status }) => {
          const server = this.exchanges.serverLabel(slug);
          // Servers beyond the label cap share `other`: a status of theirs would be meaningless there.
          return server === OTHER_LABEL ? [] : [{ server, status }];
        }),
    });
  }

  /** Queue and spool are read at scrape time; writes and spills are counted as they happen. */
  private wireAudit(): void {
    const metrics = this.metrics.audit;
    metrics.readQueue(() => {
      const { queueDepth, queueCapacity } = this.audit.stats();
      return { depth: queueDepth, capacity: queueCapacity };
    });
    metrics.readSpool(() => {
      const { spoolRecords, spoolBytes, spoolFull, spoolSetAside } = this.audit.stats();
      return { records: spoolRecords, bytes: spoolBytes, full: spoolFull, setAside: spoolSetAside };
    });
    this.stops.push(
      this.audit.onWrite(({ records, durationMs, ok, source }) => {
        metrics.flushed(durationMs / 1000, records, ok ? 'ok' : 'failed');
        if (ok && source === 'spool') metrics.replayed(records);
      }),
    );
    this.stops.push(
      this.audit.onSpool(({ records, overflow }) => {
        metrics.spooled(records);
        if (overflow) metrics.backpressure();
      }),
    );
  }

  onModuleDestroy(): void {
    for (const stop of this.stops.splice(0)) stop();
  }

  private onProbe({ slug, result }: ProbeReport): void {
    const server = this.exchanges.serverLabel(slug);
    this.metrics.upstreamProbes.inc({ server, result: result.ok ? 'ok' : result.kind });
    if (result.ok) this.metrics.upstreamProbeDuration.observe({ server }, result.latencyMs / 1000);
  }
}
