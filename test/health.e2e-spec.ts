import { randomUUID } from 'node:crypto';
import * as http from 'node:http';
import request from 'supertest';
import { HealthService } from '../src/health/health.service';
import { eventually } from './support/eventually';
import { PROFILES, startTestGateway, type TestGateway } from './support/gateway';
import { POSTGRES_URL, REDIS_URL } from './support/services';
import { hostPortOf, TcpProxy, withHostPort } from './support/tcp-proxy';

describe.each(PROFILES)('gateway edges (%s)', (profile) => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startTestGateway(profile);
  });

  afterAll(async () => {
    await gw.close();
  });

  it('answers live without consulting dependencies', async () => {
    const res = await request(gw.url).get('/health/live').expect(200);
    expect(res.body).toEqual({ status: 'ok' });
  });

  it('answers ready naming the database and store it uses', async () => {
    const res = await request(gw.url).get('/health/ready').expect(200);
    expect(res.body).toMatchObject({
      status: 'ready',
      failing: [],
      checks: {
        database: { status: 'up', kind: profile === 'embedded' ? 'embedded' : 'postgres' },
        redis: { status: 'up', kind: profile === 'embedded' ? 'memory' : 'redis' },
      },
    });
    if (profile === 'services') {
      // Where the database is, without the user name or password the URL holds.
      const { host, pathname } = new URL(POSTGRES_URL);
      expect(res.body.checks.database.target).toBe(`postgresql://${host}${pathname}`);
    }
  });

  it('summarises liveness and readiness at /health', async () => {
    const res = await request(gw.url).get('/health').expect(200);
    expect(res.body).toMatchObject({ live: true, status: 'ready' });
  });

  it.each(['/nope', '/api/v1/nope', '/health/nope'])('answers %s with 404 problem+json', async (p) => {
    const res = await request(gw.url).get(p).expect(404);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body).toMatchObject({ status: 404, code: 'not_found', title: 'Not found', instance: p });
    expect(res.body.type).toBe('urn:mcp-gateway:problem:not_found');
  });

  it('keeps /mcp closed, with a clear answer, while Entra ID is not configured', async () => {
    const res = await request(gw.url).get('/mcp/nope/deeper').expect(503);
    expect(JSON.stringify(res.body)).toMatch(/AZURE_TENANT_ID|not configured/);
    await request(gw.url).get('/api/v1').expect(200);
  });

  it('promises no time at which /mcp opens without Entra ID: only a change of configuration opens it', async () => {
    const ping = { jsonrpc: '2.0', id: 1, method: 'ping' };
    // Through Express, and through the POST lane.
    for (const res of [await request(gw.url).get('/mcp'), await request(gw.url).post('/mcp').send(ping)]) {
      expect(res.status).toBe(503);
      expect(res.body).toMatchObject({ error: 'temporarily_unavailable' });
      expect(res.headers['retry-after']).toBeUndefined();
    }
  });

  it('routes the API prefix to its module', async () => {
    const res = await request(gw.url).get('/api/v1').expect(200);
    expect(res.body).toMatchObject({ name: 'mcp-gateway', openapi: '/docs-json' });
  });

  it('answers malformed JSON with 400 problem+json and keeps serving', async () => {
    const res = await request(gw.url)
      .post('/api/v1')
      .set('content-type', 'application/json')
      .send('{"name": "x",,,')
      .expect(400);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body).toMatchObject({ status: 400, code: 'validation_error' });
    expect(res.body.detail).toBe('the request body is not valid JSON');
    expect(JSON.stringify(res.body)).not.toContain('"name"');
    await request(gw.url).get('/health/live').expect(200);
  });

  it('answers an oversized body with 413 problem+json', async () => {
    const res = await request(gw.url)
      .post('/api/v1')
      .set('content-type', 'application/json')
      .send(JSON.stringify({ blob: 'x'.repeat(2 * 1024 * 1024) }))
      .expect(413);
    expect(res.body).toMatchObject({
      status: 413,
      code: 'validation_error',
      detail: 'the request body is larger than 1048576 bytes',
    });
  });

  it('answers an unsupported method with 405, Allow and problem+json, never a 5xx', async () => {
    const res = await request(gw.url).delete('/health/live');
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe('GET, HEAD, OPTIONS');
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  });

  it('echoes a well-formed x-request-id and replaces a hostile one', async () => {
    const given = await request(gw.url).get('/health/live').set('x-request-id', 'abc-123').expect(200);
    expect(given.headers['x-request-id']).toBe('abc-123');
    const hostile = await request(gw.url).get('/health/live').set('x-request-id', 'a b <script>').expect(200);
    expect(hostile.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    const none = await request(gw.url).get('/health/live').expect(200);
    expect(none.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(none.headers['x-request-id']).not.toBe(hostile.headers['x-request-id']);
  });

  it('logs requests as JSON with the request id, never the credentials', async () => {
    await request(gw.url)
      .get('/api/v1/secret-probe')
      .set('x-request-id', 'log-probe-1')
      .set('authorization', 'Bearer super-secret-token')
      .set('cookie', 'session=cookie-secret')
      // Credentials the gateway never reads, which clients and the proxies in front of it send.
      .set('x-api-key', 'api-key-secret')
      .set('ocp-apim-subscription-key', 'apim-key-secret')
      .set('x-ms-token-aad-access-token', 'easy-auth-token-secret')
      .set('x-auth-token', 'auth-token-secret')
      .set('user-agent', 'log-probe-agent')
      .expect(404);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const line = gw.logs.lines.find((entry) => (entry.req as { id?: string } | undefined)?.id === 'log-probe-1');
    expect(line).toBeDefined();
    expect(line).toMatchObject({
      res: { statusCode: 404 },
      req: { headers: { 'user-agent': 'log-probe-agent', 'x-api-key': '[redacted]' } },
    });
    const text = JSON.stringify(gw.logs.lines);
    const secrets = ['super-secret-token', 'cookie-secret', 'api-key-secret', 'apim-key-secret', 'auth-token-secret'];
    for (const secret of secrets) expect(text).not.toContain(secret);
    expect(text).toContain('[redacted]');
  });

  it('serves Swagger UI, the OpenAPI 3 document and ReDoc without a CDN', async () => {
    const doc = await request(gw.url).get('/docs-json').expect(200);
    expect(doc.body.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.body.paths)).toEqual(expect.arrayContaining(['/health/ready', '/api/v1']));
    const ui = await request(gw.url).get('/docs').redirects(1).expect(200);
    expect(ui.text).toContain('swagger-ui');
    expect(ui.text).not.toMatch(/https?:\/\/(cdn|unpkg|cdnjs)/);
    const redoc = await request(gw.url).get('/redoc').expect(200);
    expect(redoc.headers['content-type']).toMatch(/^text\/html/);
    expect(redoc.text).toContain('spec-url="/docs-json"');
    expect(redoc.text).not.toMatch(/https?:\/\//);
    const bundle = await request(gw.url).get('/redoc/redoc.standalone.js').expect(200);
    expect(bundle.headers['content-type']).toMatch(/javascript/);
    expect(bundle.text.length).toBeGreaterThan(100_000);
  });
});

describe('readiness follows the dependencies (PostgreSQL and Redis behind relays)', () => {
  const DATABASE_PASSWORD = `pw-${randomUUID()}`;
  const pgRelay = new TcpProxy(hostPortOf(POSTGRES_URL).host, hostPortOf(POSTGRES_URL).port);
  const redisRelay = new TcpProxy(hostPortOf(REDIS_URL).host, hostPortOf(REDIS_URL).port);
  let gw: TestGateway;

  beforeAll(async () => {
    await pgRelay.start();
    await redisRelay.start();
    // PostgreSQL here trusts every local connection: the password is never asked for, only carried.
    const databaseUrl = new URL(withHostPort(POSTGRES_URL, pgRelay.port));
    databaseUrl.password = DATABASE_PASSWORD;
    gw = await startTestGateway('services', {
      DATABASE_URL: databaseUrl.toString(),
      REDIS_URL: withHostPort(REDIS_URL, redisRelay.port),
    });
  });

  afterAll(async () => {
    await pgRelay.start();
    await redisRelay.start();
    await gw.close();
    await pgRelay.stop();
    await redisRelay.stop();
  });

  it('turns 503 naming Redis when Redis stops, while live stays 200, and recovers', async () => {
    await request(gw.url).get('/health/ready').expect(200);
    await redisRelay.refuse();
    const down = await request(gw.url).get('/health/ready').expect(503);
    expect(down.body).toMatchObject({
      status: 'unavailable',
      failing: ['redis'],
      checks: { redis: { status: 'down' } },
    });
    await request(gw.url).get('/health/live').expect(200);
    await request(gw.url).get('/health').expect(503);
    await redisRelay.start();
    await eventually(async () => {
      await request(gw.url).get('/health/ready').expect(200);
    });
  });

  it('turns 503 naming the database when PostgreSQL stops, and recovers', async () => {
    await pgRelay.refuse();
    const down = await request(gw.url).get('/health/ready').expect(503);
    expect(down.body).toMatchObject({ failing: ['database'], checks: { database: { status: 'down' } } });
    // One line an operator can act on: not Prisma's invocation text, nothing of the URL but where the server is.
    expect(down.body.checks.database.error).toBe(`the database server at 127.0.0.1:${pgRelay.port} cannot be reached`);
    expect(JSON.stringify(down.body)).not.toContain(DATABASE_PASSWORD);
    await request(gw.url).get('/health/live').expect(200);
    // An outage, not a fault of the request: 503, and no error line for each request.
    const logged = gw.logs.lines.length;
    const refused = await request(gw.url).get('/api/v1/servers').expect(503);
    expect(refused.body).toMatchObject({ code: 'service_unavailable', detail: expect.stringContaining('database') });
    expect(refused.body).not.toHaveProperty('errorId');
    // A raw query ($queryRaw: the discovery search) too, which Prisma reports under P2010 with the adapter's cause.
    const search = await request(gw.url).get('/api/v1/discovery/tools?q=anything').expect(503);
    expect(search.body).toMatchObject({ code: 'service_unavailable', detail: expect.stringContaining('database') });
    expect(search.body).not.toHaveProperty('errorId');
    expect(gw.logs.lines.slice(logged).filter((line) => line.msg === 'unhandled error')).toEqual([]);
    await pgRelay.start();
    await eventually(async () => {
      await request(gw.url).get('/health/ready').expect(200);
    });
  });
});

describe('graceful shutdown', () => {
  it('finishes an in-flight request, refuses new work and closes cleanly', async () => {
    const gw = await startTestGateway('services');
    const { port } = new URL(gw.url);
    const body = JSON.stringify({ probe: 'in-flight' });
    // A request whose body is still arriving when shutdown begins.
    const pending = new Promise<{ status: number; connection?: string }>((resolve, reject) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: '/api/v1/in-flight',
          headers: { 'content-type': 'application/json', 'content-length': body.length },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection }));
        },
      );
      req.on('error', reject);
      req.write(body.slice(0, 5));
      setTimeout(() => req.end(body.slice(5)), 300);
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const closing = gw.close();
    // Readiness turns first, while the request is still in flight.
    const readiness = await gw.gateway.app.get(HealthService).readiness();
    expect(readiness.status).toBe('draining');
    const answered = await pending;
    expect(answered.status).toBe(404);
    expect(answered.connection).toBe('close');
    await closing;
    await expect(request(gw.url).get('/health/live')).rejects.toThrow();
  });
});
