import { randomUUID } from 'node:crypto';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import request from 'supertest';
import { entraEnv, LocalEntraIssuer } from './support/entra-issuer';
import { startTestGateway, type TestGateway } from './support/gateway';
import { connectClient } from './support/mcp-client';
import { BYE_TOOLS, type FixtureTool, GREET_TOOLS, TestUpstream } from './support/upstream';

const SHOUT: FixtureTool = { name: 'shout', description: 'Shouts a name', reply: (u) => `${u.toUpperCase()}!` };

describe('/mcp: one MCP server over every upstream the caller may use', () => {
  let issuer: LocalEntraIssuer;
  let greet: TestUpstream;
  let bye: TestUpstream;
  let gw: TestGateway;
  const run = randomUUID().slice(0, 8);
  const greetSlug = `greet-${run}`;
  const byeSlug = `bye-${run}`;
  const greeter = `Greeter.${run}`;
  const parter = `Parter.${run}`;
  const ids: string[] = [];

  async function register(slug: string, url: string, role: string): Promise<void> {
    const res = await request(gw.url)
      .post('/api/v1/servers')
      .send({ name: `com.example.agg/${slug}`, slug, url, allowedRoles: [role] })
      .expect(201);
    ids.push(res.body.id as string);
  }

  async function toolNames(roles: string[]): Promise<string[]> {
    const { client } = await connectClient(`${gw.url}/mcp`, await issuer.token({ roles }));
    try {
      return (await client.listTools()).tools.map((tool) => tool.name).filter((name) => name.includes(run));
    } finally {
      await client.close();
    }
  }

  async function eventually(check: () => Promise<void>, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        return await check();
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }

  beforeAll(async () => {
    issuer = await LocalEntraIssuer.start();
    greet = await TestUpstream.start('greet', GREET_TOOLS);
    bye = await TestUpstream.start('bye', BYE_TOOLS);
    gw = await startTestGateway('services', { ...entraEnv(issuer), UPSTREAM_ALLOWED_HOSTS: 'loopback' });
    await register(greetSlug, greet.url, greeter);
    await register(byeSlug, bye.url, parter);
    // Registration triggers discovery; the catalog follows within its poll interval.
    await eventually(async () => {
      expect(await toolNames([greeter, parter])).toHaveLength(2);
    });
  });

  afterAll(async () => {
    for (const id of ids) await request(gw.url).delete(`/api/v1/servers/${id}`);
    await gw.close();
    await greet.stop();
    await bye.stop();
    await issuer.stop();
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
    await bye.stop();
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
