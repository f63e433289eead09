import { randomUUID } from 'node:crypto';
import * as http from 'node:http';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import request from 'supertest';
import type { LocalEntraIssuer } from './support/entra-issuer';
import type { TestGateway } from './support/gateway';
import { type GuardedUpstream, startGuardedUpstream } from './support/guarded-upstream';
import { listenOnLoopback } from './support/loopback';
import { connectClient } from './support/mcp-client';
import { BYE_TOOLS, GREET_TOOLS, type TestUpstream } from './support/upstream';

describe('/mcp/{slug}: one upstream, transparent', () => {
  let deployment: GuardedUpstream;
  let issuer: LocalEntraIssuer;
  let upstream: TestUpstream;
  let gw: TestGateway;
  let slug: string;
  const role = `Greeters.${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    deployment = await startGuardedUpstream({
      slug: 'greet',
      role,
      tools: [...GREET_TOOLS, ...BYE_TOOLS],
      registration: { toolRules: { deny: ['echoBye'] } },
    });
    ({ issuer, upstream, gw, slug } = deployment);
  });

  afterAll(async () => {
    await deployment?.stop();
  });

  const endpoint = (): string => `${gw.url}/mcp/${slug}`;

  it('lists and calls the upstream tools with their own names, minus what the roles hide', async () => {
    const { client } = await connectClient(endpoint(), await issuer.token({ roles: [role] }));
    try {
      expect(client.getServerVersion()).toMatchObject({ name: 'greet' });
      const { tools } = await client.listTools();
      expect(tools.map((tool) => tool.name)).toEqual(['echoHai']);
      const result = await client.callTool({ name: 'echoHai', arguments: { userName: 'Ada' } });
      expect(result.content).toEqual([{ type: 'text', text: 'Hello, Ada!' }]);
      await expect(client.callTool({ name: 'echoBye', arguments: { userName: 'Ada' } })).rejects.toThrow(
        /Tool echoBye not found/,
      );
    } finally {
      await client.close();
    }
  });

  it('lets an admin see every tool', async () => {
    const { client } = await connectClient(endpoint(), await issuer.token({ roles: ['Gateway.Admin'] }));
    try {
      expect((await client.listTools()).tools.map((tool) => tool.name).sort()).toEqual(['echoBye', 'echoHai']);
    } finally {
      await client.close();
    }
  });

  it('answers a caller whose roles do not reach the server as if it did not exist', async () => {
    const token = await issuer.token({ roles: ['Someone.Else'] });
    await expect(connectClient(endpoint(), token)).rejects.toThrow(`Unknown MCP server: ${slug}`);
    await expect(connectClient(`${gw.url}/mcp/no-such-server`, token)).rejects.toThrow(
      'Unknown MCP server: no-such-server',
    );
    const hidden = await request(gw.url)
      .post(`/mcp/${slug}`)
      .set('authorization', `Bearer ${token}`)
      .send({ jsonrpc: '2.0', id: 1, method: 'initialize', params: {} });
    expect(hidden.status).toBe(404);
  });

  it('binds the session to its principal: missing id 400, unknown 404, another principal 404', async () => {
    const owner = await issuer.token({ roles: [role] });
    const { client, transport } = await connectClient(endpoint(), owner);
    try {
      const sessionId = transport.sessionId!;
      const ping = { jsonrpc: '2.0', id: 1, method: 'ping' };
      const post = (token: string, headers: Record<string, string>) =>
        request(gw.url)
          .post(`/mcp/${slug}`)
          .set('authorization', `Bearer ${token}`)
          .set('accept', 'application/json, text/event-stream')
          .set(headers)
          .send(ping);
      await post(owner, {}).expect(400);
      await post(owner, { 'mcp-session-id': 'not-a-session' }).expect(404);
      const stranger = await issuer.token({ roles: [role] });
      await post(stranger, { 'mcp-session-id': sessionId }).expect(404);
      const mine = await post(owner, { 'mcp-session-id': sessionId }).expect(200);
      expect(mine.text).toContain('"result":{}');
    } finally {
      await client.close();
    }
  });

  it('relays list_changed from the upstream, and re-initializes an upstream that restarted', async () => {
    const { client, transport } = await connectClient(endpoint(), await issuer.token({ roles: ['Gateway.Admin'] }));
    try {
      // Wait until the client's GET stream is open through the gateway.
      await new Promise((resolve) => setTimeout(resolve, 300));
      const changed = new Promise<void>((resolve) =>
        client.setNotificationHandler(ToolListChangedNotificationSchema, () => resolve()),
      );
      upstream.setTools(GREET_TOOLS);
      await changed;
      expect((await client.listTools()).tools.map((tool) => tool.name)).toEqual(['echoHai']);

      const sessionBefore = transport.sessionId;
      await upstream.refuse();
      await upstream.restart();
      // The upstream lost every session; the gateway starts a new one behind the same client session.
      const result = await client.callTool({ name: 'echoHai', arguments: { userName: 'Grace' } });
      expect(result.content).toEqual([{ type: 'text', text: 'Hello, Grace!' }]);
      expect(transport.sessionId).toBe(sessionBefore);
    } finally {
      upstream.setTools([...GREET_TOOLS, ...BYE_TOOLS]);
      await client.close();
    }
  });

  it("answers a second event stream on a session 409, as the upstream does, rather than as the gateway's failure", async () => {
    const token = await issuer.token({ roles: [role] });
    const headers: Record<string, string> = {
      authorization: `Bearer ${token}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
    };
    const params = { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'streams', version: '1' } };
    const initialized = await fetch(endpoint(), {
      method: 'POST',
      headers,
      body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params }),
    });
    headers['mcp-session-id'] = initialized.headers.get('mcp-session-id')!;
    await initialized.text();
    const note = JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' });
    expect((await fetch(endpoint(), { method: 'POST', headers, body: note })).status).toBe(202);
    const open = new AbortController();
    try {
      const get = (signal?: AbortSignal) =>
        fetch(endpoint(), { headers: { ...headers, accept: 'text/event-stream' }, signal });
      expect((await get(open.signal)).status).toBe(200);
      expect((await get()).status).toBe(409);
    } finally {
      open.abort();
      await fetch(endpoint(), { method: 'DELETE', headers });
    }
  });

  it('fails a call to a stopped upstream with a JSON-RPC error naming the server and reason', async () => {
    const { client } = await connectClient(endpoint(), await issuer.token({ roles: [role] }));
    await upstream.refuse();
    try {
      await expect(client.callTool({ name: 'echoHai', arguments: { userName: 'Ada' } })).rejects.toThrow(
        new RegExp(`Upstream ${slug} failed: connection refused`),
      );
    } finally {
      await upstream.restart();
      await client.close();
    }
  });

  it('ends the session on DELETE', async () => {
    const token = await issuer.token({ roles: [role] });
    const { client, transport } = await connectClient(endpoint(), token);
    const sessionId = transport.sessionId!;
    await transport.terminateSession();
    await request(gw.url)
      .post(`/mcp/${slug}`)
      .set('authorization', `Bearer ${token}`)
      .set('mcp-session-id', sessionId)
      .send({ jsonrpc: '2.0', id: 1, method: 'ping' })
      .expect(404);
    await client.close();
  });

  it('refuses a foreign Host or Origin (DNS rebinding) before looking at the token', async () => {
    const token = await issuer.token({ roles: [role] });
    const ping = { jsonrpc: '2.0', id: 1, method: 'ping' };
    await request(gw.url).post(`/mcp/${slug}`).set('host', 'evil.example.com').send(ping).expect(421);
    await request(gw.url)
      .post(`/mcp/${slug}`)
      .set('authorization', `Bearer ${token}`)
      .set('origin', 'https://evil.example.com')
      .send(ping)
      .expect(403);
    // The public host itself is served.
    const initialize = { jsonrpc: '2.0', id: 1, method: 'initialize', params: {} };
    await request(gw.url).post(`/mcp/${slug}`).set('host', 'gateway.test').send(initialize).expect(401);
  });

  it('serves no spelling of an MCP path that would skip the Host and Origin check', async () => {
    const token = await issuer.token({ roles: [role] });
    const initialize = {
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'edge-test', version: '1' } },
    };
    const paths = [
      '/MCP',
      '/Mcp',
      '/mcP/',
      `/MCP/${slug}`,
      `/Mcp/${slug}/`,
      `/MCP/${slug}/tools`,
      `/mcp/${slug}/TOOLS`,
      `/MCP/${slug}/openapi.json`,
      '//mcp',
      `//mcp/${slug}`,
      '/%6Dcp',
      `/%6dcp/${slug}`,
      `/mcp/./${slug}`,
      `/mcp/%2e/${slug}`,
      `/mcp/${slug}/./tools`,
      `/mcp%2F${slug}`,
      '/mcp?x=1',
    ];
    for (const path of paths) {
      for (const [header, value] of [
        ['host', 'evil.example.com'],
        ['origin', 'https://evil.example.com'],
      ] as const) {
        const post = await request(gw.url)
          .post(path)
          .set('authorization', `Bearer ${token}`)
          .set('accept', 'application/json, text/event-stream')
          .set(header, value)
          .send(initialize);
        const get = await request(gw.url).get(path).set('authorization', `Bearer ${token}`).set(header, value);
        // Refused at the edge (421, 403), or not a path the gateway serves at all (404).
        const refused = (status: number) => ([421, 403, 404].includes(status) ? 'refused' : status);
        expect([path, header, refused(post.status), refused(get.status)]).toEqual([path, header, 'refused', 'refused']);
      }
    }
    // The same requests from this gateway's own host and origin are served: the check is what refused them.
    await request(gw.url)
      .post('/mcp')
      .set('authorization', `Bearer ${token}`)
      .set('accept', 'application/json, text/event-stream')
      .send(initialize)
      .expect(200);
    await request(gw.url).get(`/mcp/${slug}/tools`).set('authorization', `Bearer ${token}`).expect(200);
  });

  it('answers browser preflights without a token and exposes the MCP headers', async () => {
    const res = await request(gw.url)
      .options(`/mcp/${slug}`)
      .set('origin', 'http://localhost:6274')
      .set('access-control-request-method', 'POST')
      .set('access-control-request-headers', 'authorization, content-type, mcp-session-id')
      .expect(204);
    expect(res.headers['access-control-allow-origin']).toBe('http://localhost:6274');
    expect(res.headers['access-control-allow-headers']).toContain('mcp-session-id');
    const post = await request(gw.url).post(`/mcp/${slug}`).set('origin', 'https://gateway.test').send({});
    expect(post.status).toBe(401);
    expect(post.headers['access-control-expose-headers']).toContain('mcp-session-id');
    expect(post.headers['access-control-expose-headers']).toContain('www-authenticate');
  });

  it('answers malformed JSON with a JSON-RPC parse error (-32700)', async () => {
    const res = await request(gw.url)
      .post(`/mcp/${slug}`)
      .set('authorization', `Bearer ${await issuer.token({ roles: [role] })}`)
      .set('content-type', 'application/json')
      .send('{"jsonrpc": "2.0", "id": 1,,')
      .expect(400);
    expect(res.body).toEqual({
      jsonrpc: '2.0',
      id: null,
      error: { code: -32700, message: 'Parse error: the request body is not valid JSON' },
    });
  });

  it.each([
    ['not JSON-RPC', { hello: 'world' }, 400],
    ['an empty batch', [], 400],
    ['a bad jsonrpc version', { jsonrpc: '1.0', id: 1, method: 'ping' }, 400],
    ['params that are not an object', { jsonrpc: '2.0', id: 1, method: 'ping', params: [1] }, 400],
  ])('answers %s with a JSON-RPC error, never a 5xx', async (_what, body, status) => {
    const res = await request(gw.url)
      .post(`/mcp/${slug}`)
      .set('authorization', `Bearer ${await issuer.token({ roles: [role] })}`)
      .send(body as object)
      .expect(status);
    expect(res.body).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: expect.any(Number) } });
  });
  it('sends a tool call at most once: a connection dropped after it went out is an error, not a second call', async () => {
    // In front of the upstream, a relay that reads each request and drops the connection under every tool call.
    const toolCalls: string[] = [];
    const dropping = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        if (body.includes('"tools/call"')) {
          toolCalls.push(body.toString('utf8'));
          req.socket.destroy();
          return;
        }
        const target = new URL(upstream.url);
        const relay = http.request(
          { host: target.hostname, port: target.port, method: req.method, path: target.pathname, headers: req.headers },
          (answer) => {
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(res);
          },
        );
        relay.on('error', () => res.writeHead(502).end());
        relay.end(body);
      });
    });
    const listener = await listenOnLoopback(dropping);
    const dropSlug = `drop-${randomUUID().slice(0, 8)}`;
    const created = await request(gw.url)
      .post('/api/v1/servers')
      .send({
        name: `com.example.test/${dropSlug}`,
        slug: dropSlug,
        url: `${listener.url}/mcp`,
        allowedRoles: [role],
      })
      .expect(201);
    try {
      const { client } = await connectClient(`${gw.url}/mcp/${dropSlug}`, await issuer.token({ roles: [role] }));
      try {
        expect((await client.listTools()).tools.map((tool) => tool.name)).toContain('echoHai');
        await expect(client.callTool({ name: 'echoHai', arguments: { userName: 'Ada' } })).rejects.toThrow(
          `Upstream ${dropSlug} failed: the upstream dropped the connection before answering; not sent again`,
        );
      } finally {
        await client.close();
      }
      expect(toolCalls).toHaveLength(1);
      expect(JSON.parse(toolCalls[0]!)).toMatchObject({ method: 'tools/call', params: { name: 'echoHai' } });
    } finally {
      await request(gw.url).delete(`/api/v1/servers/${created.body.id as string}`);
      await listener.stop();
    }
  });
});
