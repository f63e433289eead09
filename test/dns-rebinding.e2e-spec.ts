import { once } from 'node:events';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { loadConfig } from '../src/config/config';
import { StreamableHttpClient } from '../src/mcp/streamable-http-client';
import { UpstreamConnector } from '../src/upstream/upstream-connector';
import { type Resolver, UrlGuard } from '../src/upstream/url-guard';
import { type GuardedUpstream, startGuardedUpstream } from './support/guarded-upstream';
import { GREET_TOOLS, TestUpstream } from './support/upstream';
import { upstreamFailureOf as failureOf, upstreamTarget as target } from './support/upstream-target';

/**
 * DNS rebinding: a name that resolves to an allowed address when its URL is checked and to a refused one when the
 * connection is opened. The guard's resolver stands for DNS (TTL 0), so `rebind.test` answers what each test says, in
 * turn; the address a connection is opened to must be one the policy was asked about.
 */

/** A resolver that gives each answer once, in order, and the last one from then on. */
function answering(...answers: string[][]): Resolver {
  let asked = 0;
  return () => Promise.resolve(answers[Math.min(asked++, answers.length - 1)] ?? []);
}

const ping = { jsonrpc: '2.0', id: 1, method: 'ping' };

describe("the relay's HTTP client under DNS rebinding", () => {
  /** Listens on every address, so 127.0.0.1 and 127.0.0.2 both reach it: only the policy can stop a connection. */
  let server: http.Server;
  let port: number;
  /** The local address of each request's connection: the address the client connected to. */
  const reached: string[] = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      reached.push(req.socket.localAddress ?? '');
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"jsonrpc":"2.0","id":1,"result":{}}');
    });
    server.listen(0, '0.0.0.0');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    server.closeAllConnections();
    server.close();
    await once(server, 'close');
  });

  beforeEach(() => {
    reached.length = 0;
  });

  it('refuses to connect when the name resolves to a refused address by the time the connection is opened', async () => {
    const guard = new UrlGuard(
      { allowedHosts: ['127.0.0.2'], deniedHosts: [] },
      answering(['127.0.0.2'], ['127.0.0.1']),
    );
    const url = `http://rebind.test:${port}/mcp`;
    await expect(guard.check(url)).resolves.toEqual({ allowed: true });

    const failure = await failureOf(new StreamableHttpClient(guard).post(url, ping, { headers: {} }));

    expect(failure).toEqual({
      kind: 'refused_url',
      message: expect.stringMatching(/address 127\.0\.0\.1 is loopback/) as unknown,
    });
    expect(reached).toEqual([]);
  });

  it('connects to the address the policy allowed, not to one resolved apart from it', async () => {
    const guard = new UrlGuard({ allowedHosts: ['127.0.0.2'], deniedHosts: [] }, answering(['127.0.0.2']));

    const reply = await new StreamableHttpClient(guard).post(`http://rebind.test:${port}/mcp`, ping, { headers: {} });

    expect(reply.status).toBe(200);
    expect(reached).toEqual(['127.0.0.2']);
  });
});

describe('UpstreamConnector (MCP SDK sessions) under DNS rebinding', () => {
  let upstream: TestUpstream;

  beforeAll(async () => {
    upstream = await TestUpstream.start('greet', GREET_TOOLS);
  });

  afterAll(async () => {
    await upstream.stop();
  });

  /** `rebind.test` on the upstream's port; the upstream listens on 127.0.0.1, the only address the policy allows. */
  const rebound = (): string => upstream.url.replace('127.0.0.1', 'rebind.test');

  function connectorWith(resolve: Resolver): UpstreamConnector {
    return new UpstreamConnector(
      loadConfig({}),
      new UrlGuard({ allowedHosts: ['127.0.0.1'], deniedHosts: [] }, resolve),
    );
  }

  it('refuses the connection when the name resolves to a refused address after the URL was checked', async () => {
    const connector = connectorWith(answering(['127.0.0.1'], ['127.0.0.2']));

    const failure = await failureOf(connector.connect(target(rebound())));

    expect(failure).toEqual({
      kind: 'refused_url',
      message: expect.stringMatching(/address 127\.0\.0\.2 is loopback/) as unknown,
    });
  });

  it('opens the session over the address the policy allowed', async () => {
    const session = await connectorWith(answering(['127.0.0.1'])).connect(target(rebound()));
    try {
      expect(session.client.getServerVersion()).toMatchObject({ name: 'greet' });
    } finally {
      await session.close();
    }
  });
});

/**
 * DNS rebinding against the gateway itself: a page on a name its attacker points at the gateway's address makes the
 * browser send requests the gateway must not take for its own clients'. The MCP spec's transport security asks
 * servers to validate `Origin` (403 when present and not allowed, a JSON-RPC error without id as the body); the
 * gateway validates `Host` too (421), against PUBLIC_URL, loopback, MCP_ALLOWED_HOSTS and MCP_ALLOWED_ORIGINS, before
 * the token, on every MCP method and whichever way the request comes in (the POST lane, or Express).
 */
describe("the gateway's MCP endpoints under DNS rebinding", () => {
  const role = `Greeters.${randomUUID().slice(0, 8)}`;
  let deployment: GuardedUpstream;
  let token: string;

  beforeAll(async () => {
    deployment = await startGuardedUpstream({
      slug: 'rebinding',
      role,
      tools: GREET_TOOLS,
      // PUBLIC_URL is https://gateway.test (entraEnv).
      env: { MCP_ALLOWED_HOSTS: 'mcp.internal', MCP_ALLOWED_ORIGINS: 'https://inspector.example' },
    });
    token = await deployment.issuer.token({ roles: [role] });
  });

  afterAll(async () => {
    await deployment?.stop();
  });

  const initialize = {
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'rebinding-test', version: '1' } },
  };
  const endpoints = ['/mcp', '/mcp/{slug}'];
  const pathOf = (endpoint: string): string => endpoint.replace('{slug}', deployment.slug);

  /** A request to `path` by `method`, the POST lane's or Express's (a query string), with `headers` and a valid token. */
  const send = (way: string, path: string, headers: Record<string, string>, authorized = true) => {
    const agent = request(deployment.gw.url);
    const sent =
      way === 'GET'
        ? agent.get(path).set('accept', 'text/event-stream')
        : way === 'DELETE'
          ? agent.delete(path)
          : agent
              .post(way === 'POST (Express)' ? `${path}?via=express` : path)
              .set('accept', 'application/json, text/event-stream');
    if (authorized) sent.set('authorization', `Bearer ${token}`);
    sent.set({ 'mcp-session-id': `unknown-${randomUUID()}`, ...headers });
    return way.startsWith('POST') ? sent.send(initialize) : sent;
  };
  const ways = ['POST (lane)', 'POST (Express)', 'GET', 'DELETE'];

  const hostile: [string, Record<string, string>, number, string][] = [
    ['a foreign Origin', { origin: 'https://evil.example' }, 403, 'Origin https://evil.example is not allowed'],
    [
      'an Origin ending like the public one',
      { origin: 'https://gateway.test.evil.example' },
      403,
      'Origin https://gateway.test.evil.example is not allowed',
    ],
    ['the public host over http', { origin: 'http://gateway.test' }, 403, 'Origin http://gateway.test is not allowed'],
    [
      'the public host on another port',
      { origin: 'https://gateway.test:8443' },
      403,
      'Origin https://gateway.test:8443 is not allowed',
    ],
    ['an opaque Origin (null)', { origin: 'null' }, 403, 'Origin null is not allowed'],
    ['a foreign Host', { host: 'evil.example.com' }, 421, 'Host evil.example.com is not served here'],
    [
      "a rebound name's Host and Origin",
      { host: 'attacker.example:8000', origin: 'http://attacker.example:8000' },
      421,
      'Host attacker.example:8000 is not served here',
    ],
  ];

  it.each(endpoints)(
    'refuses a hostile Host or Origin on %s with a JSON-RPC error, before the token',
    async (endpoint) => {
      const path = pathOf(endpoint);
      for (const [what, headers, status, message] of hostile) {
        for (const way of ways) {
          for (const authorized of [true, false]) {
            const answer = await send(way, path, headers, authorized);
            expect([what, way, authorized, answer.status, answer.headers['content-type']]).toEqual([
              what,
              way,
              authorized,
              status,
              'application/json; charset=utf-8',
            ]);
            expect([what, way, JSON.parse(answer.text)]).toEqual([
              what,
              way,
              { jsonrpc: '2.0', id: null, error: { code: -32600, message } },
            ]);
            expect([
              what,
              way,
              answer.headers['access-control-allow-origin'],
              answer.headers['mcp-session-id'],
            ]).toEqual([what, way, undefined, undefined]);
          }
        }
      }
    },
  );

  const allowed: [string, Record<string, string>][] = [
    ['no Origin (a client that is not a browser)', {}],
    ['the public origin (PUBLIC_URL)', { origin: 'https://gateway.test' }],
    ['a loopback origin (the MCP Inspector)', { origin: 'http://localhost:6274' }],
    ['an origin of MCP_ALLOWED_ORIGINS', { origin: 'https://inspector.example' }],
    ['the public host', { host: 'gateway.test' }],
    ['the public host in capitals', { host: 'GATEWAY.TEST' }],
    ['a host of MCP_ALLOWED_HOSTS, with a port', { host: 'mcp.internal:8443' }],
  ];

  it.each(endpoints)('serves an allowed Host or Origin on %s, on POST (either way) and DELETE', async (endpoint) => {
    const path = pathOf(endpoint);
    for (const [what, headers] of allowed) {
      for (const way of ['POST (lane)', 'POST (Express)']) {
        const opened = await request(deployment.gw.url)
          .post(way === 'POST (Express)' ? `${path}?via=express` : path)
          .set('authorization', `Bearer ${token}`)
          .set('accept', 'application/json, text/event-stream')
          .set(headers)
          .send(initialize);
        expect([what, way, opened.status]).toEqual([what, way, 200]);
        expect([what, way, opened.headers['access-control-allow-origin']]).toEqual([what, way, headers.origin]);
        const session = opened.headers['mcp-session-id'] as string;
        expect(session).toBeDefined();
        const ended = await request(deployment.gw.url)
          .delete(path)
          .set('authorization', `Bearer ${token}`)
          .set('mcp-session-id', session)
          .set(headers);
        expect([what, way, ended.status]).toEqual([what, way, 200]);
      }
    }
  });
});
