import { randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { __resetOutOfContextForTests } from 'nestjs-pino/PinoLogger';
import request from 'supertest';
import { HOME_TENANT } from './support/entra-issuer';
import { eventually, sleep, waitUntil } from './support/eventually';
import { auditOf } from './support/audit';
import { GarblingUpstream } from './support/garbling-upstream';
import { type GuardedUpstream, guardUpstream, startGuardedUpstream } from './support/guarded-upstream';
import { plainRequest } from './support/raw-request';
import { redisUserWithout, type RedisUser } from './support/redis-user';
import { REDIS_URL } from './support/services';
import { StallableProxy } from './support/stallable-proxy';
import { hostPortOf, TcpProxy, withHostPort } from './support/tcp-proxy';
import { GREET_TOOLS } from './support/upstream';

const initialize = (id: number) => ({
  jsonrpc: '2.0',
  id,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'faults-test', version: '1.0.0' } },
});

/** The audit records of the caller `oid`, as GET /api/v1/audit lists them, each with what says how it ended. */
async function auditedFor(gatewayUrl: string, oid: string): Promise<Record<string, unknown>[]> {
  const list = await request(gatewayUrl)
    .get('/api/v1/audit')
    .query({ principal: `${HOME_TENANT}:${oid}` })
    .expect(200);
  return (list.body.records as Record<string, unknown>[]).map(
    ({ surface, server, method, rpcId, sessionId, decision, outcome, errorKind }) => ({
      surface,
      server: (server as { slug: string | null } | null)?.slug ?? null,
      method,
      rpcId,
      sessionId,
      decision,
      outcome,
      errorKind,
    }),
  );
}

/**
 * A fault of the gateway's own met while relaying to an upstream, which the relay catches with the upstream's
 * failures and cannot classify. The fault is a real one: the gateway's Redis user may not run SET (a Redis ACL), so
 * the session of an initialize the upstream answered cannot be stored, and Redis's refusal reaches the relay.
 */
describe('an unclassified failure relaying to an upstream', () => {
  let redisUser: RedisUser | undefined;
  const role = `Greeters.${randomUUID().slice(0, 8)}`;
  let deployment: GuardedUpstream;

  beforeAll(async () => {
    redisUser = await redisUserWithout('set');
    deployment = await startGuardedUpstream({
      slug: 'faults',
      role,
      tools: GREET_TOOLS,
      env: { REDIS_URL: redisUser.url },
    });
  });

  afterAll(async () => {
    await deployment?.stop();
    await redisUser?.remove();
  });

  it('is answered -32603 on /mcp/{slug} with the error id of the one line logging it, and nothing of its text', async () => {
    const { gw, issuer, slug } = deployment;
    const requestId = `faults-${randomUUID()}`;
    const answer = await request(gw.url)
      .post(`/mcp/${slug}`)
      .set('authorization', `Bearer ${await issuer.token({ roles: [role] })}`)
      .set('accept', 'application/json, text/event-stream')
      .set('x-request-id', requestId)
      .send(initialize(3));

    expect(answer.status).toBe(200);
    const body = JSON.parse(answer.text) as { error: { data?: { errorId?: string } } };
    expect(body).toEqual({
      jsonrpc: '2.0',
      id: 3,
      error: {
        code: -32603,
        message: 'Internal error',
        data: { server: slug, kind: 'other', errorId: expect.stringMatching(/^[0-9a-f-]{36}$/) },
      },
    });
    expect(answer.text).not.toContain('NOPERM');
    const errorId = body.error.data?.errorId;
    await waitUntil(() => gw.logs.lines.some((line) => line.errorId === errorId), 'the error line');
    // Logged once, as an internal fault: the error, its id and the request's, and no 'upstream request failed' too.
    const lines = gw.logs.lines.filter(
      (line) => (line.errorId === errorId || line.reqId === requestId) && line.req === undefined,
    );
    expect(lines).toEqual([
      expect.objectContaining({
        level: 50,
        errorId,
        reqId: requestId,
        server: slug,
        err: expect.objectContaining({ message: expect.stringContaining('NOPERM') }),
      }),
    ]);
    expect(gw.logs.lines.filter((line) => line.msg === 'upstream request failed')).toEqual([]);
  });

  it("audits an initialize whose session Redis refused to store as the gateway's own error, on /mcp and /mcp/{slug}", async () => {
    const { gw, issuer } = deployment;
    const oid = randomUUID();
    const answer = await request(gw.url)
      .post('/mcp')
      .set('authorization', `Bearer ${await issuer.token({ oid, roles: [role] })}`)
      .set('accept', 'application/json, text/event-stream')
      .send(initialize(4));
    // On /mcp/{slug}, once the upstream has answered: not the upstream's failure either.
    const relayed = await request(gw.url)
      .post(`/mcp/${deployment.slug}`)
      .set('authorization', `Bearer ${await issuer.token({ oid, roles: [role] })}`)
      .set('accept', 'application/json, text/event-stream')
      .send(initialize(5));
    expect(relayed.status).toBe(200);
    expect(answer.status).toBe(500);
    expect(answer.body).toEqual({
      jsonrpc: '2.0',
      id: 4,
      error: { code: -32603, message: 'Internal error', data: { errorId: expect.stringMatching(/^[0-9a-f-]{36}$/) } },
    });

    const refused = { method: 'initialize', sessionId: null, decision: 'allowed', outcome: 'rpc_error' };
    await eventually(async () => expect(await auditedFor(gw.url, oid)).toHaveLength(2));
    expect(await auditedFor(gw.url, oid)).toEqual(
      expect.arrayContaining([
        { surface: 'aggregate', server: null, rpcId: 4, ...refused, errorKind: 'session_store_error' },
        { surface: 'server', server: deployment.slug, rpcId: 5, ...refused, errorKind: 'session_store_error' },
      ]),
    );
  });
});

/**
 * An upstream whose answer to a call is not one the gateway's HTTP client can read (GarblingUpstream, a real TCP
 * server): `garbled` is not HTTP/1.1, which Node's HTTP parser refuses (HPE_*), and `oversized` carries a header
 * longer than the client reads (undici's UND_ERR_HEADERS_OVERFLOW): the upstream's failures, classified as protocol
 * ones, as the client is told. (The path of a failure nothing classifies, 'Internal error' and an error id, is the
 * gateway's own fault's above: no upstream behaviour known here is left unclassified.)
 */
describe('an upstream answering what the gateway cannot read', () => {
  const role = `Garblers.${randomUUID().slice(0, 8)}`;
  let deployment: GuardedUpstream<GarblingUpstream>;
  let token: string;

  const rpc = async (path: string, body: unknown, headers: Record<string, string> = {}) =>
    request(deployment.gw.url)
      .post(path)
      .set('authorization', `Bearer ${token}`)
      .set('accept', 'application/json, text/event-stream')
      .set(headers)
      .send(body as object);

  /** A session of `path`, as a client opens one. */
  const sessionOf = async (path: string): Promise<Record<string, string>> => {
    const opened = await rpc(path, initialize(1));
    expect(opened.status).toBe(200);
    return { 'mcp-session-id': opened.headers['mcp-session-id'] as string, 'mcp-protocol-version': '2025-06-18' };
  };

  const call = (id: number, name: string) => ({
    jsonrpc: '2.0',
    id,
    method: 'tools/call',
    params: { name, arguments: {} },
  });

  /** The audit record of the request the test gave `requestId`. */
  const auditedAs = async (requestId: string) => {
    await auditOf(deployment.gw.gateway.app).trail.flush();
    const listed = await request(deployment.gw.url)
      .get('/api/v1/audit')
      .query({ method: 'tools/call', limit: '500' })
      .expect(200);
    return (listed.body.records as { requestId: string; outcome: string; errorKind?: string | null }[]).find(
      (record) => record.requestId === requestId,
    );
  };

  beforeAll(async () => {
    // nestjs-pino keeps the logger of the first app in the process for its injected loggers: this gateway's own.
    __resetOutOfContextForTests();
    deployment = await guardUpstream(await GarblingUpstream.start(), {
      slug: 'garbling',
      registration: { allowedRoles: [role] },
    });
    token = await deployment.issuer.token({ roles: [role] });
    // Registration triggers discovery; the catalog of /mcp follows.
    const session = await sessionOf('/mcp');
    await eventually(async () => {
      const listed = await rpc('/mcp', { jsonrpc: '2.0', id: 2, method: 'tools/list' }, session);
      expect((listed.body.result.tools as { name: string }[]).map((tool) => tool.name)).toContain(
        `${deployment.slug}__garbled`,
      );
    });
  });

  afterAll(async () => {
    await deployment?.stop();
  });

  const malformed = expect.stringMatching(/^the upstream sent a malformed HTTP answer \(.+\)$/);

  /** What an answer of each tool must not repeat of the bytes the upstream sent. */
  const SENT: Record<string, string> = { garbled: 'broken header', oversized: 'aaaaaaaa' };

  it.each([
    ['/mcp/{slug}', 'garbled'],
    ['/mcp', 'garbled'],
    ['/mcp/{slug}', 'oversized'],
    ['/mcp', 'oversized'],
  ])(
    'answers malformed HTTP on %s (%s) as the upstream failing the protocol, audited so, with no error line',
    async (endpoint, tool) => {
      const { gw, slug } = deployment;
      const path = endpoint.replace('{slug}', slug);
      const requestId = `${tool}-${randomUUID()}`;
      const logged = gw.logs.lines.length;
      const answer = await rpc(path, call(5, path === '/mcp' ? `${slug}__${tool}` : tool), {
        ...(await sessionOf(path)),
        'x-request-id': requestId,
      });

      expect(answer.status).toBe(200);
      expect(answer.body).toEqual({
        jsonrpc: '2.0',
        id: 5,
        error: {
          code: -32603,
          message: expect.stringMatching(
            new RegExp(`^Upstream ${slug} failed: the upstream sent a malformed HTTP answer \\(.+\\)$`),
          ),
          data: { server: slug, kind: 'protocol' },
        },
      });
      expect(answer.text).not.toContain(SENT[tool]);
      expect(await auditedAs(requestId)).toMatchObject({ outcome: 'upstream_error', errorKind: 'protocol' });
      expect(gw.logs.lines.slice(logged).filter((line) => line.level === 50)).toEqual([]);
      expect(gw.logs.lines.slice(logged)).toContainEqual(
        expect.objectContaining({ msg: 'upstream request failed', server: slug, kind: 'protocol', reason: malformed }),
      );
    },
  );

  it.each(['garbled', 'oversized'])(
    'answers malformed HTTP (%s) on the REST bridge 502 upstream_error, saying what the upstream did',
    async (tool) => {
      const { gw, slug } = deployment;
      const requestId = `${tool}-${randomUUID()}`;
      const answer = await request(gw.url)
        .post(`/mcp/${slug}/tools/${tool}`)
        .set('authorization', `Bearer ${token}`)
        .set('x-request-id', requestId)
        .send({});

      expect(answer.status).toBe(502);
      expect(answer.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(answer.body).toMatchObject({
        code: 'upstream_error',
        detail: expect.stringMatching(
          new RegExp(`^upstream ${slug} failed: the upstream sent a malformed HTTP answer \\(.+\\)$`),
        ),
      });
      expect(answer.body).not.toHaveProperty('errorId');
      expect(answer.text).not.toContain(SENT[tool]);
      expect(await auditedAs(requestId)).toMatchObject({ outcome: 'upstream_error', errorKind: 'protocol' });
    },
  );
});

/** A POST to `deployment`'s gateway by a caller holding `role`, taking JSON and event streams. */
function poster(deployment: () => GuardedUpstream, role: string) {
  return async (path: string, body: unknown, headers: Record<string, string> = {}) =>
    request(deployment().gw.url)
      .post(path)
      .set('authorization', `Bearer ${await deployment().issuer.token({ roles: [role] })}`)
      .set('accept', 'application/json, text/event-stream')
      .set(headers)
      .send(body as object);
}

/**
 * A handler of an MCP endpoint that fails, whichever way the request came in: the POST lane, or Express (a query
 * string, a trailing slash, a compressed body, GET, DELETE), which answered problem+json. The fault is a real one:
 * the gateway's Redis user may not run GET (a Redis ACL), so the session a request names cannot be read, and Redis's
 * refusal reaches the handler.
 */
describe('an internal fault on every way into the MCP endpoints', () => {
  let redisUser: RedisUser | undefined;
  const role = `Greeters.${randomUUID().slice(0, 8)}`;
  let deployment: GuardedUpstream;
  let token: string;

  beforeAll(async () => {
    redisUser = await redisUserWithout('get');
    deployment = await startGuardedUpstream({
      slug: 'entries',
      role,
      tools: GREET_TOOLS,
      env: { REDIS_URL: redisUser.url },
    });
    token = await deployment.issuer.token({ roles: [role] });
  });

  afterAll(async () => {
    await deployment?.stop();
    await redisUser?.remove();
  });

  const ping = (id: string) => Buffer.from(JSON.stringify({ jsonrpc: '2.0', id, method: 'ping' }));
  const ways: [string, string, string, Record<string, string>, (id: string) => Buffer | undefined][] = [
    ['the POST lane', 'POST', '', {}, ping],
    ['a query string', 'POST', '?trace=1', {}, ping],
    ['a trailing slash', 'POST', '/', {}, ping],
    ['a compressed body', 'POST', '', { 'content-encoding': 'gzip' }, (id) => gzipSync(ping(id))],
    ['GET', 'GET', '', {}, () => undefined],
    ['DELETE', 'DELETE', '', {}, () => undefined],
  ];

  it.each(['/mcp', '/mcp/{slug}'])(
    'answers %s -32603 with the error id of the one line logging the fault, the request id known, whichever way',
    async (endpoint) => {
      const { gw, slug } = deployment;
      const path = endpoint.replace('{slug}', slug);
      for (const [way, method, suffix, headers, body] of ways) {
        const requestId = `entries-${randomUUID()}`;
        const rpcId = `ping-${randomUUID()}`;
        const payload = body(rpcId);
        const answer = await plainRequest(
          gw.url,
          method,
          `${path}${suffix}`,
          {
            authorization: `Bearer ${token}`,
            accept: method === 'GET' ? 'text/event-stream' : 'application/json, text/event-stream',
            'mcp-session-id': `unknown-${randomUUID()}`,
            'mcp-protocol-version': '2025-06-18',
            'x-request-id': requestId,
            ...(payload ? { 'content-type': 'application/json' } : {}),
            ...headers,
          },
          payload,
        );

        expect([way, answer.status, answer.headers['content-type']]).toEqual([
          way,
          500,
          'application/json; charset=utf-8',
        ]);
        const answered = JSON.parse(answer.text) as { error: { data?: { errorId?: string } } };
        expect([way, answered]).toEqual([
          way,
          {
            jsonrpc: '2.0',
            id: method === 'POST' ? rpcId : null,
            error: {
              code: -32603,
              message: 'Internal error',
              data: { errorId: expect.stringMatching(/^[0-9a-f-]{36}$/) },
            },
          },
        ]);
        expect(answer.text).not.toContain('NOPERM');
        const errorId = answered.error.data?.errorId;
        await waitUntil(() => gw.logs.lines.some((line) => line.errorId === errorId), 'the error line');
        // One line holds the error, its id and the request's (beside the access log line, which holds neither).
        const lines = gw.logs.lines.filter(
          (line) => (line.errorId === errorId || line.reqId === requestId) && line.req === undefined,
        );
        expect([way, lines]).toEqual([
          way,
          [
            expect.objectContaining({
              level: 50,
              errorId,
              reqId: requestId,
              err: expect.objectContaining({ message: expect.stringContaining('NOPERM') }),
            }),
          ],
        ]);
      }
    },
  );

  it('audits a request whose session Redis refused to read, one record a request, with its method when its body is one', async () => {
    const { gw, issuer, slug } = deployment;
    const oid = randomUUID();
    const caller = await issuer.token({ oid, roles: [role] });
    const headers = {
      authorization: `Bearer ${caller}`,
      'mcp-session-id': `unknown-${randomUUID()}`,
      'mcp-protocol-version': '2025-06-18',
    };
    const list = (id: number) => ({ jsonrpc: '2.0', id, method: 'tools/list' });
    const post = (path: string, body: unknown) =>
      request(gw.url)
        .post(path)
        .set(headers)
        .set('accept', 'application/json, text/event-stream')
        .send(body as object);
    expect((await post('/mcp', list(1))).status).toBe(500);
    expect((await post(`/mcp/${slug}`, list(2))).status).toBe(500);
    expect((await post('/mcp', [list(3), list(4)])).status).toBe(500);
    expect((await request(gw.url).get(`/mcp/${slug}`).set(headers).set('accept', 'text/event-stream')).status).toBe(
      500,
    );

    const refused = { sessionId: null, decision: 'allowed', outcome: 'rpc_error', errorKind: 'session_store_error' };
    await eventually(async () => expect(await auditedFor(gw.url, oid)).toHaveLength(4));
    expect(await auditedFor(gw.url, oid)).toEqual(
      expect.arrayContaining([
        { surface: 'aggregate', server: null, method: 'tools/list', rpcId: 1, ...refused },
        { surface: 'server', server: slug, method: 'tools/list', rpcId: 2, ...refused },
        { surface: 'aggregate', server: null, method: 'http', rpcId: null, ...refused },
        { surface: 'server', server: slug, method: 'http', rpcId: null, ...refused },
      ]),
    );
  });

  it("answers the router's refusals under /mcp as JSON-RPC errors too, and the REST bridge's as problem+json", async () => {
    const { gw, slug } = deployment;
    const refused = async (method: 'get' | 'post', path: string) => {
      const agent = request(gw.url);
      const sent = method === 'post' ? agent.post(path).send({}) : agent.get(path);
      return sent.set('authorization', `Bearer ${token}`);
    };

    const noRoute = await refused('post', `/mcp/${slug}/no/such/path`);
    expect([noRoute.status, noRoute.headers['content-type'], noRoute.body]).toEqual([
      404,
      'application/json; charset=utf-8',
      { jsonrpc: '2.0', id: null, error: { code: -32600, message: 'Not found: no resource is served at this path' } },
    ]);
    const undecodable = await refused('get', '/mcp/%ZZ<b>');
    expect([undecodable.status, undecodable.body]).toEqual([
      400,
      {
        jsonrpc: '2.0',
        id: null,
        error: { code: -32600, message: 'Bad request: a path segment is not valid percent-encoding' },
      },
    ]);
    const bridge = await refused('get', `/mcp/${slug}/tools/%ZZ`);
    expect(bridge.headers['content-type']).toMatch(/^application\/problem\+json/);
  });
});

/** Redis behind a relay the test stops: the store of the gateway's MCP sessions goes away, and comes back. */
describe('MCP sessions while Redis is away', () => {
  const relay = new TcpProxy(hostPortOf(REDIS_URL).host, hostPortOf(REDIS_URL).port);
  const role = `Greeters.${randomUUID().slice(0, 8)}`;
  let deployment: GuardedUpstream;

  beforeAll(async () => {
    await relay.start();
    deployment = await startGuardedUpstream({
      slug: 'outage',
      role,
      tools: GREET_TOOLS,
      env: { REDIS_URL: withHostPort(REDIS_URL, relay.port) },
    });
  });

  afterAll(async () => {
    relay.resume();
    await deployment?.stop();
    await relay.stop();
  });

  const post = poster(() => deployment, role);

  it('answers 503 with a JSON-RPC error, and no error line, when a session cannot be created or read', async () => {
    const { gw, slug } = deployment;
    expect((await post(`/mcp/${slug}`, initialize(1))).status).toBe(200);
    relay.cutOff();
    const logged = gw.logs.lines.length;

    const unavailable = (id: number | null) => ({
      jsonrpc: '2.0',
      id,
      error: { code: -32603, message: 'Service unavailable: the session store does not answer; try again shortly' },
    });
    // Created: on /mcp, and on /mcp/{slug} once the upstream has answered the initialize; answering the request.
    const aggregate = await post('/mcp', initialize(2));
    expect(aggregate.status).toBe(503);
    expect(aggregate.body).toEqual(unavailable(2));
    const relayed = await post(`/mcp/${slug}`, initialize(3));
    expect(relayed.status).toBe(503);
    expect(relayed.body).toEqual(unavailable(3));
    // Read: a session this replica does not hold is looked up in Redis.
    const ping = { jsonrpc: '2.0', id: 4, method: 'ping' };
    for (const path of ['/mcp', `/mcp/${slug}`]) {
      const read = await post(path, ping, {
        'mcp-session-id': `unknown-${randomUUID()}`,
        'mcp-protocol-version': '2025-06-18',
      });
      expect(read.status).toBe(503);
      expect(read.body).toEqual(unavailable(null));
    }
    // The event stream's GET reads its session alike.
    for (const path of ['/mcp', `/mcp/${slug}`]) {
      const stream = await request(gw.url)
        .get(path)
        .set('authorization', `Bearer ${await deployment.issuer.token({ roles: [role] })}`)
        .set('accept', 'text/event-stream')
        .set('mcp-session-id', `unknown-${randomUUID()}`)
        .set('mcp-protocol-version', '2025-06-18');
      expect(stream.status).toBe(503);
      expect(JSON.parse(stream.text)).toEqual(unavailable(null));
    }
    // An outage, not a fault of these requests: no error line (with a stack) for each of them.
    expect(
      gw.logs.lines
        .slice(logged)
        .filter((line) => line.level === 50 && line.err !== undefined && line.req === undefined),
    ).toEqual([]);

    relay.resume();
    await eventually(async () => {
      expect((await post('/mcp', initialize(5))).status).toBe(200);
    });
  });
  it('audits a request whose session could not be read, or is unknown, one record a request', async () => {
    const { gw, issuer, slug } = deployment;
    const oid = randomUUID();
    const token = await issuer.token({ oid, roles: [role] });
    const read = (path: string, id: number) =>
      request(gw.url)
        .post(path)
        .set('authorization', `Bearer ${token}`)
        .set('accept', 'application/json, text/event-stream')
        .set('mcp-session-id', `unknown-${randomUUID()}`)
        .set('mcp-protocol-version', '2025-06-18')
        .send({ jsonrpc: '2.0', id, method: 'tools/list' });
    relay.cutOff();
    try {
      expect((await read('/mcp', 11)).status).toBe(503);
      expect((await read(`/mcp/${slug}`, 12)).status).toBe(503);
    } finally {
      relay.resume();
    }
    await eventually(async () => expect((await read('/mcp', 13)).status).toBe(404));
    expect((await read(`/mcp/${slug}`, 14)).status).toBe(404);

    const unavailable = { decision: 'allowed', outcome: 'rpc_error', errorKind: 'session_store_unavailable' };
    const unknown = { decision: 'allowed', outcome: 'refused', errorKind: 'session_not_found' };
    const common = { method: 'tools/list', sessionId: null };
    await eventually(async () => {
      const records = await auditedFor(gw.url, oid);
      const of = (rpcId: number) => records.filter((record) => record.rpcId === rpcId);
      expect(of(11)).toEqual([{ surface: 'aggregate', server: null, rpcId: 11, ...common, ...unavailable }]);
      expect(of(12)).toEqual([{ surface: 'server', server: slug, rpcId: 12, ...common, ...unavailable }]);
      // The first attempts after the store came back may still have found it away; the last one is the 404's.
      expect(of(13)).toContainEqual({ surface: 'aggregate', server: null, rpcId: 13, ...common, ...unknown });
      expect(of(14)).toEqual([{ surface: 'server', server: slug, rpcId: 14, ...common, ...unknown }]);
    });
  });

  it("audits an initialize whose session could not be stored as the gateway's own outage, not the upstream's", async () => {
    const { gw, issuer, slug } = deployment;
    const oid = randomUUID();
    const token = await issuer.token({ oid, roles: [role] });
    const initializeOn = (path: string, id: number) =>
      request(gw.url)
        .post(path)
        .set('authorization', `Bearer ${token}`)
        .set('accept', 'application/json, text/event-stream')
        .send(initialize(id));
    relay.cutOff();
    try {
      expect((await initializeOn(`/mcp/${slug}`, 6)).status).toBe(503);
      expect((await initializeOn('/mcp', 7)).status).toBe(503);
    } finally {
      relay.resume();
    }

    const audited = async () => {
      const list = await request(gw.url)
        .get('/api/v1/audit')
        .query({ principal: `${HOME_TENANT}:${oid}`, method: 'initialize' })
        .expect(200);
      return (list.body.records as Record<string, unknown>[]).map(
        ({ surface, rpcId, decision, outcome, errorKind }) => ({
          surface,
          rpcId,
          decision,
          outcome,
          errorKind,
        }),
      );
    };
    await eventually(async () => expect(await audited()).toHaveLength(2));
    expect(await audited()).toEqual(
      expect.arrayContaining([
        {
          surface: 'server',
          rpcId: 6,
          decision: 'allowed',
          outcome: 'rpc_error',
          errorKind: 'session_store_unavailable',
        },
        {
          surface: 'aggregate',
          rpcId: 7,
          decision: 'allowed',
          outcome: 'rpc_error',
          errorKind: 'session_store_unavailable',
        },
      ]),
    );
  });
});

/**
 * Redis behind a relay that holds its answers back: connected, and silent, as a paused Redis or a black-holed path
 * is. The gateway's commands are bounded by REDIS_COMMAND_TIMEOUT_MS, so a session read or write fails then.
 */
describe('MCP sessions while Redis does not answer', () => {
  const relay = new StallableProxy(hostPortOf(REDIS_URL).host, hostPortOf(REDIS_URL).port);
  const role = `Greeters.${randomUUID().slice(0, 8)}`;
  let deployment: GuardedUpstream;

  beforeAll(async () => {
    await relay.start();
    deployment = await startGuardedUpstream({
      slug: 'stalled',
      role,
      tools: GREET_TOOLS,
      env: { REDIS_URL: withHostPort(REDIS_URL, relay.port), REDIS_COMMAND_TIMEOUT_MS: '200' },
    });
  });

  afterAll(async () => {
    relay.resume();
    await deployment?.stop();
    await relay.stop();
  });

  const post = poster(() => deployment, role);

  it('answers 503 with a JSON-RPC error once the bound passes, and no error line, when a session cannot be read or created', async () => {
    const { gw, slug } = deployment;
    expect((await post(`/mcp/${slug}`, initialize(1))).status).toBe(200);
    relay.stall();
    const logged = gw.logs.lines.length;

    const unavailable = (id: number | null) => ({
      jsonrpc: '2.0',
      id,
      error: { code: -32603, message: 'Service unavailable: the session store does not answer; try again shortly' },
    });
    // Read: the POST of a session this replica does not hold, on either endpoint, and the event stream's GET.
    const ping = { jsonrpc: '2.0', id: 2, method: 'ping' };
    for (const path of ['/mcp', `/mcp/${slug}`]) {
      const read = await post(path, ping, {
        'mcp-session-id': `unknown-${randomUUID()}`,
        'mcp-protocol-version': '2025-06-18',
      });
      expect(read.status).toBe(503);
      expect(read.body).toEqual(unavailable(null));
      const stream = await request(gw.url)
        .get(path)
        .set('authorization', `Bearer ${await deployment.issuer.token({ roles: [role] })}`)
        .set('accept', 'text/event-stream')
        .set('mcp-session-id', `unknown-${randomUUID()}`)
        .set('mcp-protocol-version', '2025-06-18');
      expect(stream.status).toBe(503);
      expect(JSON.parse(stream.text)).toEqual(unavailable(null));
    }
    // Created: the aggregate's initialize stores its session.
    const aggregate = await post('/mcp', initialize(3));
    expect(aggregate.status).toBe(503);
    expect(aggregate.body).toEqual(unavailable(3));
    // An outage, not a fault of these requests: no error line (with a stack) for each of them.
    expect(
      gw.logs.lines
        .slice(logged)
        .filter((line) => line.level === 50 && line.err !== undefined && line.req === undefined),
    ).toEqual([]);

    relay.resume();
    await eventually(async () => {
      expect((await post('/mcp', initialize(4))).status).toBe(200);
    });
  });
});

/**
 * Redis silent under a stream of requests, each charging its rate limits and storing its session: a gateway of its
 * own, so that its rate limiter starts from Redis answering.
 */
describe('the Redis connection while Redis does not answer', () => {
  const relay = new StallableProxy(hostPortOf(REDIS_URL).host, hostPortOf(REDIS_URL).port);
  const role = `Greeters.${randomUUID().slice(0, 8)}`;
  let deployment: GuardedUpstream;

  beforeAll(async () => {
    await relay.start();
    // nestjs-pino keeps the logger of the first app in the process for its injected loggers: this gateway's own.
    __resetOutOfContextForTests();
    deployment = await startGuardedUpstream({
      slug: 'silent',
      role,
      tools: GREET_TOOLS,
      env: {
        REDIS_URL: withHostPort(REDIS_URL, relay.port),
        REDIS_COMMAND_TIMEOUT_MS: '200',
        // Every request's rate-limit charge asks Redis (a budget, and no lease spent on this replica).
        RATE_LIMIT_PRINCIPAL: '1000000/1h',
        RATE_LIMIT_LEASE_PERCENT: '0',
      },
    });
  });

  afterAll(async () => {
    relay.resume();
    await deployment?.stop();
    await relay.stop();
  });

  const post = poster(() => deployment, role);

  it('closes the silent connection instead of holding every command sent meanwhile, and serves again once Redis answers', async () => {
    const { gw, slug } = deployment;
    expect((await post(`/mcp/${slug}`, initialize(5))).status).toBe(200);
    const fellBack = 'Redis is not answering rate-limit decisions: the insurance limiter decides';
    const recovered = 'Redis answers rate-limit decisions again: budgets are shared again';
    const all = (msg: string) => gw.logs.lines.filter((line) => line.msg === msg);
    const limiterDown = () => all(fellBack).length - all(recovered).length;
    const logged = gw.logs.lines.length;
    const since = (msg: string) => gw.logs.lines.slice(logged).filter((line) => line.msg === msg);
    relay.stall();

    // Requests keep coming, each charging its rate limits and storing its session: the connection they were sent on
    // is closed while Redis is still silent (ioredis held every one of them until then), and opened again.
    await eventually(async () => {
      expect((await post('/mcp', initialize(6))).status).toBe(503);
      expect(since('Redis connection lost; retrying')).not.toEqual([]);
      // The rate limiter decides alone meanwhile (said once).
      expect(limiterDown()).toBe(1);
    });
    const fallbacks = all(fellBack).length;
    expect(since('Redis connection lost; retrying')[0]).toMatchObject({
      err: { message: expect.stringMatching(/^Socket timeout/) },
    });
    // While Redis stays silent the gateway tries to connect again and again: the outage is said once a connection
    // (the client's and its subscriber's), not once an attempt.
    for (let i = 0; i < 10; i++) {
      expect((await post(`/mcp/${slug}`, initialize(7))).status).toBe(503);
      await sleep(100);
    }
    expect(since('Redis connection lost; retrying').length).toBeLessThanOrEqual(2);
    expect(all(fellBack)).toHaveLength(fallbacks);

    // Once Redis answers, the gateway serves again, and the rate limiter's probe finds it: budgets are shared again.
    relay.resume();
    await eventually(async () => {
      expect((await post('/mcp', initialize(8))).status).toBe(200);
      expect(limiterDown()).toBe(0);
    });
    await eventually(() =>
      expect(since('Redis connection restored')).toHaveLength(since('Redis connection lost; retrying').length),
    );
  });
});
