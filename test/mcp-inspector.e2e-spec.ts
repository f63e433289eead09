import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { entraEnv, LocalEntraIssuer } from './support/entra-issuer';
import { eventually } from './support/eventually';
import { startTestGateway, type TestGateway } from './support/gateway';
import { INSPECTOR_EXIT, INSPECTOR_TIMEOUT_MS, runInspector } from './support/inspector';
import { connectClient } from './support/mcp-client';
import { BYE_TOOLS, GREET_TOOLS, TestUpstream } from './support/upstream';

/** The MCP Inspector's CLI, as a developer would point it at the gateway with a token. */
describe('MCP Inspector CLI against the gateway', () => {
  let issuer: LocalEntraIssuer;
  let upstream: TestUpstream;
  let gw: TestGateway;
  let token: string;
  let serverId: string;
  const run = randomUUID().slice(0, 8);
  const slug = `greet-${run}`;
  const role = `Inspected.${run}`;

  beforeAll(async () => {
    issuer = await LocalEntraIssuer.start();
    upstream = await TestUpstream.start('greet', [...GREET_TOOLS, ...BYE_TOOLS]);
    gw = await startTestGateway('services', { ...entraEnv(issuer), UPSTREAM_ALLOWED_HOSTS: 'loopback' });
    const created = await request(gw.url)
      .post('/api/v1/servers')
      .send({
        name: `com.example.inspector/${slug}`,
        slug,
        url: upstream.url,
        allowedRoles: [role],
        toolRules: { deny: ['echoBye'] },
      })
      .expect(201);
    serverId = created.body.id as string;
    token = await issuer.token({ roles: [role] });
    const { client } = await connectClient(`${gw.url}/mcp`, token);
    try {
      await eventually(async () => {
        expect((await client.listTools()).tools.map((tool) => tool.name)).toContain(`${slug}__echoHai`);
      });
    } finally {
      await client.close();
    }
  });

  afterAll(async () => {
    await request(gw.url).delete(`/api/v1/servers/${serverId}`);
    await gw.close();
    await upstream.stop();
    await issuer.stop();
  });

  const auth = (): string[] => ['--header', `Authorization: Bearer ${token}`];

  /** The tool names in the inspector's `tools/list` output (JSON on stdout). */
  function listedNames(stdout: string): string[] {
    const listed = JSON.parse(stdout) as { tools: { name: string }[] };
    return listed.tools.map((tool) => tool.name);
  }

  describe.each([
    ['/mcp/{slug}', (): string => `/mcp/${slug}`, 'echoHai'],
    ['/mcp', (): string => '/mcp', `${slug}__echoHai`],
  ])('through %s', (_name, path, tool) => {
    it(
      'lists the tools the token may use',
      async () => {
        const listed = await runInspector(`${gw.url}${path()}`, [...auth(), '--method', 'tools/list']);
        expect({ code: listed.code, stderr: listed.stderr }).toMatchObject({ code: INSPECTOR_EXIT.ok });
        const names = listedNames(listed.stdout);
        expect(names).toContain(tool);
        expect(names.some((name) => name.endsWith('echoBye'))).toBe(false);
      },
      INSPECTOR_TIMEOUT_MS,
    );

    it(
      'calls a tool with arguments',
      async () => {
        const called = await runInspector(`${gw.url}${path()}`, [
          ...auth(),
          '--method',
          'tools/call',
          '--tool-name',
          tool,
          '--tool-arg',
          'userName=Ada',
        ]);
        expect({ code: called.code, stderr: called.stderr }).toMatchObject({ code: INSPECTOR_EXIT.ok });
        expect(JSON.parse(called.stdout)).toMatchObject({ content: [{ type: 'text', text: 'Hello, Ada!' }] });
      },
      INSPECTOR_TIMEOUT_MS,
    );
  });

  it(
    'exits with "auth required" without a token',
    async () => {
      const refused = await runInspector(`${gw.url}/mcp`, ['--method', 'tools/list', '--stored-auth-only']);
      expect(refused.code).toBe(INSPECTOR_EXIT.authRequired);
      expect(refused.stderr).toContain('"code":"auth_required"');
    },
    INSPECTOR_TIMEOUT_MS,
  );
});
