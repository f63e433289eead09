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
import type { TestGateway } from './support/gateway';
import { type GuardedUpstream, guardUpstream } from './support/guarded-upstream';
import { connectClient } from './support/mcp-client';
import { TokenProxy } from './support/token-proxy';

/**
 * The official conformance suite through `/mcp/{slug}`, fronting an upstream
 * that implements every fixture the suite calls. The suite sends no token, so
 * a proxy adds one; every request still passes the gateway's full guard.
 */
describe('conformance through /mcp/{slug}', () => {
  let deployment: GuardedUpstream<ConformanceUpstream>;
  let gw: TestGateway;
  let proxy: TokenProxy;
  let token: string;
  let slug: string;

  beforeAll(async () => {
    deployment = await guardUpstream(await ConformanceUpstream.start(), { slug: 'conf' });
    ({ gw, slug } = deployment);
    token = await deployment.issuer.token({ roles: ['Gateway.Admin'] });
    proxy = await TokenProxy.start(gw.url, token);
  });

  afterAll(async () => {
    await proxy?.stop();
    await deployment?.stop();
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
