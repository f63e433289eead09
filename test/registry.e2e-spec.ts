import request from 'supertest';
import { type RegistryEvent, RegistryEvents } from '../src/registry/registry-events';
import { type Profile, startTestGateway, type TestGateway } from './support/gateway';
import { PROBLEM_JSON, PUBLIC_URL, serverBody, storedRows, token, uniqueName } from './support/registry';

const SERVERS = '/api/v1/servers';

/** The whole registry on this machine's PostgreSQL; the same basics on embedded PGlite further down. */
describe('registry /api/v1/servers (services)', () => {
  let gw: TestGateway;
  let events: RegistryEvent[];
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

  async function create(overrides: Record<string, unknown> = {}) {
    const res = await api().post(SERVERS).send(serverBody(overrides)).expect(201);
    return res;
  }

  describe('create and read', () => {
    it('registers a server with defaults, Location and ETag', async () => {
      const name = uniqueName(`Weather_Tool.${token()}`);
      const res = await api()
        .post(SERVERS)
        .send({ name, url: 'http://127.0.0.1:9/mcp', title: 'Weather', tags: ['beta', 'beta', 'ops'] })
        .expect(201);
      expect(res.body).toEqual({
        id: expect.stringMatching(/^[0-9a-f-]{36}$/),
        name,
        slug: expect.stringMatching(/^weather-tool-[0-9a-f]{8}$/),
        title: 'Weather',
        description: null,
        version: '0.0.0',
        url: 'http://127.0.0.1:9/mcp',
        transport: 'streamable-http',
        auth: { type: 'none' },
        tags: ['beta', 'ops'],
        status: 'active',
        statusMessage: null,
        allowedRoles: [],
        timeouts: {},
        toolRules: {},
        revision: 1,
        createdAt: expect.any(String),
        updatedAt: expect.any(String),
      });
      expect(res.headers.location).toBe(`${SERVERS}/${res.body.id}`);
      expect(res.headers.etag).toMatch(/^"[A-Za-z0-9_-]+"$/);
      expect(events).toEqual([{ type: 'created', serverId: res.body.id, slug: res.body.slug }]);
    });

    it('reads a server by id, slug and URL-encoded name, with the same ETag', async () => {
      const created = await create();
      const { id, slug, name } = created.body;
      for (const ref of [id, slug, encodeURIComponent(name)]) {
        const res = await api().get(`${SERVERS}/${ref}`).expect(200);
        expect(res.body).toEqual(created.body);
        expect(res.headers.etag).toBe(created.headers.etag);
      }
    });

    it('answers 304 to If-None-Match with the current ETag, weak or strong, and 200 otherwise', async () => {
      const created = await create();
      const url = `${SERVERS}/${created.body.id}`;
      const etag = created.headers.etag as string;
      const notModified = await api().get(url).set('If-None-Match', etag).expect(304);
      expect(notModified.headers.etag).toBe(etag);
      expect(notModified.text).toBe('');
      await api().get(url).set('If-None-Match', `"other", W/${etag}`).expect(304);
      await api().get(url).set('If-None-Match', '"other"').expect(200);
    });

    it('stores the environment variable names of header secrets, never a value', async () => {
      const auth = { type: 'headers', headers: { 'X-Api-Key': { env: 'WEATHER_API_KEY' } } };
      const created = await create({ auth });
      expect(created.body.auth).toEqual(auth);
      const withValue = await api()
        .post(SERVERS)
        .send(serverBody({ auth: { type: 'headers', headers: { 'X-Api-Key': { env: 'K', value: 'hunter2' } } } }))
        .expect(400);
      expect(withValue.text).not.toContain('hunter2');
    });

    it('accepts every documented field', async () => {
      const body = serverBody({
        slug: `full-${token()}`,
        title: 'Full',
        description: 'Every field set',
        version: '2.1.0-beta.1+build.7',
        transport: 'sse',
        auth: { type: 'entra-obo', scope: 'api://upstream/.default' },
        tags: ['a', 'b-2'],
        status: 'deprecated',
        statusMessage: 'use v3',
        allowedRoles: ['Servers.Read', 'admin'],
        timeouts: { connectMs: 2000, requestMs: 30000 },
      });
      const res = await api().post(SERVERS).send(body).expect(201);
      expect(res.body).toMatchObject(body);
    });

    it('answers 404 for a well-formed ref that names nothing', async () => {
      for (const ref of ['00000000-0000-4000-8000-000000000000', `nothing-${token()}`, 'io.none%2Fnothing']) {
        const res = await api().get(`${SERVERS}/${ref}`).expect(404);
        expect(res.headers['content-type']).toMatch(PROBLEM_JSON);
        expect(res.body.code).toBe('not_found');
      }
    });
  });

  describe('slugs', () => {
    it('derives the slug from the last segment and suffixes -2, -3 on collision', async () => {
      const last = `Dup.Name_${token()}`;
      const slugs: string[] = [];
      for (let i = 0; i < 3; i++) slugs.push((await create({ name: uniqueName(last) })).body.slug);
      const base = last.toLowerCase().replace(/[._]/g, '-');
      expect(slugs).toEqual([base, `${base}-2`, `${base}-3`]);
    });

    it('trims a derived slug to 32 characters, suffix included', async () => {
      const last = `${token()}-${'x'.repeat(40)}`;
      const first = await create({ name: uniqueName(last) });
      expect(first.body.slug).toBe(last.slice(0, 32));
      const second = await create({ name: uniqueName(last) });
      expect(second.body.slug).toBe(`${last.slice(0, 30)}-2`);
    });

    it('never derives a reserved slug', async () => {
      const res = await create({ name: uniqueName('export') });
      expect(res.body.slug).toMatch(/^export-\d+$/);
    });

    it('answers 409 naming the field for a taken name or slug', async () => {
      const created = await create();
      const sameName = await api()
        .post(SERVERS)
        .send(serverBody({ name: created.body.name }))
        .expect(409);
      expect(sameName.body).toMatchObject({ code: 'conflict', errors: [{ field: 'name' }] });
      expect(sameName.body.detail).toContain(created.body.name);
      const sameSlug = await api()
        .post(SERVERS)
        .send(serverBody({ slug: created.body.slug }))
        .expect(409);
      expect(sameSlug.body).toMatchObject({ code: 'conflict', errors: [{ field: 'slug' }] });
      const other = await create();
      const patchToTaken = await api()
        .patch(`${SERVERS}/${other.body.id}`)
        .send({ slug: created.body.slug })
        .expect(409);
      expect(patchToTaken.body).toMatchObject({ code: 'conflict', errors: [{ field: 'slug' }] });
      expect(events.filter((event) => event.type !== 'created')).toEqual([]);
    });
  });

  describe('updates', () => {
    it('patches the fields present, bumps the revision and the ETag, and null clears', async () => {
      const created = await create({ title: 'Before', description: 'Describes', tags: ['x'] });
      events = [];
      const patched = await api()
        .patch(`${SERVERS}/${created.body.slug}`)
        .send({ title: 'After', description: null })
        .expect(200);
      expect(patched.body).toMatchObject({ title: 'After', description: null, tags: ['x'], revision: 2 });
      expect(patched.headers.etag).not.toBe(created.headers.etag);
      expect(events).toEqual([{ type: 'updated', serverId: created.body.id, slug: created.body.slug }]);
    });

    it('writes nothing for a patch that changes nothing', async () => {
      const created = await create({ title: 'Same' });
      events = [];
      const res = await api().patch(`${SERVERS}/${created.body.id}`).send({ title: 'Same' }).expect(200);
      expect(res.body.revision).toBe(1);
      expect(res.headers.etag).toBe(created.headers.etag);
      await api().patch(`${SERVERS}/${created.body.id}`).send({}).expect(200);
      expect(events).toEqual([]);
    });

    it('honours If-Match on PATCH, PUT and DELETE (412 on mismatch, * matches)', async () => {
      const created = await create();
      const url = `${SERVERS}/${created.body.id}`;
      const stale = created.headers.etag as string;
      const first = await api().patch(url).set('If-Match', stale).send({ title: 'One' }).expect(200);
      const mismatch = await api().patch(url).set('If-Match', stale).send({ title: 'Two' }).expect(412);
      expect(mismatch.headers['content-type']).toMatch(PROBLEM_JSON);
      expect(mismatch.body.code).toBe('precondition_failed');
      await api().put(url).set('If-Match', stale).send({ name: created.body.name, url: created.body.url }).expect(412);
      await api().delete(url).set('If-Match', stale).expect(412);
      await api()
        .delete(url)
        .set('If-Match', `W/${first.headers.etag as string}`)
        .expect(412);
      const current = await api().get(url).expect(200);
      expect(current.body).toMatchObject({ title: 'One', revision: 2 });
      await api().patch(url).set('If-Match', '*').send({ title: 'Three' }).expect(200);
      const latest = await api().get(url).expect(200);
      await api()
        .delete(url)
        .set('If-Match', `"nope", ${latest.headers.etag as string}`)
        .expect(204);
    });

    it('replaces every writable field with PUT, keeping the slug when omitted', async () => {
      const created = await create({ title: 'Old', tags: ['keep-me-not'], allowedRoles: ['r1'], version: '1.0.0' });
      const res = await api()
        .put(`${SERVERS}/${encodeURIComponent(created.body.name)}`)
        .send({ name: created.body.name, url: 'http://127.0.0.1:10/mcp', transport: 'sse', version: '1.0.0' })
        .expect(200);
      expect(res.body).toMatchObject({
        id: created.body.id,
        slug: created.body.slug,
        title: null,
        tags: [],
        allowedRoles: [],
        url: 'http://127.0.0.1:10/mcp',
        transport: 'sse',
        revision: 2,
      });
      expect(res.headers.etag).toBeDefined();
    });

    it('refuses to rename a server (400), with PUT or PATCH', async () => {
      const created = await create();
      const other = uniqueName();
      const put = await api()
        .put(`${SERVERS}/${created.body.id}`)
        .send({ name: other, url: created.body.url })
        .expect(400);
      expect(put.body).toMatchObject({ code: 'validation_error', errors: [{ field: 'name' }] });
      await api().patch(`${SERVERS}/${created.body.id}`).send({ name: other }).expect(400);
      await api().patch(`${SERVERS}/${created.body.id}`).send({ name: created.body.name }).expect(200);
      expect(await storedRows(other)).toEqual({ servers: 0, versions: 0 });
    });

    it('deletes with 204, then answers 404', async () => {
      const created = await create();
      events = [];
      await api().delete(`${SERVERS}/${created.body.slug}`).expect(204);
      expect(events).toEqual([{ type: 'deleted', serverId: created.body.id, slug: created.body.slug }]);
      await api().get(`${SERVERS}/${created.body.id}`).expect(404);
      await api().delete(`${SERVERS}/${created.body.id}`).expect(404);
      await api().patch(`${SERVERS}/${created.body.id}`).send({ title: 'x' }).expect(404);
    });
  });

  describe('listing', () => {
    it('pages through a filtered list in creation order, with an opaque cursor', async () => {
      const tag = `page-${token()}`;
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push((await create({ tags: [tag] })).body.id);
      const seen: string[] = [];
      let cursor: string | null = null;
      const pageSizes: number[] = [];
      do {
        const query: Record<string, string | number> = { tag, limit: 2, ...(cursor ? { cursor } : {}) };
        const res = await api().get(SERVERS).query(query).expect(200);
        pageSizes.push(res.body.servers.length);
        seen.push(...res.body.servers.map((server: { id: string }) => server.id));
        cursor = res.body.nextCursor;
        if (cursor) expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
      } while (cursor);
      expect(pageSizes).toEqual([2, 2, 1]);
      expect(seen).toEqual(ids);
    });

    it('defaults to 30 per page and filters by status', async () => {
      const tag = `status-${token()}`;
      const documents = Array.from({ length: 31 }, (_, i) => ({
        name: uniqueName(),
        version: '1.0.0',
        remotes: [{ type: 'streamable-http', url: 'http://127.0.0.1:9/mcp' }],
        _meta: { 'io.mcp-gateway/server': { tags: [tag], status: i === 7 ? 'deprecated' : 'active' } },
      }));
      const imported = await api().post(`${SERVERS}/import`).send(documents).expect(200);
      const first = await api().get(SERVERS).query({ tag }).expect(200);
      expect(first.body.servers).toHaveLength(30);
      const rest = await api().get(SERVERS).query({ tag, cursor: first.body.nextCursor }).expect(200);
      expect(rest.body).toMatchObject({ servers: [{ name: documents[30]?.name }], nextCursor: null });
      const filtered = await api().get(SERVERS).query({ tag, status: 'deprecated' }).expect(200);
      expect(filtered.body.servers.map((server: { id: string }) => server.id)).toEqual([imported.body.results[7].id]);
    });

    it('searches name, title and description case-insensitively, % and _ literally', async () => {
      const word = `zq${token()}`;
      const percent = await create({ title: `${word} 100% pure` });
      await create({ title: `${word} 1000 pure` });
      const underscore = await create({ description: `${word}_x marks` });
      await create({ description: `${word}ax marks` });
      const byName = await create({ name: uniqueName(`${word}-named`) });
      const ids = async (q: string): Promise<string[]> => {
        const res = await api().get(SERVERS).query({ q }).expect(200);
        return (res.body as { servers: { id: string }[] }).servers.map((server) => server.id);
      };
      expect(await ids(`${word.toUpperCase()} 100%`)).toEqual([percent.body.id]);
      expect(await ids(`${word}_x`)).toEqual([underscore.body.id]);
      expect(await ids(`${word}-NAMED`)).toEqual([byName.body.id]);
      expect(await ids(word)).toHaveLength(5);
    });
  });

  describe('version history', () => {
    it('rewrites the latest version in place and keeps the old one when the version changes', async () => {
      const created = await create({ version: '1.0.0', title: 'v1' });
      const url = `${SERVERS}/${created.body.id}`;
      await api().patch(url).send({ title: 'v1 again' }).expect(200);
      let versions = await api().get(`${url}/versions`).expect(200);
      expect(versions.body).toEqual({
        name: created.body.name,
        versions: [
          {
            version: '1.0.0',
            status: 'active',
            isLatest: true,
            publishedAt: expect.any(String),
            updatedAt: expect.any(String),
          },
        ],
      });
      const one = await api().get(`${url}/versions/1.0.0`).expect(200);
      expect(one.body.record).toMatchObject({ title: 'v1 again', revision: 2 });

      await api().patch(url).send({ version: '1.1.0', title: 'v1.1', status: 'deprecated' }).expect(200);
      versions = await api().get(`${url}/versions`).expect(200);
      expect(
        versions.body.versions.map((v: { version: string; isLatest: boolean; status: string }) => [
          v.version,
          v.isLatest,
          v.status,
        ]),
      ).toEqual([
        ['1.1.0', true, 'deprecated'],
        ['1.0.0', false, 'active'],
      ]);
      const old = await api().get(`${url}/versions/1.0.0`).expect(200);
      expect(old.body).toMatchObject({ version: '1.0.0', isLatest: false, record: { title: 'v1 again' } });
      const latest = await api().get(`${url}/versions/1.1.0`).expect(200);
      expect(latest.body).toMatchObject({ isLatest: true, record: { title: 'v1.1', version: '1.1.0', revision: 3 } });
      await api().get(`${url}/versions/9.9.9`).expect(404);
    });

    it('refuses to move a server back to a version in its history (409), rewriting nothing', async () => {
      const created = await create({ version: '1.0.0', title: 'Acme', url: 'https://203.0.113.10/t' });
      const url = `${SERVERS}/${created.body.id}`;
      await api().patch(url).send({ version: '1.1.0' }).expect(200);
      const current = await api().patch(url).send({ version: '2.0.0+build.5', title: 'Two' }).expect(200);
      const history = await api().get(`${url}/versions`).expect(200);
      const first = await api().get(`${url}/versions/1.0.0`).expect(200);
      events = [];

      const attempts = [
        api().patch(url).send({ version: '1.0.0', title: 'Rewritten', url: 'https://203.0.113.10/other' }),
        api().patch(url).send({ version: '1.1.0' }),
        api().put(url).send({ name: created.body.name, url: 'https://203.0.113.10/other', version: '1.0.0' }),
      ];
      for (const res of await Promise.all(attempts)) {
        expect(res.status).toBe(409);
        expect(res.body).toMatchObject({ code: 'conflict', errors: [{ field: 'version' }] });
      }
      const imported = await api()
        .post(`${SERVERS}/import`)
        .send({ name: created.body.name, version: '1.1.0', remotes: [{ type: 'streamable-http', url: PUBLIC_URL }] })
        .expect(200);
      expect(imported.body.results).toEqual([
        expect.objectContaining({ result: 'failed', errors: [{ field: 'version', message: expect.any(String) }] }),
      ]);

      expect((await api().get(url).expect(200)).body).toEqual(current.body);
      expect((await api().get(`${url}/versions`).expect(200)).body).toEqual(history.body);
      expect((await api().get(`${url}/versions/1.0.0`).expect(200)).body).toEqual(first.body);
      expect(first.body.record).toMatchObject({ title: 'Acme', url: 'https://203.0.113.10/t' });
      expect(events).toEqual([]);

      // The current version may still change in place, and a new version is still welcome.
      await api().patch(url).send({ version: '2.0.0+build.5', title: 'Two, again' }).expect(200);
      await api().patch(url).send({ version: '2.0.0+BUILD.5' }).expect(200);
    });

    it('keeps history readable after delete, and lets the name be registered again', async () => {
      const name = uniqueName();
      const created = await create({ name, version: '1.0.0' });
      await api().patch(`${SERVERS}/${created.body.id}`).send({ version: '1.1.0' }).expect(200);
      await api().delete(`${SERVERS}/${created.body.id}`).expect(204);

      for (const ref of [created.body.id, encodeURIComponent(name)]) {
        const res = await api().get(`${SERVERS}/${ref}/versions`).expect(200);
        expect(res.body.versions.map((v: { version: string; status: string }) => [v.version, v.status])).toEqual([
          ['1.1.0', 'deleted'],
          ['1.0.0', 'active'],
        ]);
      }
      const deleted = await api().get(`${SERVERS}/${created.body.id}/versions/1.1.0`).expect(200);
      expect(deleted.body).toMatchObject({ status: 'deleted', isLatest: true, record: { id: created.body.id } });
      // A slug can be reused by another server, so it reaches live servers only.
      await api().get(`${SERVERS}/${created.body.slug}/versions`).expect(404);

      // Same name, same version: the history row is taken over.
      const again = await create({ name, version: '1.1.0' });
      let versions = await api().get(`${SERVERS}/${again.body.id}/versions`).expect(200);
      expect(
        versions.body.versions.map((v: { version: string; status: string; isLatest: boolean }) => [
          v.version,
          v.status,
          v.isLatest,
        ]),
      ).toEqual([
        ['1.1.0', 'active', true],
        ['1.0.0', 'active', false],
      ]);
      // Deleted again, then registered with a new version: the deleted row stops being latest.
      await api().delete(`${SERVERS}/${again.body.id}`).expect(204);
      const third = await create({ name, version: '2.0.0' });
      versions = await api().get(`${SERVERS}/${third.body.id}/versions`).expect(200);
      expect(
        versions.body.versions.map((v: { version: string; status: string; isLatest: boolean }) => [
          v.version,
          v.status,
          v.isLatest,
        ]),
      ).toEqual([
        ['2.0.0', 'active', true],
        ['1.1.0', 'deleted', false],
        ['1.0.0', 'active', false],
      ]);
      expect(await storedRows(name)).toEqual({ servers: 1, versions: 3 });
    });
  });

  it('describes every registry route in the OpenAPI document', async () => {
    const res = await api().get('/docs-json').expect(200);
    const paths = res.body.paths as Record<string, Record<string, { responses: Record<string, unknown> }>>;
    expect(Object.keys(paths)).toEqual(
      expect.arrayContaining([
        SERVERS,
        `${SERVERS}/{ref}`,
        `${SERVERS}/{ref}/versions`,
        `${SERVERS}/{ref}/versions/{version}`,
        `${SERVERS}/import`,
        `${SERVERS}/export`,
      ]),
    );
    expect(Object.keys(paths[SERVERS] ?? {}).sort()).toEqual(['get', 'post']);
    expect(Object.keys(paths[`${SERVERS}/{ref}`] ?? {}).sort()).toEqual(['delete', 'get', 'patch', 'put']);
    expect(paths[SERVERS]?.post?.responses).toHaveProperty('400');
    expect(paths[`${SERVERS}/{ref}`]?.patch?.responses).toHaveProperty('412');
    expect(Object.keys(res.body.components.schemas)).toEqual(
      expect.arrayContaining(['ServerInputDto', 'ServerDto_Output', 'ProblemDetailsDto', 'ServerJsonDto']),
    );
  });
});

describe.each<Profile>(['embedded'])('registry basics (%s)', (profile) => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startTestGateway(profile);
  });

  afterAll(async () => {
    await gw?.close();
  });

  it('creates, lists, updates with history, and deletes', async () => {
    const api = () => request(gw.url);
    const created = await api()
      .post(SERVERS)
      .send(serverBody({ version: '1.0.0', tags: ['embedded'] }))
      .expect(201);
    await api().get(`${SERVERS}/${created.body.slug}`).expect(200);
    const list = await api().get(SERVERS).query({ tag: 'embedded', q: created.body.name }).expect(200);
    expect(list.body.servers).toHaveLength(1);
    await api()
      .patch(`${SERVERS}/${created.body.id}`)
      .set('If-Match', created.headers.etag as string)
      .send({ version: '2.0.0' })
      .expect(200);
    await api().delete(`${SERVERS}/${created.body.id}`).expect(204);
    const versions = await api().get(`${SERVERS}/${created.body.id}/versions`).expect(200);
    expect(versions.body.versions.map((v: { status: string }) => v.status)).toEqual(['deleted', 'active']);
  });

  it('refuses loopback upstreams when UPSTREAM_ALLOWED_HOSTS does not allow them', async () => {
    for (const url of ['http://127.0.0.1:8000/mcp', 'http://localhost/mcp', 'http://[::1]/mcp']) {
      const body = serverBody({ url });
      const res = await request(gw.url).post(SERVERS).send(body).expect(400);
      expect(res.body).toMatchObject({ code: 'validation_error', errors: [{ field: 'url' }] });
      expect(res.body.errors[0].message).toMatch(/loopback/);
      const list = await request(gw.url).get(SERVERS).query({ q: body.name }).expect(200);
      expect(list.body.servers).toEqual([]);
    }
  });
});
