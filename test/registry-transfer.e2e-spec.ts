import request from 'supertest';
import { type RegistryEvent, RegistryEvents } from '../src/registry/registry-events';
import { GATEWAY_META_KEY } from '../src/registry/server.schema';
import { SERVER_JSON_SCHEMA_URL } from '../src/registry/server-json';
import { startTestGateway, type TestGateway } from './support/gateway';
import { PUBLIC_URL, serverBody, storedRows, token, uniqueName } from './support/registry';
import { sql } from './support/audit';
import { createScratchDatabase } from './support/services';

const SERVERS = '/api/v1/servers';

/** A server.json document with partial overrides. */
function serverJson(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    $schema: SERVER_JSON_SCHEMA_URL,
    name: uniqueName(),
    description: 'Imported for a test',
    version: '1.0.0',
    remotes: [{ type: 'streamable-http', url: PUBLIC_URL }],
    ...overrides,
  };
}

describe('registry import and export', () => {
  let gw: TestGateway;
  let events: RegistryEvent[] = [];
  let stopListening: (() => void) | undefined;

  beforeAll(async () => {
    gw = await startTestGateway('services', { UPSTREAM_ALLOWED_HOSTS: 'loopback' });
    stopListening = gw.gateway.app.get(RegistryEvents).on((event) => events.push(event));
  });

  beforeEach(() => {
    events = [];
  });

  afterAll(async () => {
    stopListening?.();
    await gw?.close();
  });

  const api = () => request(gw.url);

  it('imports what it can and reports every document, writing nothing for the failed ones', async () => {
    const taken = await api().post(SERVERS).send(serverBody()).expect(201);
    events = [];
    const good = serverJson({
      title: 'Good',
      websiteUrl: 'https://example.com',
      repository: { url: 'https://github.com/example/good', source: 'github' },
      packages: [{ registryType: 'npm', identifier: '@example/good', version: '1.0.0', transport: { type: 'stdio' } }],
      remotes: [
        {
          type: 'sse',
          url: 'http://127.0.0.1:9/sse',
          headers: [{ name: 'X-Api-Key', isSecret: true }],
        },
      ],
      _meta: {
        'io.modelcontextprotocol.registry/publisher-provided': { tool: 'test' },
        [GATEWAY_META_KEY]: {
          slug: `good-${token()}`,
          auth: { type: 'headers', headers: { 'X-Api-Key': { env: 'GOOD_KEY' } } },
          tags: ['imported'],
          status: 'deprecated',
          statusMessage: 'moving',
          allowedRoles: ['Servers.Read'],
          timeouts: { requestMs: 5000 },
        },
      },
    });
    const bad: [Record<string, unknown>, string][] = [
      [serverJson({ version: undefined }), 'version'],
      [serverJson({ remotes: [] }), 'remotes'],
      [serverJson({ remotes: undefined }), 'remotes'],
      [serverJson({ remotes: [{ type: 'stdio', url: PUBLIC_URL }] }), 'remotes.0.type'],
      [
        serverJson({ remotes: [{ type: 'streamable-http', url: 'https://{tenant}.example.com/mcp' }] }),
        'remotes.0.url',
      ],
      [serverJson({ remotes: [{ type: 'streamable-http', url: 'http://169.254.169.254/' }] }), 'remotes.0.url'],
      [serverJson({ description: 'd'.repeat(101) }), 'description'],
      [serverJson({ _meta: { [GATEWAY_META_KEY]: { slug: taken.body.slug } } }), `_meta.${GATEWAY_META_KEY}.slug`],
      [serverJson({ _meta: { [GATEWAY_META_KEY]: { owner: 'me' } } }), `_meta.${GATEWAY_META_KEY}`],
      [serverJson({ _meta: { [GATEWAY_META_KEY]: { tags: ['Bad Tag'] } } }), `_meta.${GATEWAY_META_KEY}.tags.0`],
    ];
    const documents = [good, ...bad.map(([document]) => document), 'not a document'];
    const res = await api().post(`${SERVERS}/import`).send(documents).expect(200);

    expect(res.body).toMatchObject({ created: 1, updated: 0, unchanged: 0, failed: bad.length + 1 });
    expect(res.body.results[0]).toEqual({ index: 0, name: good.name, result: 'created', id: expect.any(String) });
    bad.forEach(([document, field], i) => {
      const result = res.body.results[i + 1];
      expect(result).toMatchObject({ index: i + 1, name: document.name, result: 'failed' });
      expect(result.errors.map((error: { field: string }) => error.field)).toContain(field);
    });
    expect(res.body.results.at(-1)).toMatchObject({ name: null, result: 'failed', errors: [{ field: '(document)' }] });
    for (const [document] of bad)
      expect(await storedRows(document.name as string)).toEqual({ servers: 0, versions: 0 });

    const created = await api().get(`${SERVERS}/${res.body.results[0].id}`).expect(200);
    expect(created.body).toMatchObject({
      name: good.name,
      title: 'Good',
      description: 'Imported for a test',
      version: '1.0.0',
      url: 'http://127.0.0.1:9/sse',
      transport: 'sse',
      ...(good._meta as Record<string, object>)[GATEWAY_META_KEY],
    });
    expect(events).toEqual([{ type: 'created', serverId: created.body.id, slug: created.body.slug }]);
  });

  it('reports a document with text the database cannot store as failed and imports the ones after it', async () => {
    const [first, hostile, last] = [serverJson(), serverJson({ title: 'x\u0000' }), serverJson()];
    const withRules = serverJson({ _meta: { [GATEWAY_META_KEY]: { toolRules: { allow: ['a\u0000'] } } } });
    const res = await api().post(`${SERVERS}/import`).send([first, hostile, withRules, last]).expect(200);

    expect(res.body).toMatchObject({ created: 2, updated: 0, unchanged: 0, failed: 2 });
    expect(res.body.results.map((result: { result: string }) => result.result)).toEqual([
      'created',
      'failed',
      'failed',
      'created',
    ]);
    expect(res.body.results[1].errors).toEqual([{ field: 'title', message: expect.any(String) }]);
    expect(res.body.results[2].errors).toEqual([
      { field: `_meta.${GATEWAY_META_KEY}.toolRules.allow.0`, message: expect.any(String) },
    ]);
    for (const document of [hostile, withRules]) {
      expect(await storedRows(document.name as string)).toEqual({ servers: 0, versions: 0 });
    }
    expect(await storedRows(last.name as string)).toEqual({ servers: 1, versions: 1 });
  });

  it('updates by name, keeping gateway settings the document does not carry, and records the new version', async () => {
    const existing = await api()
      .post(SERVERS)
      .send(
        serverBody({
          version: '1.0.0',
          title: 'Old title',
          tags: ['keep'],
          auth: { type: 'headers', headers: { 'X-Key': { env: 'KEEP_KEY' } } },
        }),
      )
      .expect(201);
    events = [];
    const document = serverJson({ name: existing.body.name, version: '1.1.0', description: 'New description' });
    const res = await api().post(`${SERVERS}/import`).send(document).expect(200);
    expect(res.body.results).toEqual([{ index: 0, name: existing.body.name, result: 'updated', id: existing.body.id }]);

    const updated = await api().get(`${SERVERS}/${existing.body.id}`).expect(200);
    expect(updated.body).toMatchObject({
      slug: existing.body.slug,
      title: null,
      description: 'New description',
      version: '1.1.0',
      tags: ['keep'],
      auth: existing.body.auth,
      revision: 2,
    });
    const versions = await api().get(`${SERVERS}/${existing.body.id}/versions`).expect(200);
    expect(versions.body.versions.map((v: { version: string }) => v.version)).toEqual(['1.1.0', '1.0.0']);
    expect(events).toEqual([{ type: 'updated', serverId: existing.body.id, slug: existing.body.slug }]);

    events = [];
    const again = await api()
      .post(`${SERVERS}/import`)
      .send({ servers: [document] })
      .expect(200);
    expect(again.body).toMatchObject({ unchanged: 1, results: [{ result: 'unchanged', id: existing.body.id }] });
    expect((await api().get(`${SERVERS}/${existing.body.id}`).expect(200)).body.revision).toBe(2);
    expect(events).toEqual([]);
  });

  it('imports the same name twice in one request as a create then an update', async () => {
    const name = uniqueName();
    const res = await api()
      .post(`${SERVERS}/import`)
      .send({ servers: [serverJson({ name }), serverJson({ name, version: '2.0.0' })] })
      .expect(200);
    expect(res.body.results.map((result: { result: string }) => result.result)).toEqual(['created', 'updated']);
    expect(await storedRows(name)).toEqual({ servers: 1, versions: 2 });
  });
});

describe('export → import into an empty gateway', () => {
  let scratch: Awaited<ReturnType<typeof createScratchDatabase>>;
  let source: TestGateway;
  let target: TestGateway;

  beforeAll(async () => {
    scratch = await createScratchDatabase();
    [source, target] = await Promise.all([
      startTestGateway('services', { DATABASE_URL: scratch.url }),
      startTestGateway('embedded'),
    ]);
  });

  afterAll(async () => {
    await Promise.all([source?.close(), target?.close()]);
    await scratch?.drop();
  });

  it('round-trips every field a server has', async () => {
    const bodies = [
      serverBody({ url: 'https://203.0.113.20/mcp' }),
      serverBody({
        slug: `full-${token()}`,
        title: 'Full',
        description: 'Every field',
        version: '3.2.1',
        url: 'https://203.0.113.21/sse',
        transport: 'sse',
        auth: { type: 'headers', headers: { 'X-Api-Key': { env: 'FULL_KEY' }, 'X-Tenant': { env: 'FULL_TENANT' } } },
        tags: ['a', 'b'],
        status: 'deprecated',
        statusMessage: 'use v4',
        allowedRoles: ['Servers.Read'],
        timeouts: { connectMs: 1000, requestMs: 2000 },
      }),
      serverBody({ auth: { type: 'entra-client-credentials', scope: 'api://x/.default' }, status: 'disabled' }),
    ];
    for (const body of bodies) await request(source.url).post(SERVERS).send(body).expect(201);

    const exported = await request(source.url).get(`${SERVERS}/export`).expect(200);
    expect(exported.body.servers).toHaveLength(bodies.length);
    const imported = await request(target.url).post(`${SERVERS}/import`).send(exported.body).expect(200);
    expect(imported.body).toMatchObject({ created: bodies.length, failed: 0 });

    const again = await request(target.url).get(`${SERVERS}/export`).expect(200);
    expect(again.body).toEqual(exported.body);
    const views = async (gateway: TestGateway): Promise<Record<string, unknown>[]> => {
      const res = await request(gateway.url).get(SERVERS).expect(200);
      return (res.body as { servers: Record<string, unknown>[] }).servers.map(
        ({ id: _id, createdAt: _c, updatedAt: _u, ...rest }) => rest,
      );
    };
    expect(await views(target)).toEqual(await views(source));
  });

  it('imports the export of a server stored with Via in auth.headers, leaving the header out and saying so', async () => {
    const mixed = await request(source.url)
      .post(SERVERS)
      .send(serverBody({ auth: { type: 'headers', headers: { 'X-Key': { env: 'MIXED_KEY' } } } }))
      .expect(201);
    const alone = await request(source.url).post(SERVERS).send(serverBody()).expect(201);
    // As rows written before auth.headers could not name Via hold it.
    const store = (id: string, headers: Record<string, unknown>) =>
      sql(scratch.url, 'UPDATE servers SET auth = $1::jsonb WHERE id = $2::uuid', [
        JSON.stringify({ type: 'headers', headers }),
        id,
      ]);
    await store(mixed.body.id as string, { 'X-Key': { env: 'MIXED_KEY' }, Via: { env: 'HOPS' } });
    await store(alone.body.id as string, { VIA: { env: 'HOPS' } });

    const exported = await request(source.url).get(`${SERVERS}/export`).expect(200);
    const names = [mixed.body.name as string, alone.body.name as string];
    type Exported = { name: string; _meta: Record<string, { auth: unknown }> };
    const documents = names.map((name) =>
      (exported.body.servers as Exported[]).find((document) => document.name === name),
    );
    // The export holds what is stored.
    expect(documents.map((document) => document?._meta[GATEWAY_META_KEY]?.auth)).toEqual([
      { type: 'headers', headers: { 'X-Key': { env: 'MIXED_KEY' }, Via: { env: 'HOPS' } } },
      { type: 'headers', headers: { VIA: { env: 'HOPS' } } },
    ]);

    const field = `_meta.${GATEWAY_META_KEY}.auth.headers`;
    const notes = [
      [{ field: `${field}.Via`, message: 'left out: the gateway sets Via itself and never sent this one' }],
      [
        {
          field: `${field}.VIA`,
          message:
            'left out: the gateway sets Via itself and never sent this one; no other header was named, so auth is none, as the server was reached',
        },
      ],
    ];
    const imported = await request(target.url).post(`${SERVERS}/import`).send({ servers: documents }).expect(200);
    expect(imported.body).toMatchObject({ created: 2, failed: 0 });
    expect(imported.body.results).toEqual([
      { index: 0, name: names[0], result: 'created', id: expect.any(String), notes: notes[0] },
      { index: 1, name: names[1], result: 'created', id: expect.any(String), notes: notes[1] },
    ]);
    const auths = await Promise.all(
      (imported.body.results as { id: string }[]).map(
        async ({ id }) => (await request(target.url).get(`${SERVERS}/${id}`).expect(200)).body.auth as unknown,
      ),
    );
    expect(auths).toEqual([{ type: 'headers', headers: { 'X-Key': { env: 'MIXED_KEY' } } }, { type: 'none' }]);
    // The same backup again changes nothing, and says again what it left out.
    const again = await request(target.url).post(`${SERVERS}/import`).send({ servers: documents }).expect(200);
    expect(again.body.results).toEqual([
      expect.objectContaining({ result: 'unchanged', notes: notes[0] }),
      expect.objectContaining({ result: 'unchanged', notes: notes[1] }),
    ]);
  });

  it('exports every server as server.json', async () => {
    const created = await request(source.url)
      .post(SERVERS)
      .send(serverBody({ title: 'Exported', auth: { type: 'headers', headers: { 'X-Key': { env: 'EXPORT_KEY' } } } }))
      .expect(201);
    const res = await request(source.url).get(`${SERVERS}/export`).expect(200);
    const document = res.body.servers.find((item: { name: string }) => item.name === created.body.name);
    expect(document).toEqual({
      $schema: SERVER_JSON_SCHEMA_URL,
      name: created.body.name,
      title: 'Exported',
      version: '0.0.0',
      remotes: [
        { type: 'streamable-http', url: PUBLIC_URL, headers: [{ name: 'X-Key', isRequired: true, isSecret: true }] },
      ],
      _meta: {
        [GATEWAY_META_KEY]: {
          slug: created.body.slug,
          auth: { type: 'headers', headers: { 'X-Key': { env: 'EXPORT_KEY' } } },
          tags: [],
          status: 'active',
          allowedRoles: [],
          timeouts: {},
          toolRules: {},
        },
      },
    });
  });
});
