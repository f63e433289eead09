/**
 * Per-record cost of the metrics listener on `McpTraffic.onRecord`: how much
 * the MCP hot path pays to be counted. Also the HTTP middleware's counting
 * and one scrape, for scale.
 *
 *   node -r ./bench/swc-register.cjs bench/metrics-record.ts [--records 200000]
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Request, Response } from 'express';
import { ExchangeMetrics } from '../src/metrics/exchange-metrics';
import { GatewayMetrics } from '../src/metrics/gateway-metrics';
import { httpMetricsMiddleware } from '../src/metrics/http-metrics';
import type { McpExchange } from '../src/traffic/mcp-exchange';

const RECORDS = Number(process.argv[process.argv.indexOf('--records') + 1]) || 200_000;

function exchanges(count: number): McpExchange[] {
  const servers = Array.from({ length: 20 }, (_, i) => ({ id: randomUUID(), slug: `server-${i}` }));
  const methods = ['tools/call', 'tools/call', 'tools/call', 'tools/list', 'resources/read', 'prompts/get'];
  const outcomes = ['ok', 'ok', 'ok', 'tool_error', 'upstream_error'] as const;
  return Array.from({ length: count }, (_, i) => {
    const method = methods[i % methods.length] ?? 'tools/call';
    const upstream = method !== 'tools/list';
    return {
      at: new Date(),
      requestId: `r${i}`,
      surface: i % 3 === 0 ? 'server' : 'aggregate',
      server: servers[i % servers.length],
      method,
      target: method === 'tools/call' ? `tool_${i % 30}` : undefined,
      decision: 'allowed',
      outcome: outcomes[i % outcomes.length] ?? 'ok',
      latencyMs: 3 + (i % 17),
      upstreamMs: upstream ? 2 + (i % 13) : undefined,
    };
  });
}

/** CPU time (user + system) per item: wall time would count the other processes sharing the cores. */
function nsPer(run: () => void, count: number): number {
  const start = process.cpuUsage();
  run();
  const used = process.cpuUsage(start);
  return ((used.user + used.system) * 1000) / count;
}

async function main(): Promise<void> {
  const metrics = new GatewayMetrics({ rateLimitsInRedis: true });
  const listener = new ExchangeMetrics(metrics, { toolsPerServer: 50, servers: 1000 });
  const batch = exchanges(RECORDS);
  // Warm up: the series exist and the JIT has seen the code before measuring.
  for (const exchange of batch.slice(0, 20_000)) listener.record(exchange);
  const rounds: number[] = [];
  for (let round = 0; round < 5; round++) {
    rounds.push(
      nsPer(() => {
        for (const exchange of batch) listener.record(exchange);
      }, batch.length),
    );
  }
  rounds.sort((a, b) => a - b);
  // The HTTP middleware, with stand-ins for Express's request and response (their creation is included).
  const middleware = httpMetricsMiddleware(metrics, '/mcp');
  const request = { method: 'POST', baseUrl: '/mcp', route: { path: '/:slug' }, originalUrl: '/mcp/server-1' };
  const next = (): void => undefined;
  const http = nsPer(() => {
    for (let i = 0; i < RECORDS; i++) {
      const response = Object.assign(new EventEmitter(), { statusCode: 200 });
      middleware(request as unknown as Request, response as unknown as Response, next);
      response.emit('close');
    }
  }, RECORDS);
  const scrapeStart = process.cpuUsage();
  const { body } = await metrics.scrape();
  const scrapeUsed = process.cpuUsage(scrapeStart);
  const scrapeMs = (scrapeUsed.user + scrapeUsed.system) / 1000;
  const lines = body.split('\n').filter((line) => line && !line.startsWith('#')).length;
  process.stdout.write(
    `${JSON.stringify(
      {
        node: process.version,
        records: RECORDS,
        listenerCpuNsPerRecord: { median: Math.round(rounds[2] ?? 0), best: Math.round(rounds[0] ?? 0) },
        httpMiddlewareCpuNsPerRequest: Math.round(http),
        scrape: { cpuMs: Math.round(scrapeMs * 10) / 10, samples: lines, bytes: body.length },
      },
      null,
      2,
    )}\n`,
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`${String(error instanceof Error ? error.stack : error)}\n`);
  process.exit(1);
});
