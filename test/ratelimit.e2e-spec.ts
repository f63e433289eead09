import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import Redis from 'ioredis';
import request from 'supertest';
import { GatewayRateLimiter } from '../src/ratelimit/gateway-rate-limiter';
import { principalKeyPrefix } from '../src/ratelimit/rate-limit-plan';
import { RateLimitStats } from '../src/ratelimit/rate-limit-stats';
import { entraEnv, GUEST_TENANT, HOME_TENANT, LocalEntraIssuer } from './support/entra-issuer';
import { DocumentedResponses } from './support/documented-responses';
import { eventually, waitUntil } from './support/eventually';
import { startTestGateway, type TestGateway } from './support/gateway';
import { REDIS_URL } from './support/services';
import { StallableProxy } from './support/stallable-proxy';
import { hostPortOf, TcpProxy } from './support/tcp-proxy';
import { GREET_TOOLS, TestUpstream } from './support/upstream';

const ACCEPT = 'application/json, text/event-stream';
/** What the limiter logs when it starts deciding without Redis, and when Redis decides again. */
const LOST = 'Redis is not answering rate-limit decisions: the insurance limiter decides';
const BACK = 'Redis answers rate-limit decisions again: budgets are shared again';
const INITIALIZE = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'ratelimit-test', version: '1' } },
};

/**
 * Rate limits through real /mcp requests, on the real PostgreSQL and on the
 * real Redis reached through a TCP proxy the test can cut. Every test spends
 * from budgets of its own: a tenant made up for this file and fresh callers.
 */
describe('rate limits on the MCP endpoints (Redis)', () => {
  const tenant = randomUUID();
  const run = randomUUID().slice(0, 8);
  const slug = `rl-greet-${run}`;
  /** A server whose echoHai only admins may call, with one budget of that tool shared by every caller. */
  const deniedSlug = `rl-deny-${run}`;
  /** A server with one budget shared by every caller, and one for its echoHai. */
  const sharedSlug = `rl-shared-${run}`;
  const role = `RateLimited.${run}`;
  const strictRole = `Strict.${run}`;
  let issuer: LocalEntraIssuer;
  let upstream: TestUpstream;
  let proxy: TcpProxy;
  let gw: TestGateway;
  let dir: string;
  let serverId: string;

  beforeAll(async () => {
    issuer = await LocalEntraIssuer.start();
    upstream = await TestUpstream.start('greet', GREET_TOOLS);
    const redis = hostPortOf(REDIS_URL);
    proxy = new TcpProxy(redis.host, redis.port);
    await proxy.start();
    dir = mkdtempSync(path.join(tmpdir(), 'rl-e2e-'));
    const policyFile = path.join(dir, 'policy.json');
    writeFileSync(
      policyFile,
      JSON.stringify({
        roles: { [strictRole]: { rate: '4/1d', onRedisDown: 'refuse' } },
        servers: {
          [slug]: { tools: { echoHai: { cost: 3 } } },
          [deniedSlug]: { scope: 'all', tools: { echoHai: { rate: '2/1d' } } },
          [sharedSlug]: { rate: '100/1d', scope: 'all', tools: { echoHai: { rate: '50/1d' } } },
        },
      }),
    );
    gw = await startTestGateway('services', {
      ...entraEnv(issuer, { AZURE_ALLOWED_TENANTS: `${HOME_TENANT},${GUEST_TENANT},${tenant}` }),
      REDIS_URL: `redis://127.0.0.1:${proxy.port}`,
      UPSTREAM_ALLOWED_HOSTS: 'loopback',
      MCP_STATELESS: 'true',
      RATE_LIMIT_FILE: policyFile,
      RATE_LIMIT_PRINCIPAL: '4/1d',
      // Slow enough to stay visible in the admin view; this file spends a few dozen units of it.
      RATE_LIMIT_TENANT: '1000/1d',
      RATE_LIMIT_REPLICAS: '2',
      RATE_LIMIT_IP: 'off',
    });
    const created = await request(gw.url)
      .post('/api/v1/servers')
      .send({ name: `com.example.ratelimit/${slug}`, slug, url: upstream.url, allowedRoles: [role] })
      .expect(201);
    serverId = created.body.id as string;
    await eventually(async () => {
      const caps = await request(gw.url).get(`/api/v1/servers/${serverId}/capabilities`).expect(200);
      expect(JSON.stringify(caps.body)).toContain('echoHai');
    });
  });

  afterAll(async () => {
    if (serverId) await request(gw.url).delete(`/api/v1/servers/${serverId}`);
    await gw?.close();
    await proxy?.stop();
    await upstream?.stop();
    await issuer?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A caller of its own: a fresh oid in this file's tenant. */
  async function caller(roles: string[] = [role]): Promise<{ token: string; key: string }> {
    const oid = randomUUID();
    const token = await issuer.token({ tid: tenant, oid, roles }, { tid: tenant });
    return { token, key: `${tenant}:${oid}` };
  }

  function post(token: string, target: string, body: unknown) {
    return request(gw.url)
      .post(target)
      .set('authorization', `Bearer ${token}`)
      .set('accept', ACCEPT)
      .set('content-type', 'application/json')
      .send(JSON.stringify(body));
  }

  function expectRefusal(res: request.Response, policy: string): void {
    expect(res.status).toBe(429);
    expect(res.headers['retry-after']).toMatch(/^[1-9]\d*$/);
    expect(res.headers['ratelimit-policy']).toContain(`"${policy}";q=`);
    expect(res.headers.ratelimit).toMatch(new RegExp(`"${policy.replace(/\./g, '\\.')}";r=0;t=[1-9]\\d*`));
  }

  it('tells each caller its remaining budget on success, and refuses the request past it with 429 on /mcp', async () => {
    const { token } = await caller();
    const first = await post(token, '/mcp', INITIALIZE);
    expect(first.status).toBe(200);
    expect(first.headers['ratelimit-policy']).toBe('"principal";q=4;w=86400, "tenant";q=1000;w=86400');
    expect(first.headers.ratelimit).toMatch(/^"principal";r=3;t=\d+, "tenant";r=\d+;t=\d+$/);
    for (const remaining of [2, 1, 0]) {
      const res = await post(token, '/mcp', INITIALIZE);
      expect(res.status).toBe(200);
      expect(res.headers.ratelimit).toMatch(new RegExp(`^"principal";r=${remaining};`));
    }
    const refused = await post(token, '/mcp', INITIALIZE);
    expectRefusal(refused, 'principal');
    expect(refused.body).toMatchObject({
      jsonrpc: '2.0',
      id: 1,
      error: { code: -32029, data: { retryAfter: Number(refused.headers['retry-after']), policy: 'principal' } },
    });
    // Another caller of the same tenant is not affected.
    expect((await post((await caller()).token, '/mcp', INITIALIZE)).status).toBe(200);
  });

  it('refuses on /mcp/{slug} once the budget is spent', async () => {
    const { token } = await caller();
    for (let i = 0; i < 4; i++) expect((await post(token, `/mcp/${slug}`, INITIALIZE)).status).toBe(200);
    const refused = await post(token, `/mcp/${slug}`, INITIALIZE);
    expectRefusal(refused, 'principal');
    expect(refused.body.error).toMatchObject({ code: -32029, data: { retryAfter: expect.any(Number) } });
  });

  it('weighs a tool call by its cost on the REST bridge and answers problem+json 429 when it does not fit', async () => {
    const { token } = await caller();
    const list = await request(gw.url).get(`/mcp/${slug}/tools`).set('authorization', `Bearer ${token}`);
    expect(list.status).toBe(200);
    expect(list.headers.ratelimit).toMatch(/^"principal";r=3;/);
    const call = () =>
      request(gw.url)
        .post(`/mcp/${slug}/tools/echoHai`)
        .set('authorization', `Bearer ${token}`)
        .send({ userName: 'Ada' });
    const allowed = await call();
    expect(allowed.status).toBe(200);
    expect(allowed.headers.ratelimit).toMatch(/^"principal";r=0;/); // 1 + 3 units spent
    const refused = await call();
    expectRefusal(refused, 'principal');
    expect(refused.headers['content-type']).toContain('application/problem+json');
    expect(refused.body).toMatchObject({ status: 429, code: 'rate_limited' });
  });

  it('spends no budget of a tool on calls of callers the access policy refuses it, so they cannot drain a shared one', async () => {
    const created = await request(gw.url)
      .post('/api/v1/servers')
      .send({
        name: `com.example.ratelimit/${deniedSlug}`,
        slug: deniedSlug,
        url: upstream.url,
        allowedRoles: [role],
        toolRules: { deny: ['echoHai'] },
      })
      .expect(201);
    try {
      // The tool is in the gateway's catalog (listed to a caller allowed it), so that a 404 below is the policy's.
      const admin = await caller(['Gateway.Admin']);
      await eventually(async () => {
        const listed = await request(gw.url)
          .get(`/mcp/${deniedSlug}/tools`)
          .set('authorization', `Bearer ${admin.token}`)
          .expect(200);
        expect((listed.body.tools as { name: string }[]).map((tool) => tool.name)).toContain('echoHai');
      });
      const denied = await caller();
      const restCall = (token: string) =>
        request(gw.url)
          .post(`/mcp/${deniedSlug}/tools/echoHai`)
          .set('authorization', `Bearer ${token}`)
          .send({ userName: 'Mallory' });
      for (let i = 0; i < 2; i++) expect((await restCall(denied.token)).status).toBe(404);
      const init = await post(denied.token, `/mcp/${deniedSlug}`, INITIALIZE).expect(200);
      const onSlug = await post(denied.token, `/mcp/${deniedSlug}`, {
        jsonrpc: '2.0',
        id: 2,
        method: 'tools/call',
        params: { name: 'echoHai', arguments: { userName: 'Mallory' } },
      }).set('mcp-session-id', String(init.headers['mcp-session-id']));
      expect(onSlug.status).toBe(200);
      expect(onSlug.body.error).toMatchObject({ code: -32602, message: 'Tool echoHai not found' });

      // The tool's shared budget is whole for the callers it is meant for.
      const allowed = await restCall(admin.token);
      expect(allowed.status).toBe(200);
      expect(allowed.headers.ratelimit).toContain(`"tool.${deniedSlug}.echoHai";r=1;`);
    } finally {
      await request(gw.url).delete(`/api/v1/servers/${created.body.id}`);
    }
  });

  it('answers the requests of a batch past the budget with JSON-RPC errors carrying data.retryAfter', async () => {
    const { token } = await caller();
    const batch = Array.from({ length: 6 }, (_, index) => ({ jsonrpc: '2.0', id: index + 1, method: 'tools/list' }));
    const res = await post(token, '/mcp', batch);
    expect(res.status).toBe(200);
    const answers = res.body as {
      id: number;
      result?: unknown;
      error?: { code: number; data: { retryAfter: number } };
    }[];
    expect(answers.map((answer) => answer.id)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(answers.slice(0, 4).every((answer) => answer.result !== undefined)).toBe(true);
    for (const answer of answers.slice(4)) {
      expect(answer.error).toMatchObject({ code: -32029, data: { retryAfter: expect.any(Number) } });
      expect(answer.error!.data.retryAfter).toBeGreaterThanOrEqual(1);
    }
  });

  it('refuses a batch that uses one request id twice, so that a refused call cannot go out under a ping', async () => {
    const { token } = await caller();
    const init = await post(token, `/mcp/${slug}`, INITIALIZE);
    expect(init.status).toBe(200);
    const session = String(init.headers['mcp-session-id']);
    const onSlug = (body: unknown) => post(token, `/mcp/${slug}`, body).set('mcp-session-id', session);
    const call = (id: number | string, name = 'echoHai') => ({
      jsonrpc: '2.0',
      id,
      method: 'tools/call',
      params: { name, arguments: { userName: 'Mallory' } },
    });
    const ping = (id: number | string) => ({ jsonrpc: '2.0', id, method: 'ping' });
    expect((await onSlug(call(8))).status).toBe(200); // 1 + 3 units: the budget is spent
    expectRefusal(await onSlug(call(9)), 'principal');

    for (const batch of [
      [call(9), ping(9)],
      [ping(9), call(9)],
      [call(9), ping('9')],
      [call('x'), { jsonrpc: '2.0', method: 'notifications/progress', params: {} }, ping('x')],
    ]) {
      const res = await onSlug(batch);
      expect([res.status, res.body.error?.code]).toEqual([400, -32600]);
      expect(res.body.error.message).toMatch(/id .* is used twice/);
    }
    const aggregate = await post(token, '/mcp', [call(9, `${slug}__echoHai`), ping(9)]);
    expect([aggregate.status, aggregate.body.error?.code]).toEqual([400, -32600]);

    // Distinct ids, and an answer to the upstream sharing a request's id, are a batch as before: the call is refused.
    const fine = await onSlug([call(10), ping(11), { jsonrpc: '2.0', id: 10, result: {} }]).set(
      'accept',
      'application/json',
    );
    expect(fine.status).toBe(200);
    const answers = fine.body as { id: number; error?: { code: number } }[];
    expect(answers.find((answer) => answer.id === 10)?.error?.code).toBe(-32029);
  });

  it('lets ping and notifications through without spending budget', async () => {
    const { token } = await caller();
    for (let i = 0; i < 6; i++) {
      expect((await post(token, '/mcp', { jsonrpc: '2.0', id: i, method: 'ping' })).status).toBe(200);
    }
    expect((await post(token, '/mcp', { jsonrpc: '2.0', method: 'notifications/initialized' })).status).toBe(202);
    const res = await post(token, '/mcp', INITIALIZE);
    expect(res.headers.ratelimit).toMatch(/^"principal";r=3;/);
  });

  it("shows a caller's buckets at GET /api/v1/ratelimits, and refuses malformed principals", async () => {
    const { token, key } = await caller();
    await post(token, '/mcp', INITIALIZE).expect(200);
    await post(token, '/mcp', INITIALIZE).expect(200);
    const view = await request(gw.url).get('/api/v1/ratelimits').query({ principal: key }).expect(200);
    expect(view.body).toMatchObject({ principal: key, store: 'redis' });
    const byPolicy = Object.fromEntries(
      (view.body.buckets as { policy: string; remaining: number }[]).map((b) => [b.policy, b]),
    );
    expect(byPolicy.principal).toMatchObject({ quota: 4, windowSeconds: 86400, remaining: 2 });
    expect(byPolicy.tenant).toMatchObject({ quota: 1000, windowSeconds: 86400 });
    expect(byPolicy.tenant?.remaining).toBeLessThan(1000);
    const unknown = await request(gw.url)
      .get('/api/v1/ratelimits')
      .query({ principal: `${tenant}:${randomUUID()}` })
      .expect(200);
    // A caller that spent nothing: its tenant's budget, and those every caller shares that others spent from.
    const unknownBuckets = unknown.body.buckets as { policy: string; scope: string }[];
    expect(unknownBuckets.filter((b) => b.scope !== 'all')).toEqual([expect.objectContaining({ policy: 'tenant' })]);
    expect(byPolicy.principal).toMatchObject({ scope: 'principal' });
    expect(byPolicy.tenant).toMatchObject({ scope: 'tenant' });

    for (const query of [
      {},
      { principal: '' },
      { principal: 'nope' },
      { principal: `${tenant}:*` },
      { principal: `${tenant}:a[b]` },
      { principal: `${tenant.toUpperCase()}:x` },
      { principal: `${tenant}:${'x'.repeat(300)}` },
      { principal: `${tenant}:x\r\nrl:*` },
      { principal: key, extra: '1' },
    ]) {
      const res = await request(gw.url).get('/api/v1/ratelimits').query(query);
      expect([res.status, res.body.code]).toEqual([400, 'validation_error']);
    }
    const twice = await request(gw.url).get(`/api/v1/ratelimits?principal=${key}&principal=${key}`);
    expect(twice.status).toBe(400);

    const docs = await request(gw.url).get('/docs-json').expect(200);
    const operation = docs.body.paths['/api/v1/ratelimits']?.get as { parameters: { name: string }[] } | undefined;
    expect(operation?.parameters.map((parameter) => parameter.name)).toEqual(['principal']);
    expect(Object.keys((operation as { responses: object } | undefined)?.responses ?? {})).toEqual(
      expect.arrayContaining(['200', '400', '503']),
    );
  });

  it('shows every caller the budgets all callers share (scope: all) once anyone spent from them, as its own are', async () => {
    const created = await request(gw.url)
      .post('/api/v1/servers')
      .send({ name: `com.example.ratelimit/${sharedSlug}`, slug: sharedSlug, url: upstream.url, allowedRoles: [role] })
      .expect(201);
    try {
      const admin = await caller(['Gateway.Admin']);
      await eventually(async () => {
        const listed = await request(gw.url)
          .get(`/mcp/${sharedSlug}/tools`)
          .set('authorization', `Bearer ${admin.token}`)
          .expect(200);
        expect((listed.body.tools as { name: string }[]).map((tool) => tool.name)).toContain('echoHai');
      });
      await request(gw.url)
        .post(`/mcp/${sharedSlug}/tools/echoHai`)
        .set('authorization', `Bearer ${admin.token}`)
        .send({ userName: 'Ada' })
        .expect(200);

      // Another caller, which never reached the server, is counted against what the admin spent of both.
      const { key } = await caller();
      const view = await request(gw.url).get('/api/v1/ratelimits').query({ principal: key }).expect(200);
      (await DocumentedResponses.of(gw.url)).check('get', '/api/v1/ratelimits', view);
      const buckets = view.body.buckets as { policy: string; scope: string; quota: number; remaining: number }[];
      const server = buckets.find((b) => b.policy === `server.${sharedSlug}`);
      expect(server).toMatchObject({ scope: 'all', quota: 100 });
      expect(server!.remaining).toBeLessThan(100);
      expect(buckets).toContainEqual(
        expect.objectContaining({ policy: `tool.${sharedSlug}.echoHai`, scope: 'all', quota: 50, remaining: 49 }),
      );
      expect(buckets.filter((b) => b.scope === 'principal')).toEqual([]);
    } finally {
      await request(gw.url).delete(`/api/v1/servers/${created.body.id}`);
    }
  });

  it("falls back to each replica's share while Redis is cut, refuses fail-closed callers, and shares again once Redis is back", async () => {
    const stats = gw.gateway.app.get(RateLimitStats);
    const { token, key } = await caller();
    const strict = await caller([role, strictRole]);
    expect((await post(token, '/mcp', INITIALIZE)).status).toBe(200); // 1 of 4 spent in Redis
    expect((await post(strict.token, '/mcp', INITIALIZE)).status).toBe(200);
    const before = stats.snapshot();
    const logged = gw.logs.lines.length;
    const linesSaying = (msg: string) => gw.logs.lines.slice(logged).filter((line) => line.msg === msg);

    await proxy.refuse();
    try {
      // The connection is seen gone before a request asks: no decision reaches Redis to fail.
      const limiter = gw.gateway.app.get(GatewayRateLimiter);
      await waitUntil(() => !limiter.redisBuckets!.connected, 'the gateway sees Redis gone');
      // RATE_LIMIT_REPLICAS=2: this replica alone allows half of the 4.
      expect((await post(token, '/mcp', INITIALIZE)).status).toBe(200);
      expect((await post(token, '/mcp', INITIALIZE)).status).toBe(200);
      const refused = await post(token, '/mcp', INITIALIZE);
      expectRefusal(refused, 'principal');
      expect(refused.headers['ratelimit-policy']).toContain('"principal";q=2;');
      // The strict tier refuses rather than guess.
      const closed = await post(strict.token, '/mcp', INITIALIZE);
      expectRefusal(closed, 'principal');
      expect(closed.headers['retry-after']).toBe('5');
      const during = stats.snapshot();
      expect(during.redis).toBe('down');
      expect(during.redisOutages).toBe(before.redisOutages + 1);
      expect(during.redisFallbacks).toBe(before.redisFallbacks + 4);
      expect(during.decisions).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ policy: 'principal', outcome: 'refused', source: 'insurance' }),
          expect.objectContaining({ policy: 'principal', outcome: 'refused', source: 'fail_closed' }),
        ]),
      );
      // The admin view says plainly that it cannot read the shared buckets.
      const view = await request(gw.url).get('/api/v1/ratelimits').query({ principal: key });
      expect([view.status, view.body.code]).toEqual([503, 'service_unavailable']);
      // The outage is logged once, however many decisions it takes.
      expect(linesSaying(LOST)).toEqual([expect.objectContaining({ redis: 'disconnected', level: 40 })]);
    } finally {
      await proxy.start();
    }

    await eventually(async () => {
      await request(gw.url).get('/api/v1/ratelimits').query({ principal: key }).expect(200);
    });
    // Back on the shared budget: 1 was spent there before the cut, so 3 remain.
    for (let i = 0; i < 3; i++) expect((await post(token, '/mcp', INITIALIZE)).status).toBe(200);
    expectRefusal(await post(token, '/mcp', INITIALIZE), 'principal');
    expect(stats.snapshot().redis).toBe('up');
    expect((await post(strict.token, '/mcp', INITIALIZE)).status).toBe(200);
    expect(linesSaying(LOST)).toHaveLength(1);
    expect(linesSaying(BACK)).toHaveLength(1);
  });
});

/**
 * A Redis that accepts commands and never answers must cost each decision at most the timeout, never a hang; the
 * commands it was sent meanwhile still run there, and must not charge the requests a second time.
 */
describe('rate limits when Redis hangs', () => {
  const tenant = randomUUID();
  const strictRole = `Strict.${randomUUID().slice(0, 8)}`;
  let issuer: LocalEntraIssuer;
  let proxy: StallableProxy;
  let gw: TestGateway;
  let dir: string;

  beforeAll(async () => {
    issuer = await LocalEntraIssuer.start();
    const redis = hostPortOf(REDIS_URL);
    proxy = new StallableProxy(redis.host, redis.port);
    await proxy.start();
    dir = mkdtempSync(path.join(tmpdir(), 'rl-hang-'));
    const policyFile = path.join(dir, 'policy.json');
    writeFileSync(policyFile, JSON.stringify({ roles: { [strictRole]: { rate: '3/1d', onRedisDown: 'refuse' } } }));
    gw = await startTestGateway('services', {
      ...entraEnv(issuer, { AZURE_ALLOWED_TENANTS: `${HOME_TENANT},${GUEST_TENANT},${tenant}` }),
      REDIS_URL: `redis://127.0.0.1:${proxy.port}`,
      MCP_STATELESS: 'true',
      RATE_LIMIT_FILE: policyFile,
      RATE_LIMIT_PRINCIPAL: '3/1d',
      RATE_LIMIT_IP: 'off',
    });
  });

  afterAll(async () => {
    proxy?.resume();
    await gw?.close();
    await proxy?.stop();
    await issuer?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A caller of its own, and its initialize on /mcp. */
  async function caller(roles: string[] = []): Promise<{ key: string; initialize: () => request.Test }> {
    const oid = randomUUID();
    const token = await issuer.token({ tid: tenant, oid, roles }, { tid: tenant });
    return {
      key: `${tenant}:${oid}`,
      initialize: () =>
        request(gw.url).post('/mcp').set('authorization', `Bearer ${token}`).set('accept', ACCEPT).send(INITIALIZE),
    };
  }

  /** What remains of the caller's own budget in Redis. */
  async function remainingInRedis(key: string): Promise<number | undefined> {
    const view = await request(gw.url).get('/api/v1/ratelimits').query({ principal: key }).expect(200);
    return (view.body.buckets as { policy: string; remaining: number }[]).find((b) => b.policy === 'principal')
      ?.remaining;
  }

  /** Holds Redis's answers back while `during` runs, then lets them through and waits until Redis decides again. */
  async function whileRedisHangs(during: () => Promise<void>): Promise<void> {
    const stats = gw.gateway.app.get(RateLimitStats);
    proxy.stall();
    try {
      await during();
    } finally {
      proxy.resume();
    }
    await eventually(() => expect(stats.snapshot().redis).toBe('up'));
  }

  it('decides with the insurance limiter once Redis does not answer in time, and returns to Redis after', async () => {
    const stats = gw.gateway.app.get(RateLimitStats);
    const { key, initialize } = await caller();
    expect((await initialize()).headers.ratelimit).toMatch(/^"principal";r=2;/); // spent in Redis
    const fallbacks = stats.snapshot().redisFallbacks;

    await whileRedisHangs(async () => {
      const answer = await initialize();
      expect(answer.status).toBe(200);
      // The insurance limiter's own bucket: a fresh one, since Redis holds the first unit.
      expect(answer.headers.ratelimit).toMatch(/^"principal";r=2;/);
      expect(stats.snapshot()).toMatchObject({ redis: 'down', redisFallbacks: fallbacks + 1 });
    });
    // The stalled charge did reach Redis and was applied there, then given back once its answer came: the request
    // counted once, in the insurance limiter that decided it.
    expect(await remainingInRedis(key)).toBe(2);
    expect((await initialize()).headers.ratelimit).toMatch(/^"principal";r=1;/);
    expect((await initialize()).headers.ratelimit).toMatch(/^"principal";r=0;/);
    expect((await initialize()).status).toBe(429);
  });

  it('leaves nothing spent in Redis by a request refused while Redis hung, once its stalled charge lands', async () => {
    const { key, initialize } = await caller([strictRole]);
    expect((await initialize()).headers.ratelimit).toMatch(/^"principal";r=2;/);

    await whileRedisHangs(async () => {
      // The tier is fail-closed: refused without Redis, while its charge waits in Redis's answers.
      const refused = await initialize();
      expect([refused.status, refused.headers['retry-after']]).toEqual([429, '5']);
    });
    expect(await remainingInRedis(key)).toBe(2);
  });
});

/**
 * The connection to Redis lost while a charge waits for its answer: Redis ran it, its answer never comes. ioredis
 * would send it again on the next connection, and the request would count twice.
 */
describe('rate limits when the connection to Redis is lost under a charge', () => {
  const tenant = randomUUID();
  let issuer: LocalEntraIssuer;
  let proxy: StallableProxy;
  let direct: Redis;
  let gw: TestGateway;

  beforeAll(async () => {
    issuer = await LocalEntraIssuer.start();
    const redis = hostPortOf(REDIS_URL);
    proxy = new StallableProxy(redis.host, redis.port);
    await proxy.start();
    direct = new Redis(REDIS_URL);
    gw = await startTestGateway('services', {
      ...entraEnv(issuer, { AZURE_ALLOWED_TENANTS: `${HOME_TENANT},${tenant}` }),
      REDIS_URL: `redis://127.0.0.1:${proxy.port}`,
      MCP_STATELESS: 'true',
      RATE_LIMIT_PRINCIPAL: '3/1d',
      RATE_LIMIT_IP: 'off',
      // The decision waits for Redis long enough to see a charge sent again answered.
      RATE_LIMIT_REDIS_TIMEOUT_MS: '10000',
      REDIS_COMMAND_TIMEOUT_MS: '600000',
    });
  });

  afterAll(async () => {
    proxy?.resume();
    await gw?.close();
    await proxy?.stop();
    direct?.disconnect();
    await issuer?.stop();
  });

  it('counts the request at most once in Redis', async () => {
    const oid = randomUUID();
    const token = await issuer.token({ tid: tenant, oid }, { tid: tenant });
    const initialize = () =>
      request(gw.url).post('/mcp').set('authorization', `Bearer ${token}`).set('accept', ACCEPT).send(INITIALIZE);
    const bucket = `${principalKeyPrefix(`${tenant}:${oid}`)}principal`;

    proxy.stall();
    const answer = initialize().then((response) => response);
    await eventually(async () => expect(await direct.get(bucket)).not.toBeNull());
    proxy.cut();

    expect((await answer).status).toBe(200);
    // One unit of three spent in Redis: the charge it ran once, not again on the new connection.
    await eventually(async () => {
      const view = await request(gw.url)
        .get('/api/v1/ratelimits')
        .query({ principal: `${tenant}:${oid}` })
        .expect(200);
      expect(view.body.buckets).toContainEqual(expect.objectContaining({ policy: 'principal', remaining: 2 }));
    });
  });
});
