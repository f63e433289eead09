import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { PrismaService } from '../src/database/prisma.service';
import { GatewayMetrics } from '../src/metrics/gateway-metrics';
import { RateLimitStats } from '../src/ratelimit/rate-limit-stats';
import { AuditTrail } from '../src/audit/audit-trail';
import { McpTraffic } from '../src/traffic/mcp-traffic';
import type { McpExchange } from '../src/traffic/mcp-exchange';
import { startTestGateway, type TestGateway } from './support/gateway';
import { eventually } from './support/eventually';
import { type MetricFamily, parsePrometheusText, samplesOf, sumOf, valueOf } from './support/prometheus-text';
import { deleteServers, insertServer, type ServerRow } from './support/server-rows';
import { POSTGRES_URL } from './support/services';
import { StallableProxy } from './support/stallable-proxy';
import { hostPortOf, withHostPort } from './support/tcp-proxy';
import { GREET_TOOLS, TestUpstream } from './support/upstream';

const PREFIX = 'mtr';
const TOOL_CAP = 5;

/** text/plain, format version 0.0.4, UTF-8 (Express puts the charset first; the order does not matter). */
function expectPrometheusText(contentType: string | undefined): void {
  const [type, ...params] = (contentType ?? '').split(';').map((part) => part.trim());
  expect(type).toBe('text/plain');
  expect(params.sort()).toEqual(['charset=utf-8', 'version=0.0.4']);
}

async function scrape(gw: TestGateway): Promise<Map<string, MetricFamily>> {
  const res = await request(gw.url).get('/metrics').expect(200);
  expectPrometheusText(res.headers['content-type']);
  return parsePrometheusText(res.text);
}

function exchange(overrides: Partial<McpExchange>): McpExchange {
  return {
    at: new Date(),
    requestId: randomUUID(),
    surface: 'aggregate',
    method: 'tools/call',
    decision: 'allowed',
    outcome: 'ok',
    latencyMs: 12,
    ...overrides,
  };
}

describe('GET /metrics (services)', () => {
  let gw: TestGateway;
  let prisma: PrismaService;
  const rows: ServerRow[] = [];

  beforeAll(async () => {
    gw = await startTestGateway('services', {
      UPSTREAM_ALLOWED_HOSTS: 'loopback',
      AUTH_MODE: 'dev',
      METRICS_TOOL_LABELS_PER_SERVER: String(TOOL_CAP),
    });
    prisma = gw.gateway.app.get(PrismaService);
  });

  afterAll(async () => {
    if (prisma) await deleteServers(prisma, rows);
    await gw?.close();
  });

  it('answers the Prometheus text format, with process metrics and every family described', async () => {
    const res = await request(gw.url).get('/metrics').expect(200);
    expect(res.headers['cache-control']).toBe('no-store');
    const families = parsePrometheusText(res.text);
    expect(families.get('process_cpu_user_seconds_total')?.type).toBe('counter');
    expect(families.get('nodejs_heap_size_used_bytes')?.type).toBe('gauge');
    for (const name of [
      'mcp_gateway_http_request_duration_seconds',
      'mcp_gateway_mcp_requests_total',
      'mcp_gateway_mcp_added_latency_seconds',
      'mcp_gateway_upstream_health_status',
      'mcp_gateway_sessions_open',
      'mcp_gateway_upstream_pool_sessions',
      'mcp_gateway_token_validations_total',
      'mcp_gateway_jwks_fetches_total',
      'mcp_gateway_ratelimit_decisions_total',
      'mcp_gateway_ratelimit_redis_up',
      'mcp_gateway_audit_queue_depth',
      'mcp_gateway_audit_flush_duration_seconds',
      'mcp_gateway_audit_spool_bytes',
    ]) {
      expect(families.get(name)?.help).toEqual(expect.any(String));
    }
    expect(valueOf(families, 'mcp_gateway_sessions_open')).toBe(0);
    expect(valueOf(families, 'mcp_gateway_ratelimit_redis_up')).toBe(1);
  });

  it('keeps one registry per gateway: a second gateway in this process counts on its own', async () => {
    const other = await startTestGateway('services');
    try {
      expect(other.gateway.app.get(GatewayMetrics).registry).not.toBe(gw.gateway.app.get(GatewayMetrics).registry);
      await request(other.url).get('/health/live').expect(200);
      await request(other.url).get('/health/live').expect(200);
      const mine = await scrape(gw);
      const theirs = await scrape(other);
      const live = { method: 'GET', route: '/health/live', status: '200' };
      expect(valueOf(theirs, 'mcp_gateway_http_requests_total', live)).toBe(2);
      expect(valueOf(mine, 'mcp_gateway_http_requests_total', live) ?? 0).toBe(0);
    } finally {
      await other.close();
    }
  });

  it('counts HTTP requests by route pattern and status, never by raw path', async () => {
    const marker = randomUUID();
    const route = { method: 'GET', route: '/api/v1/servers/:ref', status: '404' };
    const before = valueOf(await scrape(gw), 'mcp_gateway_http_requests_total', route) ?? 0;
    await request(gw.url).get(`/api/v1/servers/${marker}`).expect(404);
    const second = randomUUID();
    await request(gw.url).get(`/api/v1/servers/${second}`).expect(404);
    const res = await request(gw.url).get('/metrics').expect(200);
    const families = parsePrometheusText(res.text);
    expect(valueOf(families, 'mcp_gateway_http_requests_total', route)).toBe(before + 2);
    expect(valueOf(families, 'mcp_gateway_http_request_duration_seconds_count', route)).toBe(before + 2);
    expect(res.text).not.toContain(marker);
  });

  it('gives hostile and unknown paths no series of their own', async () => {
    const marker = `x${randomUUID().replace(/-/g, '')}`;
    const familiesBefore = await scrape(gw);
    const seriesBefore = samplesOf(familiesBefore, 'mcp_gateway_http_requests_total').length;
    const unmatched = { method: 'GET', route: 'unmatched', status: '404' };
    const unmatchedBefore = valueOf(familiesBefore, 'mcp_gateway_http_requests_total', unmatched) ?? 0;
    const paths = [
      `/${marker}`,
      `/${marker}/${'a'.repeat(4000)}`,
      `/${marker}/%00%0a%22%7B`,
      `/${marker}/..%2F..%2Fetc%2Fpasswd`,
      `/metrics/${marker}`,
      `/metrics${marker}`,
      `/api/v1/${marker}?q=${marker}`,
    ];
    for (const path of paths) await request(gw.url).get(path).expect(404);
    // An MCP path refused before routing (no token) counts under the prefix, not under its path.
    await request(gw.url).post(`/mcp/${marker}`).send({}).expect(401);
    // Methods Node accepts but no route serves collapse too.
    await request(gw.url)
      .options(`/${marker}`)
      .expect((res) => expect(res.status).toBeGreaterThanOrEqual(200));

    const res = await request(gw.url).get(`/metrics?${marker}=${marker}`).expect(200);
    expect(res.text).not.toContain(marker);
    const families = parsePrometheusText(res.text);
    expect(valueOf(families, 'mcp_gateway_http_requests_total', unmatched)).toBe(unmatchedBefore + paths.length);
    expect(
      valueOf(families, 'mcp_gateway_http_requests_total', { method: 'POST', route: '/mcp/*', status: '401' }),
    ).toBeGreaterThanOrEqual(1);
    // At most the three label sets above (unmatched 404 existed or not, /mcp/* 401, OPTIONS) are new.
    expect(samplesOf(families, 'mcp_gateway_http_requests_total').length).toBeLessThanOrEqual(seriesBefore + 4);
  });

  it('answers only GET and HEAD, ignoring what a client sends with them', async () => {
    const post = await request(gw.url).post('/metrics').send({ a: 1 }).expect(405);
    expect(post.headers.allow).toBe('GET, HEAD, OPTIONS');
    await request(gw.url).delete('/metrics').expect(405);
    await request(gw.url).head('/metrics').expect(200);
    const res = await request(gw.url)
      .get('/metrics?name[]=x&%zz=1')
      .set('accept', 'application/openmetrics-text; version=1.0.0')
      .set('content-type', 'application/json')
      .expect(200);
    expectPrometheusText(res.headers['content-type']);
    parsePrometheusText(res.text);
  });

  it('counts MCP exchanges at the seam, with gateway-added and upstream time apart', async () => {
    const traffic = gw.gateway.app.get(McpTraffic);
    const slug = `${PREFIX}-${randomUUID().slice(0, 8)}`;
    const server = { id: randomUUID(), slug };
    traffic.record(exchange({ server, target: 'echoHai', latencyMs: 30, upstreamMs: 25, upstreamStatus: 200 }));
    traffic.record(exchange({ server, target: 'echoHai', outcome: 'tool_error', latencyMs: 8, upstreamMs: 7.5 }));
    traffic.record(exchange({ server, method: 'tools/list', surface: 'server', latencyMs: 0.4 }));
    traffic.record(exchange({ server, target: 'echoHai', decision: 'denied', outcome: 'refused', latencyMs: 0.2 }));

    const families = await scrape(gw);
    const call = { surface: 'aggregate', method: 'tools/call', server: slug, tool: 'echoHai' };
    expect(valueOf(families, 'mcp_gateway_mcp_requests_total', { ...call, decision: 'allowed', outcome: 'ok' })).toBe(
      1,
    );
    expect(
      valueOf(families, 'mcp_gateway_mcp_requests_total', { ...call, decision: 'allowed', outcome: 'tool_error' }),
    ).toBe(1);
    expect(
      valueOf(families, 'mcp_gateway_mcp_requests_total', { ...call, decision: 'denied', outcome: 'refused' }),
    ).toBe(1);
    const histogram = { surface: 'aggregate', method: 'tools/call', server: slug };
    expect(valueOf(families, 'mcp_gateway_mcp_request_duration_seconds_count', histogram)).toBe(3);
    expect(valueOf(families, 'mcp_gateway_mcp_request_duration_seconds_sum', histogram)).toBeCloseTo(0.0382, 6);
    expect(valueOf(families, 'mcp_gateway_mcp_upstream_duration_seconds_count', histogram)).toBe(2);
    expect(valueOf(families, 'mcp_gateway_mcp_upstream_duration_seconds_sum', histogram)).toBeCloseTo(0.0325, 6);
    // Gateway-added: 5 ms + 0.5 ms + the whole 0.2 ms of the refusal (no upstream asked).
    expect(valueOf(families, 'mcp_gateway_mcp_added_latency_seconds_sum', histogram)).toBeCloseTo(0.0057, 6);
    expect(valueOf(families, 'mcp_gateway_mcp_added_latency_seconds_bucket', { ...histogram, le: '0.001' })).toBe(2);
    expect(
      valueOf(families, 'mcp_gateway_mcp_requests_total', {
        surface: 'server',
        method: 'tools/list',
        server: slug,
        tool: '',
        decision: 'allowed',
        outcome: 'ok',
      }),
    ).toBe(1);
  });

  it('caps tool labels per server and never gives made-up names or methods a series', async () => {
    const traffic = gw.gateway.app.get(McpTraffic);
    const slug = `${PREFIX}-${randomUUID().slice(0, 8)}`;
    const server = { id: randomUUID(), slug };
    const marker = randomUUID().replace(/-/g, '');
    // A client calling tools that do not exist or it may not call: no slot is taken.
    for (let i = 0; i < 50; i++) {
      traffic.record(exchange({ server, target: `bogus_${marker}_${i}`, outcome: 'rpc_error', upstreamMs: 1 }));
      traffic.record(exchange({ server, target: `denied_${marker}_${i}`, decision: 'denied', outcome: 'refused' }));
      traffic.record(exchange({ server, method: `evil/${marker}/${i}`, outcome: 'rpc_error' }));
      // An SDK upstream answers an unknown tool with an isError result: that does not take a slot either.
      traffic.record(exchange({ server, target: `err_${marker}_${i}`, outcome: 'tool_error', upstreamMs: 1 }));
    }
    // Then 200 real tools answer: the first TOOL_CAP keep their names, the rest are `other`.
    for (let i = 0; i < 200; i++) traffic.record(exchange({ server, target: `tool_${i}`, upstreamMs: 1 }));
    traffic.record(exchange({ server, target: 'tool_0', upstreamMs: 1 }));

    const res = await request(gw.url).get('/metrics').expect(200);
    expect(res.text).not.toContain(marker);
    const families = parsePrometheusText(res.text);
    const calls = samplesOf(families, 'mcp_gateway_mcp_requests_total', { server: slug, method: 'tools/call' });
    const tools = new Set(calls.map((sample) => sample.labels.tool));
    expect(tools).toEqual(new Set([...Array.from({ length: TOOL_CAP }, (_, i) => `tool_${i}`), 'other']));
    const ok = { surface: 'aggregate', method: 'tools/call', server: slug, decision: 'allowed', outcome: 'ok' };
    expect(valueOf(families, 'mcp_gateway_mcp_requests_total', { ...ok, tool: 'tool_0' })).toBe(2);
    expect(valueOf(families, 'mcp_gateway_mcp_requests_total', { ...ok, tool: 'other' })).toBe(200 - TOOL_CAP);
    expect(sumOf(families, 'mcp_gateway_mcp_requests_total', { server: slug, method: 'other' })).toBe(50);
    expect(sumOf(families, 'mcp_gateway_mcp_requests_total', { server: slug, outcome: 'rpc_error' })).toBe(100);
  });

  it('shows upstream health and probe latency as probes happen, and drops a deleted server', async () => {
    const upstream = await TestUpstream.start('greet', GREET_TOOLS);
    try {
      const row = await insertServer(prisma, PREFIX, { url: upstream.url });
      rows.push(row);
      const probed = await request(gw.url).post(`/api/v1/health/servers/${row.id}/probe`).expect(200);
      const status = (probed.body as { status: string }).status;
      let families = await scrape(gw);
      // The same status the API reports (healthy, or degraded when a starved machine made the probe slow).
      expect(valueOf(families, 'mcp_gateway_upstream_health_status', { server: row.slug, status })).toBe(1);
      expect(sumOf(families, 'mcp_gateway_upstream_health_status', { server: row.slug })).toBe(1);
      expect(samplesOf(families, 'mcp_gateway_upstream_health_status', { server: row.slug })).toHaveLength(4);
      const ok = valueOf(families, 'mcp_gateway_upstream_probes_total', { server: row.slug, result: 'ok' }) ?? 0;
      expect(sumOf(families, 'mcp_gateway_upstream_probes_total', { server: row.slug })).toBe(1);
      expect(valueOf(families, 'mcp_gateway_upstream_probe_duration_seconds_count', { server: row.slug }) ?? 0).toBe(
        ok,
      );

      await upstream.stop();
      await request(gw.url).post(`/api/v1/health/servers/${row.id}/probe`).expect(200);
      families = await scrape(gw);
      expect(
        valueOf(families, 'mcp_gateway_upstream_probes_total', { server: row.slug, result: 'connection_refused' }),
      ).toBe(1);
      expect(sumOf(families, 'mcp_gateway_upstream_probes_total', { server: row.slug })).toBe(2);

      await request(gw.url).delete(`/api/v1/servers/${row.id}`).expect(204);
      await eventually(async () => {
        const after = await scrape(gw);
        expect(samplesOf(after, 'mcp_gateway_upstream_health_status', { server: row.slug })).toHaveLength(0);
      });
    } finally {
      await upstream.stop();
    }
  });

  it('reports what the rate limiter tells it', async () => {
    const stats = gw.gateway.app.get(RateLimitStats);
    stats.decided({ policy: 'per-principal', outcome: 'allowed', source: 'redis' });
    stats.decided({ policy: 'per-principal', outcome: 'refused', source: 'redis' });
    stats.redisStateChanged('down');
    stats.decided({ policy: 'per-principal', outcome: 'allowed', source: 'insurance' });

    const families = await scrape(gw);
    expect(
      valueOf(families, 'mcp_gateway_ratelimit_decisions_total', {
        policy: 'per-principal',
        outcome: 'refused',
        source: 'redis',
      }),
    ).toBe(1);
    expect(
      valueOf(families, 'mcp_gateway_ratelimit_decisions_total', {
        policy: 'per-principal',
        outcome: 'allowed',
        source: 'insurance',
      }),
    ).toBe(1);
    expect(valueOf(families, 'mcp_gateway_ratelimit_redis_fallbacks_total')).toBe(1);
    expect(valueOf(families, 'mcp_gateway_ratelimit_redis_up')).toBe(0);
    stats.redisStateChanged('up');
    expect(valueOf(await scrape(gw), 'mcp_gateway_ratelimit_redis_up')).toBe(1);
  });

  it.each([
    ['without REDIS_URL (in-process stores)', { REDIS_URL: '' }],
    ['with rate limits off (RATE_LIMIT_ENABLED=false)', { RATE_LIMIT_ENABLED: 'false' }],
  ])('has no ratelimit_redis_up %s, where no Redis counts rate limits', async (_what, env) => {
    const other = await startTestGateway('services', env);
    try {
      const families = await scrape(other);
      expect(families.get('mcp_gateway_ratelimit_decisions_total')?.help).toEqual(expect.any(String));
      expect(families.has('mcp_gateway_ratelimit_redis_up')).toBe(false);
    } finally {
      await other.close();
    }
  });

  it('reports the audit trail’s queue and writes', async () => {
    const before = await scrape(gw);
    const written = (families: Map<string, MetricFamily>): number =>
      valueOf(families, 'mcp_gateway_audit_records_written_total', { destination: 'database' }) ?? 0;
    const traffic = gw.gateway.app.get(McpTraffic);
    for (let n = 0; n < 5; n++) {
      traffic.record({
        at: new Date(),
        requestId: `metrics-audit-${n}`,
        surface: 'server',
        method: 'tools/list',
        decision: 'unauthenticated',
        rule: 'no access token',
        outcome: 'refused',
        latencyMs: 1,
      });
    }
    await eventually(async () => {
      const families = await scrape(gw);
      expect(written(families) - written(before)).toBeGreaterThanOrEqual(5);
      expect(valueOf(families, 'mcp_gateway_audit_flush_duration_seconds_count', { result: 'ok' })).toBeGreaterThan(
        valueOf(before, 'mcp_gateway_audit_flush_duration_seconds_count', { result: 'ok' }) ?? 0,
      );
    });
    const families = await scrape(gw);
    expect(valueOf(families, 'mcp_gateway_audit_queue_capacity')).toBe(
      gw.gateway.app.get(AuditTrail).stats().queueCapacity,
    );
    expect(valueOf(families, 'mcp_gateway_audit_spool_records')).toBe(0);
  });

  it('is in the OpenAPI document', async () => {
    const res = await request(gw.url).get('/docs-json').expect(200);
    const paths = res.body.paths as Record<string, Record<string, { responses: Record<string, unknown> }>>;
    expect(paths['/metrics']?.get?.responses['200']).toBeDefined();
  });
});

describe('GET /metrics while PostgreSQL does not answer', () => {
  const relay = new StallableProxy(hostPortOf(POSTGRES_URL).host, hostPortOf(POSTGRES_URL).port);
  let gw: TestGateway;
  let prisma: PrismaService;
  const rows: ServerRow[] = [];

  beforeAll(async () => {
    await relay.start();
    gw = await startTestGateway('services', {
      DATABASE_URL: withHostPort(POSTGRES_URL, relay.port),
      UPSTREAM_ALLOWED_HOSTS: 'loopback',
    });
    prisma = gw.gateway.app.get(PrismaService);
  });

  afterAll(async () => {
    relay.resume();
    if (prisma) await deleteServers(prisma, rows);
    await gw?.close();
    await relay.stop();
  });

  it('still answers, within a scrape timeout, keeping the upstream health it read last', async () => {
    const upstream = await TestUpstream.start('greet', GREET_TOOLS);
    try {
      const row = await insertServer(prisma, PREFIX, { url: upstream.url });
      rows.push(row);
      await request(gw.url).post(`/api/v1/health/servers/${row.id}/probe`).expect(200);
      const before = await scrape(gw);
      expect(sumOf(before, 'mcp_gateway_upstream_health_status', { server: row.slug })).toBe(1);

      // Connections stay open and take the queries; no answer comes back.
      relay.stall();
      // Prometheus gives up on a scrape after 10 s by default; the stored health is read at scrape time.
      for (let i = 0; i < 2; i++) {
        const res = await request(gw.url).get('/metrics').timeout(10_000).expect(200);
        const families = parsePrometheusText(res.text);
        expect(sumOf(families, 'mcp_gateway_upstream_health_status', { server: row.slug })).toBe(1);
        expect(valueOf(families, 'mcp_gateway_audit_spool_full')).toBe(0);
      }
    } finally {
      relay.resume();
      await upstream.stop();
    }
  });
});
