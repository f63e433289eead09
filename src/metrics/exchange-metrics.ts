import type { ExchangeDecision, ExchangeOutcome, McpExchange } from '../traffic/mcp-exchange';
import { BoundedLabels, OTHER_LABEL } from './bounded-labels';
import type { GatewayMetrics } from './gateway-metrics';
import { type CounterCell, CellsByThreeKeys, type HistogramCell } from './hot-metrics';

/**
 * JSON-RPC methods that get a label of their own; any other method a client
 * sends is counted as `other` (clients choose the method: it must not choose
 * the series). `http` is a refusal before any message was read.
 */
const KNOWN_METHODS: ReadonlySet<string> = new Set([
  'http',
  'initialize',
  'ping',
  'tools/list',
  'tools/call',
  'prompts/list',
  'prompts/get',
  'resources/list',
  'resources/templates/list',
  'resources/read',
  'resources/subscribe',
  'resources/unsubscribe',
  'completion/complete',
  'logging/setLevel',
  'tasks/get',
  'tasks/list',
  'tasks/result',
  'tasks/cancel',
  'notifications/initialized',
  'notifications/cancelled',
  'notifications/progress',
  'notifications/roots/list_changed',
]);

export interface ExchangeMetricsLimits {
  /** Distinct tool labels per server; later tools are `other`. */
  toolsPerServer: number;
  /** Distinct server labels; later servers are `other`. */
  servers: number;
}

/** Slots of the per-tool counter array; a Record so a new decision or outcome fails to compile until added. */
const DECISION_INDEX: Record<ExchangeDecision, number> = {
  allowed: 0,
  denied: 1,
  rate_limited: 2,
  unauthenticated: 3,
};
const OUTCOME_INDEX: Record<ExchangeOutcome, number> = {
  ok: 0,
  tool_error: 1,
  rpc_error: 2,
  upstream_error: 3,
  timeout: 4,
  refused: 5,
  cancelled: 6,
  resumable: 7,
};
const OUTCOME_COUNT = Object.keys(OUTCOME_INDEX).length;

/** The cells of one (surface, method, server): found with three map lookups instead of a key built per exchange. */
interface RouteCells {
  duration: HistogramCell;
  /** Created when a request of this route first asks its upstream. */
  upstream?: HistogramCell;
  labels: readonly string[];
  added: HistogramCell;
  /** Per tool label: one counter per decision × outcome, created on first use. */
  requests: Map<string, (CounterCell | undefined)[]>;
}

/**
 * Counts each MCP exchange: one counter and two or three histogram
 * observations, labels from bounded sets only (no principal, no raw target
 * except admitted tool names).
 */
export class ExchangeMetrics {
  private readonly tools: BoundedLabels;
  private readonly servers: BoundedLabels;
  /** By (surface, method, server). */
  private readonly routes: CellsByThreeKeys<string, string, string, RouteCells>;

  constructor(
    private readonly metrics: GatewayMetrics,
    limits: ExchangeMetricsLimits,
  ) {
    this.tools = new BoundedLabels(limits.toolsPerServer);
    this.servers = new BoundedLabels(limits.servers);
    this.routes = new CellsByThreeKeys((surface, method, server) => {
      const labels = [surface, method, server];
      return {
        duration: metrics.mcpDuration.cell(labels),
        labels,
        added: metrics.mcpOverhead.cell(labels),
        requests: new Map(),
      };
    });
  }

  /** The listener for `McpTraffic.onRecord`. */
  readonly record = (exchange: McpExchange): void => {
    const { surface, decision, outcome } = exchange;
    const method = KNOWN_METHODS.has(exchange.method) ? exchange.method : OTHER_LABEL;
    const server = exchange.server ? this.servers.label('', exchange.server.slug, true) : '';
    // A tool name earns a series only once a call to it has succeeded: names a client makes up never do (an SDK
    // server answers an unknown tool with an `isError` result, so `tool_error` proves nothing).
    const tool =
      method === 'tools/call' && exchange.target !== undefined && server !== ''
        ? this.tools.label(server, exchange.target, outcome === 'ok')
        : '';
    const route = this.routes.get(surface, method, server);

    let counters = route.requests.get(tool);
    if (!counters) {
      counters = [];
      route.requests.set(tool, counters);
    }
    const slot = DECISION_INDEX[decision] * OUTCOME_COUNT + OUTCOME_INDEX[outcome];
    let counter = counters[slot];
    if (!counter) {
      counter = this.metrics.mcpRequests.cell([surface, method, server, tool, decision, outcome]);
      counters[slot] = counter;
    }
    counter.value++;

    const latencyMs = exchange.latencyMs;
    route.duration.observe(latencyMs / 1000);
    const upstreamMs = exchange.upstreamMs;
    if (upstreamMs === undefined) {
      route.added.observe(latencyMs / 1000);
    } else {
      route.upstream ??= this.metrics.mcpUpstreamDuration.cell(route.labels);
      route.upstream.observe(upstreamMs / 1000);
      route.added.observe(Math.max(0, latencyMs - upstreamMs) / 1000);
    }
  };

  /** The `server` label of a slug (the slug, or `other` beyond the cap). */
  serverLabel(slug: string): string {
    return this.servers.label('', slug, true);
  }
}
