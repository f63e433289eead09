import cluster from 'node:cluster';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { clusterScrape } from '../cluster/cluster-metrics';
import { HEALTH_STATUSES } from '../upstream-health/health-state';
import { AuditMetrics } from './audit-metrics';
import { HotCounter, HotHistogram } from './hot-metrics';
import { RateLimitMetrics } from './rate-limit-metrics';

/** Every series name starts with it. */
export const METRIC_PREFIX = 'mcp_gateway_';

/** Whole requests, HTTP or MCP: from a millisecond to a minute (the default upstream timeout). */
export const REQUEST_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** What the gateway adds: it aims below a millisecond, so the buckets are fine there. */
export const OVERHEAD_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

/**
 * Longest wait for the stored upstream health at scrape time. A stalled database (a connection that takes the
 * query and never answers) must not hold the scrape past Prometheus' timeout (10 s by default), nor a worker's
 * report past the primary's 5 s under `--workers`: every other metric would be lost with it, the audit spool's
 * among them, when they matter most. The readiness checks wait as long.
 */
const HEALTH_READ_TIMEOUT_MS = 2_000;

type UpstreamHealthRows = { server: string; status: string }[];

/** Numbers the gateway holds elsewhere and the registry reads at scrape time (no cost per request). */
export interface ScrapeSources {
  sessionsOpen?: () => number;
  upstreamPoolSessions?: () => number;
  upstreamCircuitsOpen?: () => number;
  tokenValidations?: () => TokenValidationCounts;
  jwksFetches?: () => { ok: number; failed: number };
  /** Each probed upstream's label and stored health status (the prober of any replica may have made it). */
  upstreamHealth?: () => Promise<UpstreamHealthRows>;
}

/** Running totals of the token verifier, by result. */
export interface TokenValidationCounts {
  verified: number;
  cached: number;
  invalidToken: number;
  invalidRequest: number;
  unavailable: number;
}

export interface GatewayMetricsOptions {
  /** Whether the rate limiter counts in Redis (REDIS_URL set and rate limits on): `ratelimit_redis_up` only then. */
  rateLimitsInRedis: boolean;
}

/**
 * The Prometheus registry of one gateway (one Nest app) and every metric in
 * it. A registry per app, not prom-client's global one: tests run several
 * gateways in one process, and each must show its own numbers.
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  readonly rateLimits: RateLimitMetrics;
  readonly audit: AuditMetrics;
  private sources: ScrapeSources = {};
  /** The read of the stored upstream health under way: scrapes during a stalled database share it, never queue more. */
  private upstreamHealthRead?: Promise<UpstreamHealthRows>;
  /** In a worker of `serve --workers N`: asks the primary for every worker's metrics (src/cluster/cluster-metrics.ts). */
  private readonly clusterScrape = cluster.isWorker ? clusterScrape(this.registry) : undefined;

  /** Labels `method`, `route`, `status`. */
  readonly httpRequests: HotCounter;
  readonly httpDuration: HotHistogram;

  /** Labels `surface`, `method`, `server`, `tool`, `decision`, `outcome`. */
  readonly mcpRequests: HotCounter;
  /** Labels `surface`, `method`, `server`. */
  readonly mcpDuration: HotHistogram;
  readonly mcpUpstreamDuration: HotHistogram;
  readonly mcpOverhead: HotHistogram;

  readonly upstreamHealth: Gauge<'server' | 'status'>;
  readonly upstreamProbes: Counter<'server' | 'result'>;
  readonly upstreamProbeDuration: Histogram<'server'>;

  constructor(options: GatewayMetricsOptions) {
    const registers = [this.registry];
    // Unprefixed (`process_*`, `nodejs_*`), as the usual dashboards expect them.
    collectDefaultMetrics({ register: this.registry });
    // Kept together so a reader of one sees what the others will be.
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;

    const http = ['method', 'route', 'status'];
    this.httpRequests = new HotCounter(
      `${METRIC_PREFIX}http_requests_total`,
      'HTTP requests answered, by method, route pattern (never the raw path) and status',
      http,
      this.registry,
    );
    this.httpDuration = new HotHistogram(
      `${METRIC_PREFIX}http_request_duration_seconds`,
      'Time from the request to the end of its response (for event streams: until the stream ends)',
      http,
      REQUEST_BUCKETS,
      this.registry,
    );

    this.mcpRequests = new HotCounter(
      `${METRIC_PREFIX}mcp_requests_total`,
      'MCP requests by door (aggregate, server, rest), JSON-RPC method, server slug, tool (capped per server, ' +
        'then "other"), decision and outcome',
      ['surface', 'method', 'server', 'tool', 'decision', 'outcome'],
      this.registry,
    );
    const mcp = ['surface', 'method', 'server'];
    this.mcpDuration = new HotHistogram(
      `${METRIC_PREFIX}mcp_request_duration_seconds`,
      'Time from the arrival of an MCP request to its answer',
      mcp,
      REQUEST_BUCKETS,
      this.registry,
    );
    this.mcpUpstreamDuration = new HotHistogram(
      `${METRIC_PREFIX}mcp_upstream_duration_seconds`,
      'Time an MCP request spent waiting for its upstream (only requests that asked one)',
      mcp,
      REQUEST_BUCKETS,
      this.registry,
    );
    this.mcpOverhead = new HotHistogram(
      `${METRIC_PREFIX}mcp_added_latency_seconds`,
      'Time the gateway itself added to an MCP request: its whole duration minus the upstream time',
      mcp,
      OVERHEAD_BUCKETS,
      this.registry,
    );

    this.upstreamHealth = new Gauge({
      name: `${METRIC_PREFIX}upstream_health_status`,
      help: 'Health of each probed upstream: 1 for its current status, 0 for the others',
      labelNames: ['server', 'status'],
      registers,
      // Every process reads the same rows: under `--workers`, one worker's figures, not their sum.
      aggregator: 'max',
      async collect() {
        const read = self.sources.upstreamHealth;
        if (!read) return;
        const rows = await self.readUpstreamHealth(read);
        // The database is away or does not answer in time: the figures last read stay.
        if (!rows) return;
        this.reset();
        for (const { server, status } of rows) {
          for (const each of HEALTH_STATUSES) this.set({ server, status: each }, each === status ? 1 : 0);
        }
      },
    });
    this.upstreamProbes = new Counter({
      name: `${METRIC_PREFIX}upstream_probes_total`,
      help: 'Health probes by server and result (ok, or the classified failure)',
      labelNames: ['server', 'result'],
      registers,
    });
    this.upstreamProbeDuration = new Histogram({
      name: `${METRIC_PREFIX}upstream_probe_duration_seconds`,
      help: 'Time of successful health probes (connect, initialize, ping)',
      labelNames: ['server'],
      buckets: REQUEST_BUCKETS,
      registers,
    });

    new Gauge({
      name: `${METRIC_PREFIX}sessions_open`,
      help:
        'MCP sessions this replica created or served within MCP_SESSION_IDLE_MS and not deleted (a session ' +
        'continued on several replicas counts on each)',
      registers,
      collect() {
        this.set(self.sources.sessionsOpen?.() ?? 0);
      },
    });
    new Gauge({
      name: `${METRIC_PREFIX}upstream_pool_sessions`,
      help: 'Upstream sessions the aggregate endpoint keeps open (one per server, or per caller for on-behalf-of)',
      registers,
      collect() {
        this.set(self.sources.upstreamPoolSessions?.() ?? 0);
      },
    });
    new Gauge({
      name: `${METRIC_PREFIX}upstream_circuits_open`,
      help: 'Upstreams whose circuit breaker is open (calls fail fast)',
      registers,
      collect() {
        this.set(self.sources.upstreamCircuitsOpen?.() ?? 0);
      },
    });
    new Counter({
      name: `${METRIC_PREFIX}token_validations_total`,
      help:
        'Bearer tokens checked on the MCP endpoints: verified (signature checked), cached (verified before), ' +
        'invalid_token, invalid_request, unavailable (keys or configuration missing)',
      labelNames: ['result'],
      registers,
      collect() {
        const counts = self.sources.tokenValidations?.();
        this.reset();
        if (!counts) return;
        this.inc({ result: 'verified' }, counts.verified);
        this.inc({ result: 'cached' }, counts.cached);
        this.inc({ result: 'invalid_token' }, counts.invalidToken);
        this.inc({ result: 'invalid_request' }, counts.invalidRequest);
        this.inc({ result: 'unavailable' }, counts.unavailable);
      },
    });
    new Counter({
      name: `${METRIC_PREFIX}jwks_fetches_total`,
      help: 'Fetches of signing keys (JWKS documents) by result',
      labelNames: ['result'],
      registers,
      collect() {
        const counts = self.sources.jwksFetches?.();
        this.reset();
        if (!counts) return;
        this.inc({ result: 'ok' }, counts.ok);
        this.inc({ result: 'failed' }, counts.failed);
      },
    });

    this.rateLimits = new RateLimitMetrics(this.registry, METRIC_PREFIX, options.rateLimitsInRedis);
    this.audit = new AuditMetrics(this.registry, METRIC_PREFIX);
  }

  /** Where the numbers read at scrape time come from; later calls add to or replace earlier ones. */
  readFrom(sources: ScrapeSources): void {
    this.sources = { ...this.sources, ...sources };
  }

  /** The stored upstream health, or undefined when the read fails or takes longer than HEALTH_READ_TIMEOUT_MS. */
  private async readUpstreamHealth(read: () => Promise<UpstreamHealthRows>): Promise<UpstreamHealthRows | undefined> {
    const pending = (this.upstreamHealthRead ??= read().finally(() => {
      this.upstreamHealthRead = undefined;
    }));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(resolve, HEALTH_READ_TIMEOUT_MS, undefined);
    });
    try {
      return await Promise.race([pending.catch(() => undefined), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The text exposition and its content type: under `serve --workers N`, every worker's metrics, summed. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    const body = this.clusterScrape ? await this.clusterScrape() : await this.registry.metrics();
    return { contentType: this.registry.contentType, body };
  }
}
