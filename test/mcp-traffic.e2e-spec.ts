import { randomUUID } from 'node:crypto';
import request from 'supertest';
import type { McpExchange } from '../src/traffic/mcp-exchange';
import { McpTraffic } from '../src/traffic/mcp-traffic';
import type { LocalEntraIssuer } from './support/entra-issuer';
import { eventually } from './support/eventually';
import type { TestGateway } from './support/gateway';
import { type GuardedUpstream, startGuardedUpstream } from './support/guarded-upstream';
import { connectClient } from './support/mcp-client';
import { BYE_TOOLS, GREET_TOOLS, TestUpstream } from './support/upstream';

/** Every MCP request that matters is reported once, with who asked, what for, the decision and the outcome. */
describe('MCP traffic: each request reported as it ends', () => {
  let deployment: GuardedUpstream;
  let issuer: LocalEntraIssuer;
  let gw: TestGateway;
  let slug: string;
  let serverId: string;
  const role = `Traffic.${randomUUID().slice(0, 8)}`;
  const seen: McpExchange[] = [];

  beforeAll(async () => {
    deployment = await startGuardedUpstream({
      slug: 'traffic',
      role,
      tools: [...GREET_TOOLS, ...BYE_TOOLS],
      registration: { toolRules: { deny: ['echoBye'] } },
    });
    ({ issuer, gw, slug, serverId } = deployment);
    gw.gateway.app.get(McpTraffic).onRecord((exchange) => seen.push(exchange));
  });

  afterAll(async () => {
    await deployment.stop();
  });

  /** The exchanges of requests sent while `run` ran. */
  async function recorded(run: () => Promise<void>): Promise<McpExchange[]> {
    const from = seen.length;
    await run();
    return seen.slice(from);
  }

  it('reports initialize, lists, calls and denials through /mcp/{slug}', async () => {
    const token = await issuer.token({ roles: [role], name: 'Ada Lovelace' });
    const exchanges = await recorded(async () => {
      const { client } = await connectClient(`${gw.url}/mcp/${slug}`, token);
      try {
        await client.listTools();
        await client.callTool({ name: 'echoHai', arguments: { userName: 'Ada' } });
        await expect(client.callTool({ name: 'echoBye', arguments: { userName: 'Ada' } })).rejects.toThrow();
        await client.ping();
      } finally {
        await client.close();
      }
    });
    expect(exchanges.map((exchange) => [exchange.method, exchange.decision, exchange.outcome])).toEqual([
      ['initialize', 'allowed', 'ok'],
      ['tools/list', 'allowed', 'ok'],
      ['tools/call', 'allowed', 'ok'],
      ['tools/call', 'denied', 'refused'],
    ]);
    const [initialize, , call, denied] = exchanges as [McpExchange, McpExchange, McpExchange, McpExchange];
    expect(initialize.sessionId).toEqual(expect.any(String));
    expect(call).toMatchObject({
      surface: 'server',
      server: { id: serverId, slug },
      target: 'echoHai',
      arguments: { userName: 'Ada' },
      sessionId: initialize.sessionId,
      principal: { name: 'Ada Lovelace', roles: [role] },
      upstreamStatus: 200,
    });
    expect(call.upstreamMs).toBeGreaterThanOrEqual(0);
    expect(call.latencyMs).toBeGreaterThanOrEqual(call.upstreamMs!);
    expect(call.requestId).not.toBe(initialize.requestId);
    expect(denied).toMatchObject({ target: 'echoBye', rule: 'tool-deny:echoBye', server: { slug } });
    expect(denied.upstreamMs).toBeUndefined();
  });

  it('reports calls through /mcp under upstream names, and unknown tools as errors', async () => {
    const token = await issuer.token({ roles: [role] });
    const { client } = await connectClient(`${gw.url}/mcp`, token);
    try {
      await eventually(async () => {
        const { tools } = await client.listTools();
        expect(tools.map((tool) => tool.name)).toContain(`${slug}__echoHai`);
      });
      const exchanges = await recorded(async () => {
        await client.callTool({ name: `${slug}__echoHai`, arguments: { userName: 'Bob' } });
        await client.callTool({ name: `${slug}__echoBye`, arguments: {} }).catch(() => undefined);
        await client.callTool({ name: 'nobody__nothing', arguments: {} }).catch(() => undefined);
      });
      expect(exchanges.map((exchange) => [exchange.target, exchange.decision, exchange.outcome])).toEqual([
        ['echoHai', 'allowed', 'ok'],
        ['echoBye', 'denied', 'refused'],
        ['nobody__nothing', 'allowed', 'rpc_error'],
      ]);
      expect(exchanges[0]).toMatchObject({ surface: 'aggregate', server: { id: serverId }, upstreamStatus: 200 });
      expect(exchanges[1]).toMatchObject({ rule: 'tool-deny:echoBye' });
    } finally {
      await client.close();
    }
  });

  it('reports each request of a batch, and the REST bridge', async () => {
    const token = await issuer.token({ roles: [role] });
    const { client, transport } = await connectClient(`${gw.url}/mcp/${slug}`, token);
    try {
      const exchanges = await recorded(async () => {
        const batch = await request(gw.url)
          .post(`/mcp/${slug}`)
          .set('authorization', `Bearer ${token}`)
          .set('accept', 'application/json, text/event-stream')
          .set('mcp-session-id', transport.sessionId!)
          .set('mcp-protocol-version', '2025-06-18')
          .send([
            {
              jsonrpc: '2.0',
              id: 'a',
              method: 'tools/call',
              params: { name: 'echoHai', arguments: { userName: 'x' } },
            },
            { jsonrpc: '2.0', id: 'b', method: 'tools/call', params: { name: 'echoBye', arguments: {} } },
          ]);
        expect(batch.status).toBe(200);
        await request(gw.url)
          .post(`/mcp/${slug}/tools/echoHai`)
          .set('authorization', `Bearer ${token}`)
          .send({ userName: 'Rest' })
          .expect(200);
        await request(gw.url)
          .post(`/mcp/${slug}/tools/echoHai`)
          .set('authorization', `Bearer ${token}`)
          .send({ wrong: true })
          .expect(400);
      });
      expect(
        exchanges.map((exchange) => [exchange.surface, exchange.rpcId, exchange.decision, exchange.outcome]),
      ).toEqual([
        ['server', 'b', 'denied', 'refused'],
        ['server', 'a', 'allowed', 'ok'],
        ['rest', 'rest', 'allowed', 'ok'],
        ['rest', 'rest', 'allowed', 'rpc_error'],
      ]);
      expect(exchanges[0]!.requestId).toBe(exchanges[1]!.requestId);
      expect(exchanges[2]).toMatchObject({ target: 'echoHai', arguments: { userName: 'Rest' } });
    } finally {
      await client.close();
    }
  });

  it('reports a request to a server the caller may not see as denied, answered as unknown', async () => {
    const token = await issuer.token({ roles: ['Someone.Else'] });
    const exchanges = await recorded(async () => {
      await request(gw.url)
        .post(`/mcp/${slug}`)
        .set('authorization', `Bearer ${token}`)
        .send({ jsonrpc: '2.0', id: 7, method: 'initialize', params: {} })
        .expect(404);
    });
    expect(exchanges).toEqual([
      expect.objectContaining({
        method: 'initialize',
        decision: 'denied',
        rule: 'no-matching-role',
        outcome: 'refused',
        server: { id: serverId, slug },
      }),
    ]);
  });

  it('reports refused tokens with the reason and never the token', async () => {
    const forged = await issuer.token({ roles: [role], aud: 'api://someone-else' });
    const exchanges = await recorded(async () => {
      await request(gw.url)
        .post(`/mcp/${slug}`)
        .set('authorization', `Bearer ${forged}`)
        .send({ jsonrpc: '2.0', id: 1, method: 'tools/list' })
        .expect(401);
      await request(gw.url).post('/mcp').send({ jsonrpc: '2.0', id: 1, method: 'initialize' }).expect(401);
    });
    expect(exchanges).toHaveLength(2);
    expect(exchanges[0]).toMatchObject({
      surface: 'server',
      pathSlug: slug,
      method: 'tools/list',
      rpcId: 1,
      decision: 'unauthenticated',
      outcome: 'refused',
    });
    expect(exchanges[0]!.rule).toMatch(/aud/i);
    expect(exchanges[0]!.principal).toBeUndefined();
    // The path's slug is not a server the gateway looked up (metrics count servers).
    expect(exchanges[0]!.server).toBeUndefined();
    expect(exchanges[1]).toMatchObject({
      surface: 'aggregate',
      method: 'initialize',
      rpcId: 1,
      rule: 'no access token',
    });
    expect(exchanges[1]).not.toHaveProperty('pathSlug');
    expect(JSON.stringify(exchanges)).not.toContain(forged.split('.')[2]);
  });

  it('reports an upstream that cannot be reached as an upstream error', async () => {
    const deadSlug = `dead-${randomUUID().slice(0, 8)}`;
    const dead = await TestUpstream.start('dead', GREET_TOOLS);
    const url = dead.url;
    await dead.stop();
    const created = await request(gw.url)
      .post('/api/v1/servers')
      .send({ name: `com.example.test/${deadSlug}`, slug: deadSlug, url, allowedRoles: [role] })
      .expect(201);
    try {
      const token = await issuer.token({ roles: [role] });
      const exchanges = await recorded(async () => {
        await expect(connectClient(`${gw.url}/mcp/${deadSlug}`, token)).rejects.toThrow();
      });
      expect(exchanges).toHaveLength(1);
      expect(exchanges[0]).toMatchObject({
        method: 'initialize',
        outcome: 'upstream_error',
        errorKind: 'connection_refused',
        server: { slug: deadSlug },
      });
    } finally {
      await request(gw.url).delete(`/api/v1/servers/${created.body.id as string}`);
    }
  });
});
