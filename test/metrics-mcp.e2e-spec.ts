import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { MAX_TOKEN_LENGTH } from '../src/auth/token-verifier';
import type { LocalEntraIssuer } from './support/entra-issuer';
import { eventually } from './support/eventually';
import type { TestGateway } from './support/gateway';
import { type GuardedUpstream, startGuardedUpstream } from './support/guarded-upstream';
import { connectClient } from './support/mcp-client';
import { type MetricFamily, parsePrometheusText, samplesOf, sumOf, valueOf } from './support/prometheus-text';
import { type FixtureTool, GREET_TOOLS } from './support/upstream';

const TOOL_CAP = 3;
/** More tools than the cap: echoHai plus six more. */
const TOOLS: FixtureTool[] = [
  ...GREET_TOOLS,
  ...Array.from({ length: 6 }, (_, i) => ({
    name: `extra${i}`,
    description: `Extra tool ${i}`,
    reply: (user: string) => `extra ${i} for ${user}`,
  })),
  { name: 'forbidden', description: 'Denied by the server rules', reply: () => 'never' },
];

async function scrape(gw: TestGateway): Promise<Map<string, MetricFamily>> {
  const res = await request(gw.url).get('/metrics').expect(200);
  return parsePrometheusText(res.text);
}

/** `/metrics` through real MCP clients, a real upstream and real Entra-style tokens. */
describe('GET /metrics as MCP traffic flows (services)', () => {
  let deployment: GuardedUpstream | undefined;
  let issuer: LocalEntraIssuer;
  let gw: TestGateway;
  let slug: string;
  const role = `Metrics.${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    deployment = await startGuardedUpstream({
      slug: 'metrics',
      role,
      tools: TOOLS,
      registration: { toolRules: { deny: ['forbidden'] } },
      env: { METRICS_TOOL_LABELS_PER_SERVER: String(TOOL_CAP) },
    });
    ({ issuer, gw, slug } = deployment);
  });

  afterAll(async () => {
    await deployment?.stop();
  });

  it('counts token refusals, verifications, cache hits and JWKS fetches', async () => {
    const before = await scrape(gw);
    const refused = (name: string) => valueOf(before, 'mcp_gateway_token_validations_total', { result: name }) ?? 0;
    await request(gw.url).post('/mcp').set('authorization', 'Bearer not-a-jwt').send({}).expect(401);
    // Just over the verifier's limit (far larger ones are refused before it, and counted as MCP refusals below).
    await request(gw.url)
      .post('/mcp')
      .set('authorization', `Bearer ${'a'.repeat(MAX_TOKEN_LENGTH + 2)}`)
      .send({})
      .expect(400);
    await request(gw.url)
      .post('/mcp')
      .set('authorization', `Bearer ${'a'.repeat(13_000)}`)
      .send({})
      .expect(400);
    await request(gw.url).post('/mcp').send({}).expect(401);
    const token = await issuer.token({ roles: [role] });
    const { client } = await connectClient(`${gw.url}/mcp/${slug}`, token);
    await client.close();

    const after = await scrape(gw);
    const count = (name: string) => valueOf(after, 'mcp_gateway_token_validations_total', { result: name }) ?? 0;
    expect(count('invalid_token')).toBe(refused('invalid_token') + 1);
    expect(count('invalid_request')).toBe(refused('invalid_request') + 1);
    expect(count('verified')).toBe(refused('verified') + 1);
    // initialize, notifications/initialized: the same token, verified once.
    expect(count('cached')).toBeGreaterThan(refused('cached'));
    expect(valueOf(after, 'mcp_gateway_jwks_fetches_total', { result: 'ok' })).toBeGreaterThanOrEqual(1);
    expect(valueOf(after, 'mcp_gateway_jwks_fetches_total', { result: 'failed' })).toBe(0);
    expect(
      valueOf(after, 'mcp_gateway_http_requests_total', { method: 'POST', route: '/mcp/*', status: '401' }),
    ).toBeGreaterThanOrEqual(2);
    expect(
      valueOf(after, 'mcp_gateway_http_requests_total', { method: 'POST', route: '/mcp/*', status: '400' }),
    ).toBeGreaterThanOrEqual(2);
    expect(sumOf(after, 'mcp_gateway_mcp_requests_total', { decision: 'unauthenticated' })).toBeGreaterThanOrEqual(
      sumOf(before, 'mcp_gateway_mcp_requests_total', { decision: 'unauthenticated' }) + 4,
    );
  });

  it('moves MCP series through /mcp/{slug}: initialize, list, calls, a denial, sessions', async () => {
    const token = await issuer.token({ roles: [role] });
    const before = await scrape(gw);
    const { client, transport } = await connectClient(`${gw.url}/mcp/${slug}`, token);
    let families: Map<string, MetricFamily>;
    try {
      await client.listTools();
      await client.callTool({ name: 'echoHai', arguments: { userName: 'Ada' } });
      await client.callTool({ name: 'echoHai', arguments: { userName: 'Bob' } });
      await expect(client.callTool({ name: 'forbidden', arguments: {} })).rejects.toThrow();
      families = await scrape(gw);
      expect(valueOf(families, 'mcp_gateway_sessions_open')).toBe(
        (valueOf(before, 'mcp_gateway_sessions_open') ?? 0) + 1,
      );
    } finally {
      await transport.terminateSession();
      await client.close();
    }
    const server = { surface: 'server', server: slug };
    const delta = (labels: Record<string, string>) =>
      (valueOf(families, 'mcp_gateway_mcp_requests_total', labels) ?? 0) -
      (valueOf(before, 'mcp_gateway_mcp_requests_total', labels) ?? 0);
    const allowed = { ...server, decision: 'allowed', outcome: 'ok' };
    expect(delta({ ...allowed, method: 'initialize', tool: '' })).toBe(1);
    expect(delta({ ...allowed, method: 'tools/list', tool: '' })).toBe(1);
    expect(delta({ ...allowed, method: 'tools/call', tool: 'echoHai' })).toBe(2);
    // Never called successfully, so it has no label of its own.
    expect(delta({ ...server, method: 'tools/call', tool: 'other', decision: 'denied', outcome: 'refused' })).toBe(1);
    const histogram = { ...server, method: 'tools/call' };
    expect(valueOf(families, 'mcp_gateway_mcp_upstream_duration_seconds_count', histogram)).toBe(2);
    expect(valueOf(families, 'mcp_gateway_mcp_added_latency_seconds_count', histogram)).toBe(3);
    expect(valueOf(families, 'mcp_gateway_mcp_request_duration_seconds_count', histogram)).toBe(3);
    expect(valueOf(families, 'mcp_gateway_mcp_request_duration_seconds_sum', histogram)).toBeGreaterThanOrEqual(
      valueOf(families, 'mcp_gateway_mcp_upstream_duration_seconds_sum', histogram) ?? Infinity,
    );
    expect(
      valueOf(families, 'mcp_gateway_http_requests_total', { method: 'POST', route: '/mcp/:slug', status: '200' }),
    ).toBeGreaterThanOrEqual(4);
    // Each of the five requests spent budget in Redis.
    const decided = { outcome: 'allowed', source: 'redis' };
    expect(
      sumOf(families, 'mcp_gateway_ratelimit_decisions_total', decided) -
        sumOf(before, 'mcp_gateway_ratelimit_decisions_total', decided),
    ).toBeGreaterThanOrEqual(5);

    // The session ended: the gauge comes back down.
    await eventually(async () => {
      expect(valueOf(await scrape(gw), 'mcp_gateway_sessions_open')).toBe(
        valueOf(before, 'mcp_gateway_sessions_open') ?? 0,
      );
    });
  });

  it('counts REST bridge calls under their route pattern and the rest surface', async () => {
    const token = await issuer.token({ roles: [role] });
    const before = await scrape(gw);
    await request(gw.url)
      .post(`/mcp/${slug}/tools/echoHai`)
      .set('authorization', `Bearer ${token}`)
      .send({ userName: 'Ada' })
      .expect(200);
    await request(gw.url)
      .post(`/mcp/${slug}/tools/forbidden`)
      .set('authorization', `Bearer ${token}`)
      .send({})
      .expect((res) => expect(res.status).toBeGreaterThanOrEqual(400));
    const after = await scrape(gw);
    const delta = (name: string, labels: Record<string, string>) =>
      (valueOf(after, name, labels) ?? 0) - (valueOf(before, name, labels) ?? 0);
    const call = { surface: 'rest', method: 'tools/call', server: slug };
    expect(
      delta('mcp_gateway_mcp_requests_total', { ...call, tool: 'echoHai', decision: 'allowed', outcome: 'ok' }),
    ).toBe(1);
    expect(sumOf(after, 'mcp_gateway_mcp_requests_total', { ...call, decision: 'denied' })).toBe(
      sumOf(before, 'mcp_gateway_mcp_requests_total', { ...call, decision: 'denied' }) + 1,
    );
    expect(
      delta('mcp_gateway_http_requests_total', { method: 'POST', route: '/mcp/:slug/tools/:tool', status: '200' }),
    ).toBe(1);
    expect(delta('mcp_gateway_mcp_upstream_duration_seconds_count', call)).toBe(1);
  });

  it('caps tool labels through /mcp and keeps one pooled upstream session', async () => {
    const token = await issuer.token({ roles: [role] });
    const { client } = await connectClient(`${gw.url}/mcp`, token);
    try {
      await eventually(async () => {
        const { tools } = await client.listTools();
        expect(tools.map((tool) => tool.name)).toContain(`${slug}__extra5`);
      });
      for (let i = 0; i < 6; i++) await client.callTool({ name: `${slug}__extra${i}`, arguments: { userName: 'x' } });
      for (let i = 0; i < 20; i++) {
        await client.callTool({ name: `${slug}__made_up_${i}`, arguments: {} }).catch(() => undefined);
      }
      const families = await scrape(gw);
      const tools = new Set(
        samplesOf(families, 'mcp_gateway_mcp_requests_total', { server: slug, method: 'tools/call' }).map(
          (sample) => sample.labels.tool,
        ),
      );
      // echoHai (from the test before) and the first extras take the TOOL_CAP slots; everything else is `other`.
      expect(tools.size).toBe(TOOL_CAP + 1);
      expect(tools).toContain('other');
      expect(tools).toContain('echoHai');
      expect([...tools].some((tool) => tool?.includes('made_up'))).toBe(false);
      expect(
        sumOf(families, 'mcp_gateway_mcp_requests_total', {
          surface: 'aggregate',
          server: slug,
          method: 'tools/call',
          outcome: 'ok',
        }),
      ).toBe(6);
      expect(valueOf(families, 'mcp_gateway_upstream_pool_sessions')).toBe(1);
      expect(valueOf(families, 'mcp_gateway_upstream_circuits_open')).toBe(0);
    } finally {
      await client.close();
    }
  });
});
