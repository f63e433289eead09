import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { ConformanceUpstream } from './support/conformance-upstream';
import {
  ACTIVE_SCENARIOS,
  BASELINE,
  parseSummary,
  runConformance,
  SCENARIO_PROMPTS,
  SCENARIO_RESOURCES,
  SCENARIO_TOOLS,
  SUITE_TIMEOUT_MS,
} from './support/conformance';
import { entraEnv, LocalEntraIssuer } from './support/entra-issuer';
import { startTestGateway, type TestGateway } from './support/gateway';
import { connectClient } from './support/mcp-client';
import { TokenProxy } from './support/token-proxy';

/**
 * The official conformance suite through `/mcp/{slug}`, fronting an upstream
 * that implements every fixture the suite calls. The suite sends no token, so
 * a proxy adds one; every request still passes the gateway's full guard.
 */
describe('conformance through /mcp/{slug}', () => {
  let issuer: LocalEntraIssuer;
  let upstream: ConformanceUpstream;
  let gw: TestGateway;
  let proxy: TokenProxy;
  let token: string;
  let serverId: string;
  const slug = `conf-${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    issuer = await LocalEntraIssuer.start();
    upstream = await ConformanceUpstream.start();
    gw = await startTestGateway('services', { ...entraEnv(issuer), UPSTREAM_ALLOWED_HOSTS: 'loopback' });
    const created = await request(gw.url)
      .post('/api/v1/servers')
      .send({ name: `com.example.conformance/${slug}`, slug, url: upstream.url })
      .expect(201);
    serverId = created.body.id as string;
    token = await issuer.token({ roles: ['Gateway.Admin'] });
    proxy = await TokenProxy.start(gw.url, token);
  });

  afterAll(async () => {
    await request(gw.url).delete(`/api/v1/servers/${serverId}`);
    await proxy.stop();
    await gw.close();
    await upstream.stop();
    await issuer.stop();
  });

  it('offers every fixture the suite calls, through the gateway (no false passes)', async () => {
    const { client } = await connectClient(`${gw.url}/mcp/${slug}`, token);
    try {
      const tools = (await client.listTools()).tools.map((tool) => tool.name);
      expect(tools).toEqual(expect.arrayContaining(SCENARIO_TOOLS));
      const resources = (await client.listResources()).resources.map((resource) => resource.uri);
      expect(resources).toEqual(expect.arrayContaining(SCENARIO_RESOURCES));
      const prompts = (await client.listPrompts()).prompts.map((prompt) => prompt.name);
      expect(prompts).toEqual(expect.arrayContaining(SCENARIO_PROMPTS));
    } finally {
      await client.close();
    }
  });

  it(
    'passes every active server scenario, against an empty expected-failures baseline',
    async () => {
      const run = await runConformance(`http://localhost:${proxy.port}/mcp/${slug}`, '--expected-failures', BASELINE);
      const summary = parseSummary(run.output);
      if (process.env.SHOW_CONFORMANCE) process.stderr.write(run.output);
      expect(summary.map((line) => line.scenario)).toEqual(ACTIVE_SCENARIOS);
      expect(summary.filter((line) => !line.ok || line.failed > 0 || line.passed === 0)).toEqual([]);
      expect(run.exitCode).toBe(0);
    },
    SUITE_TIMEOUT_MS,
  );
});
