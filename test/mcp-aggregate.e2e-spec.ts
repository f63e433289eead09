import { randomUUID } from 'node:crypto';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import request from 'supertest';
import { entraEnv, type LocalEntraIssuer } from './support/entra-issuer';
import { eventually } from './support/eventually';
import { startTestGateway, type TestGateway } from './support/gateway';
import { type GuardedUpstreams, guardUpstreams } from './support/guarded-upstream';
import { connectClient } from './support/mcp-client';
import { BYE_TOOLS, type FixtureTool, GREET_TOOLS, TestUpstream } from './support/upstream';

const SHOUT: FixtureTool = { name: 'shout', description: 'Shouts a name', reply: (u) => `${u.toUpperCase()}!` };

describe('/mcp: one MCP server over every upstream the caller may use', () => {
  let deployment: GuardedUpstreams<TestUpstream> | undefined;
  let issuer: LocalEntraIssuer;
  let greet: TestUpstream;
  let bye: TestUpstream;
  let gw: TestGateway;
  const run = randomUUID().slice(0, 8);
  const greetSlug = `greet-${run}`;
  const byeSlug = `bye-${run}`;
  const greeter = `Greeter.${run}`;
  const parter = `Parter.${run}`;

  async function toolNames(roles: string[]): Promise<string[]> {
    const { client } = await connectClient(`${gw.url}/mcp`, await issuer.token({ roles }));
    try {
      return (await client.listTools()).tools.map((tool) => tool.name).filter((name) => name.includes(run));
    } finally {
      await client.close();
    }
  }

  beforeAll(async () => {
    greet = await TestUpstream.start('greet', GREET_TOOLS);
    bye = await TestUpstream.start('bye', BYE_TOOLS);
    deployment = await guardUpstreams([
      { upstream: greet, slug: greetSlug, registration: { allowedRoles: [greeter] } },
      { upstream: bye, slug: byeSlug, registration: { allowedRoles: [parter] } },
    ]);
    ({ issuer, gw } = deployment);
    // Registration triggers discovery; the catalog follows within its poll interval.
    await eventually(async () => {
      expect(await toolNames([greeter, parter])).toHaveLength(2);
    });
  });

  afterAll(async () => {
    await deployment?.stop();
  });

  it('offers every reachable upstream tool as {slug}__{tool}, with its origin in _meta, and calls it', async () => {
    const { client } = await connectClient(`${gw.url}/mcp`, await issuer.token({ roles: [greeter, parter] }));
    try {
      expect(client.getServerVersion()).toMatchObject({ name: 'mcp-gateway' });
      const tools = (await client.listTools()).tools.filter((tool) => tool.name.includes(run));
      expect(tools.map((tool) => tool.name).sort()).toEqual([`${byeSlug}__echoBye`, `${greetSlug}__echoHai`]);
      const hai = tools.find((tool) => tool.name === `${greetSlug}__echoHai`);
      expect(hai).toMatchObject({
        title: 'Say hello',
        description: 'Greets a user by name',
        inputSchema: { type: 'object', properties: { userName: { type: 'string' } } },
        _meta: { 'io.mcp-gateway/server': { server: greetSlug, name: 'echoHai' } },
      });
      const hello = await client.callTool({ name: `${greetSlug}__echoHai`, arguments: { userName: 'Ada' } });
      expect(hello.content).toEqual([{ type: 'text', text: 'Hello, Ada!' }]);
      const goodbye = await client.callTool({ name: `${byeSlug}__echoBye`, arguments: { userName: 'Ada' } });
      expect(goodbye.content).toEqual([{ type: 'text', text: 'Bye, Ada!' }]);
    } finally {
      await client.close();
    }
  });

  it('shows each caller only the servers its roles reach, and refuses the rest as unknown', async () => {
    expect(await toolNames([greeter])).toEqual([`${greetSlug}__echoHai`]);
    expect(await toolNames([parter])).toEqual([`${byeSlug}__echoBye`]);
    expect(await toolNames(['Nobody'])).toEqual([]);
    const { client } = await connectClient(`${gw.url}/mcp`, await issuer.token({ roles: [greeter] }));
    try {
      await expect(client.callTool({ name: `${byeSlug}__echoBye`, arguments: { userName: 'x' } })).rejects.toThrow(
        `Tool ${byeSlug}__echoBye not found`,
      );
      await expect(client.callTool({ name: 'no_such__tool', arguments: {} })).rejects.toThrow(
        'Tool no_such__tool not found',
      );
    } finally {
      await client.close();
    }
  });

  it('tells connected sessions when an upstream changes its tools', async () => {
    const { client } = await connectClient(`${gw.url}/mcp`, await issuer.token({ roles: [greeter] }));
    try {
      const changed = new Promise<void>((resolve) =>
        client.setNotificationHandler(ToolListChangedNotificationSchema, () => resolve()),
      );
      // Let the client's GET stream open before the change.
      await new Promise((resolve) => setTimeout(resolve, 300));
      greet.setTools([...GREET_TOOLS, SHOUT]);
      await changed;
      await eventually(async () => {
        expect((await client.listTools()).tools.map((tool) => tool.name)).toContain(`${greetSlug}__shout`);
      });
      const shout = await client.callTool({ name: `${greetSlug}__shout`, arguments: { userName: 'ada' } });
      expect(shout.content).toEqual([{ type: 'text', text: 'ADA!' }]);
    } finally {
      greet.setTools(GREET_TOOLS);
      await client.close();
    }
  });

  it('fails a call to a stopped upstream fast, naming the server and reason, while the rest keep working', async () => {
    const { client } = await connectClient(`${gw.url}/mcp`, await issuer.token({ roles: [greeter, parter] }));
    await bye.refuse();
    try {
      await expect(client.callTool({ name: `${byeSlug}__echoBye`, arguments: { userName: 'x' } })).rejects.toThrow(
        `Upstream ${byeSlug} failed: connection refused`,
      );
      const hello = await client.callTool({ name: `${greetSlug}__echoHai`, arguments: { userName: 'Ada' } });
      expect(hello.content).toEqual([{ type: 'text', text: 'Hello, Ada!' }]);
    } finally {
      await bye.restart();
      await client.close();
    }
  });

  describe('REST bridge', () => {
    const bearer = async (roles: string[]): Promise<string> => `Bearer ${await issuer.token({ roles })}`;

    it('lists and calls a tool as plain JSON, with the upstream names', async () => {
      const auth = await bearer([greeter]);
      const listed = await request(gw.url).get(`/mcp/${greetSlug}/tools`).set('authorization', auth).expect(200);
      expect(listed.body.tools.map((tool: { name: string }) => tool.name)).toContain('echoHai');
      const called = await request(gw.url)
        .post(`/mcp/${greetSlug}/tools/echoHai`)
        .set('authorization', auth)
        .send({ userName: 'Ada' })
        .expect(200);
      expect(called.body).toEqual({ content: [{ type: 'text', text: 'Hello, Ada!' }] });
    });

    it('describes the tools as an OpenAPI document generated from their schemas', async () => {
      const doc = await request(gw.url)
        .get(`/mcp/${greetSlug}/openapi.json`)
        .set('authorization', await bearer([greeter]))
        .expect(200);
      expect(doc.body.openapi).toBe('3.1.0');
      expect(doc.body.servers).toEqual([{ url: `https://gateway.test/mcp/${greetSlug}/tools` }]);
      expect(doc.body.paths['/echoHai'].post.requestBody.content['application/json'].schema).toMatchObject({
        type: 'object',
        properties: { userName: { type: 'string' } },
      });
    });

    it.each([
      ['arguments that break the input schema', { userName: 42 }, 400, 'validation_error'],
      ['a body that is not an object', [1, 2], 400, 'validation_error'],
    ])('answers %s with problem+json', async (_what, body, status, code) => {
      const res = await request(gw.url)
        .post(`/mcp/${greetSlug}/tools/echoHai`)
        .set('authorization', await bearer([greeter]))
        .send(body as object)
        .expect(status);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.body.code).toBe(code);
    });

    it('answers unknown tools, hidden servers and missing tokens without revealing anything', async () => {
      await request(gw.url)
        .post(`/mcp/${greetSlug}/tools/nope`)
        .set('authorization', await bearer([greeter]))
        .send({})
        .expect(404);
      const hidden = await request(gw.url)
        .get(`/mcp/${byeSlug}/tools`)
        .set('authorization', await bearer([greeter]))
        .expect(404);
      const missing = await request(gw.url)
        .get(`/mcp/no-such-${run}/tools`)
        .set('authorization', await bearer([greeter]))
        .expect(404);
      expect(hidden.body.detail).toBe(`no MCP server ${byeSlug}`);
      expect(missing.body.detail).toBe(`no MCP server no-such-${run}`);
      await request(gw.url).get(`/mcp/${greetSlug}/tools`).expect(401);
    });

    it('answers 502 problem+json when the upstream is down', async () => {
      await bye.refuse();
      try {
        const res = await request(gw.url)
          .post(`/mcp/${byeSlug}/tools/echoBye`)
          .set('authorization', await bearer([parter]))
          .send({ userName: 'x' })
          .expect(502);
        expect(res.body).toMatchObject({
          code: 'upstream_error',
          detail: `upstream ${byeSlug} failed: connection refused`,
        });
      } finally {
        await bye.restart();
      }
    });
  });

  it('serves clients that keep no session when MCP_STATELESS is on', async () => {
    const stateless = await startTestGateway('services', {
      ...entraEnv(issuer),
      UPSTREAM_ALLOWED_HOSTS: 'loopback',
      MCP_STATELESS: 'true',
    });
    try {
      const token = await issuer.token({ roles: [greeter] });
      await eventually(async () => {
        const { client, transport } = await connectClient(`${stateless.url}/mcp`, token);
        try {
          expect(transport.sessionId).toBeUndefined();
          const hello = await client.callTool({ name: `${greetSlug}__echoHai`, arguments: { userName: 'Ada' } });
          expect(hello.content).toEqual([{ type: 'text', text: 'Hello, Ada!' }]);
        } finally {
          await client.close();
        }
      });
      const listed = await request(stateless.url)
        .post('/mcp')
        .set('authorization', `Bearer ${token}`)
        .send({ jsonrpc: '2.0', id: 3, method: 'tools/list' })
        .expect(200);
      expect(listed.body.result.tools.map((tool: { name: string }) => tool.name)).toContain(`${greetSlug}__echoHai`);
      await request(stateless.url).get('/mcp').set('authorization', `Bearer ${token}`).expect(405);
    } finally {
      await stateless.close();
    }
  });

  it('answers unknown methods with -32601 and bad bodies with JSON-RPC errors', async () => {
    const token = await issuer.token({ roles: [greeter] });
    const { transport, client } = await connectClient(`${gw.url}/mcp`, token);
    try {
      const post = (body: unknown) =>
        request(gw.url)
          .post('/mcp')
          .set('authorization', `Bearer ${token}`)
          .set('mcp-session-id', transport.sessionId!)
          .send(body as object);
      const unknown = await post({ jsonrpc: '2.0', id: 7, method: 'tools/explode' }).expect(200);
      expect(unknown.body).toEqual({
        jsonrpc: '2.0',
        id: 7,
        error: { code: -32601, message: 'Method not found: tools/explode' },
      });
      const batch = await post([
        { jsonrpc: '2.0', id: 1, method: 'ping' },
        { jsonrpc: '2.0', id: 2, method: 'tools/list' },
      ]).expect(200);
      expect(batch.body).toHaveLength(2);
      expect(batch.body[0]).toEqual({ jsonrpc: '2.0', id: 1, result: {} });
      const malformed = await post({ jsonrpc: '2.0', id: 1 }).expect(400);
      expect(malformed.body.error.code).toBe(-32600);
      await post({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 1 } }).expect(202);
    } finally {
      await client.close();
    }
  });
});
