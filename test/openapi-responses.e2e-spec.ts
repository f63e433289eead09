import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { createZodDto } from '../src/common/zod-dto';
import { z } from 'zod';
import { auditOf, exchangeFactory } from './support/audit';
import { DocumentedResponses } from './support/documented-responses';
import { startTestGateway, type TestGateway } from './support/gateway';
import { serverBody } from './support/registry';
import { GREET_TOOLS, TestUpstream } from './support/upstream';

describe('responses match their description in /docs-json', () => {
  let gw: TestGateway;
  let upstream: TestUpstream;
  let documented: DocumentedResponses;
  const tag = `oas-${randomUUID().slice(0, 8)}`;
  const slug = `oas-${randomUUID().slice(0, 8)}`;
  const api = () => request(gw.url);

  beforeAll(async () => {
    upstream = await TestUpstream.start('greet', GREET_TOOLS);
    gw = await startTestGateway('services', { UPSTREAM_ALLOWED_HOSTS: 'loopback' });
    documented = await DocumentedResponses.of(gw.url);
  });

  afterAll(async () => {
    await gw?.close();
    await upstream?.stop();
  });

  it('registry: a server with and without its nullable fields, a page with and without a next cursor', async () => {
    // No title, description or status message: each answered as null.
    const bare = await api()
      .post('/api/v1/servers')
      .send(serverBody({ tags: [tag] }))
      .expect(201);
    documented.check('post', '/api/v1/servers', bare);
    expect(bare.body).toMatchObject({ title: null, description: null, statusMessage: null });
    const full = await api()
      .post('/api/v1/servers')
      .send(
        serverBody({
          tags: [tag],
          title: 'Weather',
          description: 'Forecasts',
          status: 'deprecated',
          statusMessage: 'use v2',
        }),
      )
      .expect(201);
    documented.check('get', '/api/v1/servers/{ref}', await api().get(`/api/v1/servers/${bare.body.id}`).expect(200));
    documented.check('get', '/api/v1/servers/{ref}', await api().get(`/api/v1/servers/${full.body.id}`).expect(200));

    const first = await api().get('/api/v1/servers').query({ tag, limit: 1 }).expect(200);
    expect(first.body.nextCursor).toEqual(expect.any(String));
    documented.check('get', '/api/v1/servers', first);
    const last = await api().get('/api/v1/servers').query({ tag, cursor: first.body.nextCursor }).expect(200);
    expect(last.body.nextCursor).toBeNull();
    documented.check('get', '/api/v1/servers', last);
  });

  it('registry: errors as problem+json, a body in a charset other than UTF-8 included', async () => {
    const latin1 = await api()
      .post('/api/v1/servers')
      .set('content-type', 'application/json; charset=latin1')
      .send(JSON.stringify(serverBody()))
      .expect(415);
    documented.check('post', '/api/v1/servers', latin1);
    documented.check('get', '/api/v1/servers/{ref}', await api().get('/api/v1/servers/no-such-server').expect(404));
    documented.check('get', '/api/v1/servers', await api().get('/api/v1/servers?limit=0').expect(400));
  });

  it("names upstream_timeout where the REST bridge's 504 is described, and among the stable codes", () => {
    const gatewayTimeout = documented.operation('post', '/mcp/{slug}/tools/{tool}').responses['504'];
    expect(JSON.stringify(gatewayTimeout)).toContain('`upstream_timeout`');
    expect(JSON.stringify(documented.doc.components.schemas.ProblemDetailsDto)).toContain('upstream_timeout');
  });

  it('describes a page size read from text as the integer it holds, with its bounds and default', () => {
    const limitOf = (path: string) =>
      documented.operation('get', path).parameters?.find((parameter) => parameter.name === 'limit');
    // As the README's API table gives them: `limit` 1–500 (50) and 1–100 (30).
    expect(limitOf('/api/v1/audit')).toEqual({
      name: 'limit',
      in: 'query',
      required: false,
      description: 'Page size, 1-500',
      schema: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
    });
    expect(limitOf('/api/v1/servers')).toEqual({
      name: 'limit',
      in: 'query',
      required: false,
      description: 'Page size, 1-100',
      schema: { type: 'integer', minimum: 1, maximum: 100, default: 30 },
    });
  });

  it('describes a list by a $ref to the schema of its items, not a copy of it', () => {
    const { schemas } = documented.doc.components;
    expect(schemas.ServerListDto_Output).toMatchObject({
      properties: { servers: { type: 'array', items: { $ref: '#/components/schemas/ServerDto_Output' } } },
    });
    expect(schemas.AuditListDto_Output).toMatchObject({
      properties: { records: { type: 'array', items: { $ref: '#/components/schemas/AuditRecordDto_Output' } } },
    });
  });

  it('discovery: capabilities before and after a sync, and the search pages', async () => {
    const server = await api()
      .post('/api/v1/servers')
      .send(serverBody({ tags: [tag], url: upstream.url }))
      .expect(201);
    const never = await api()
      .post('/api/v1/servers')
      .send(serverBody({ tags: [tag] }))
      .expect(201);
    const unsynced = await api().get(`/api/v1/servers/${never.body.id}/capabilities`).expect(200);
    expect(unsynced.body).toMatchObject({ protocolVersion: null, syncedAt: null });
    documented.check('get', '/api/v1/servers/{ref}/capabilities', unsynced);

    await api().post(`/api/v1/servers/${server.body.id}/refresh`).expect(200);
    const synced = await api().get(`/api/v1/servers/${server.body.id}/capabilities`).expect(200);
    expect(synced.body.syncedAt).toEqual(expect.any(String));
    documented.check('get', '/api/v1/servers/{ref}/capabilities', synced);

    const tools = await api().get('/api/v1/discovery/tools').query({ tag }).expect(200);
    expect(tools.body.items.length).toBeGreaterThan(0);
    documented.check('get', '/api/v1/discovery/tools', tools);
    documented.check('get', '/api/v1/discovery/prompts', await api().get('/api/v1/discovery/prompts').query({ tag }));
    documented.check(
      'get',
      '/api/v1/discovery/resources',
      await api().get('/api/v1/discovery/resources').query({ tag }).expect(200),
    );
  });

  it('upstream health: never probed (every latency null) and probed', async () => {
    const unprobed = await api()
      .post('/api/v1/servers')
      .send(serverBody({ tags: [tag] }))
      .expect(201);
    const detail = await api().get(`/api/v1/health/servers/${unprobed.body.id}`).expect(200);
    expect(detail.body).toMatchObject({ lastError: null, latencyP50Ms: null, latencyP95Ms: null });
    documented.check('get', '/api/v1/health/servers/{ref}', detail);

    const reachable = await api()
      .post('/api/v1/servers')
      .send(serverBody({ tags: [tag], url: upstream.url }))
      .expect(201);
    documented.check(
      'post',
      '/api/v1/health/servers/{ref}/probe',
      await api().post(`/api/v1/health/servers/${reachable.body.id}/probe`).expect(200),
    );
    documented.check(
      'get',
      '/api/v1/health/servers/{ref}',
      await api().get(`/api/v1/health/servers/${reachable.body.id}`).expect(200),
    );
    documented.check('get', '/api/v1/health/servers', await api().get('/api/v1/health/servers').expect(200));
  });

  it('audit: records with and without their nullable fields, string and number JSON-RPC ids', async () => {
    const audit = auditOf(gw.gateway.app);
    const server = { id: randomUUID(), slug };
    // A millisecond apart, oldest first, so the newest-first order is known.
    const at = (n: number) => new Date(Date.now() - 10 + n);
    audit.traffic.record(exchangeFactory({ at: at(0), server, rpcId: 7 }));
    audit.traffic.record(
      exchangeFactory({ at: at(1), server, rpcId: 'req-8', upstreamMs: undefined, errorKind: 'timeout' }),
    );
    // A refused token: no principal, session, id or target.
    audit.traffic.record(
      exchangeFactory({
        at: at(2),
        server,
        ip: undefined,
        principal: undefined,
        sessionId: undefined,
        rpcId: undefined,
        target: undefined,
        rule: undefined,
        decision: 'unauthenticated',
        outcome: 'refused',
        upstreamMs: undefined,
        upstreamStatus: undefined,
      }),
    );
    await audit.trail.flush();
    const first = await api().get('/api/v1/audit').query({ server: slug, limit: 2 }).expect(200);
    expect(first.body.nextCursor).toEqual(expect.any(String));
    expect(first.body.records[0]).toMatchObject({ ip: null, principal: null, rpcId: null, target: null });
    documented.check('get', '/api/v1/audit', first);
    const last = await api().get('/api/v1/audit').query({ server: slug, cursor: first.body.nextCursor }).expect(200);
    expect(last.body.nextCursor).toBeNull();
    expect(last.body.records[0]).toMatchObject({ rpcId: 7 });
    documented.check('get', '/api/v1/audit', last);
  });

  it('authz: an explanation without a tool', async () => {
    const server = await api()
      .post('/api/v1/servers')
      .send(serverBody({ tags: [tag] }))
      .expect(201);
    const res = await api().get('/api/v1/authz/explain').query({ server: server.body.id }).expect(200);
    expect(res.body).toMatchObject({ tool: null, call: null });
    documented.check('get', '/api/v1/authz/explain', res);
  });
});

describe('createZodDto describes nullable fields as OpenAPI 3.0 does', () => {
  const schema = z.object({
    bare: z.string().nullable(),
    either: z.union([z.string(), z.number()]).nullable(),
    nested: z.object({ inner: z.number().nullable() }),
    list: z.array(z.boolean().nullable()),
    constrained: z.string().max(10).nullable(),
  });
  class ProbeDto extends createZodDto(schema) {}

  it.each([
    ['input', () => ProbeDto._OPENAPI_METADATA_FACTORY()],
    ['output', () => ProbeDto.Output._OPENAPI_METADATA_FACTORY()],
  ])('%s: no type arrays anywhere, nullable beside the real type', (_io, describe) => {
    const properties = describe() as Record<string, Record<string, unknown>>;
    expect(JSON.stringify(properties)).not.toMatch(/"type":\[/);
    expect(properties.bare).toMatchObject({ type: 'string', nullable: true });
    expect(properties.either?.anyOf).toEqual([
      { type: 'string', nullable: true },
      { type: 'number', nullable: true },
    ]);
    expect(properties.nested?.properties).toEqual({ inner: { type: 'number', nullable: true } });
    expect(properties.list?.items).toEqual({ type: 'boolean', nullable: true });
  });
});
