import request, { type Response } from 'supertest';
import { PrismaService } from '../src/database/prisma.service';
import { DocumentedResponses } from './support/documented-responses';
import { startTestGateway, type TestGateway } from './support/gateway';
import { assertValid, officialSchemas } from './support/official-registry-schemas';
import { type SeededServer, ServerVersionFactory } from './support/server-version-factory';
import { PUBLIC_URL as UPSTREAM_URL } from './support/registry';

const PUBLIC_URL = 'https://gw.example.com';
const BASE = '/api/v1/registry/v0.1';
const OFFICIAL = 'io.modelcontextprotocol.registry/official';
const GATEWAY = 'io.mcp-gateway/server';
const SCHEMA_URL = 'https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json';

/** A ServerResponse as these tests read it (each body is first checked against the official schema). */
interface Entry {
  server: { name: string; version: string; title?: string; description: string };
  _meta: {
    [OFFICIAL]: { status: string; statusMessage?: string; publishedAt: string; updatedAt: string; isLatest: boolean };
    [GATEWAY]: { slug?: string; url?: string; health: string; toolCount: number; requiredRoles: string[] };
  };
}
interface EntryList {
  servers: Entry[];
  metadata: { nextCursor?: string; count: number };
}
interface ErrorBody {
  error: string;
  title: string;
  status: number;
  detail: string;
  errors?: { location: string; message: string }[];
}

describe('official MCP Registry read API (v0.1)', () => {
  let gw: TestGateway;
  let seed: ServerVersionFactory;
  /** Every server seeded, so the last test can check that no answer carried an upstream's address or secret. */
  const seeded: SeededServer[] = [];
  /** Every body answered, as text. */
  const answered: string[] = [];

  beforeAll(async () => {
    gw = await startTestGateway('services', { PUBLIC_URL });
    seed = new ServerVersionFactory(gw.gateway.app.get(PrismaService));
  });

  afterAll(async () => {
    await seed?.cleanup();
    await gw?.close();
  });

  async function server(...args: Parameters<ServerVersionFactory['server']>): Promise<SeededServer> {
    const created = await seed.server(...args);
    seeded.push(created);
    return created;
  }

  async function get(path: string): Promise<Response> {
    const res = await request(gw.url).get(path);
    answered.push(res.text);
    expect(res.status).toBeLessThan(500);
    return res;
  }

  /** A ServerList, checked against the official schema. */
  async function list(path: string): Promise<EntryList> {
    const res = await get(path);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    assertValid(officialSchemas.serverList, res.body, `GET ${path}`);
    const body = res.body as EntryList;
    expect(body.metadata.count).toBe(body.servers.length);
    return body;
  }

  async function one(path: string): Promise<Entry> {
    const res = await get(path);
    expect(res.status).toBe(200);
    assertValid(officialSchemas.serverResponse, res.body, `GET ${path}`);
    return res.body as Entry;
  }

  /** An error in the spec's shape: `{ error }` as application/json. */
  async function failing(path: string, status: number): Promise<ErrorBody> {
    const res = await get(path);
    expect({ path, status: res.status }).toEqual({ path, status });
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    assertValid(officialSchemas.errorBody, res.body, `GET ${path}`);
    expect(res.body).toMatchObject({ error: expect.any(String), status });
    return res.body as ErrorBody;
  }

  const encoded = (name: string) => encodeURIComponent(name);
  const search = (text: string) => `${BASE}/servers?search=${encodeURIComponent(text)}`;
  const entries = (body: EntryList) => body.servers.map((entry) => `${entry.server.name}@${entry.server.version}`);

  it('lists every version as a ServerList entry whose only remote is the gateway', async () => {
    const github = await server({
      last: 'github',
      title: 'GitHub',
      description: 'Issues and pull requests',
      allowedRoles: ['mcp.github'],
      health: 'healthy',
      tools: 3,
    });
    const jira = await server({ last: 'jira', versions: [{ version: '1.0.0' }, { version: '2.0.0' }] });

    const body = await list(search(seed.namespace));
    expect(entries(body)).toEqual([`${github.name}@1.0.0`, `${jira.name}@1.0.0`, `${jira.name}@2.0.0`]);
    expect(body.metadata).toEqual({ count: 3 });

    const [first, , last] = body.servers;
    expect(first?.server).toEqual({
      $schema: SCHEMA_URL,
      name: github.name,
      title: 'GitHub',
      description: 'Issues and pull requests',
      version: '1.0.0',
      remotes: [{ type: 'streamable-http', url: `${PUBLIC_URL}/mcp/${github.slug}` }],
    });
    assertValid(officialSchemas.serverJson, first?.server, 'server.json');
    expect(first?._meta[OFFICIAL]).toEqual({
      status: 'active',
      publishedAt: expect.stringMatching(/Z$/),
      updatedAt: expect.stringMatching(/Z$/),
      isLatest: true,
    });
    expect(first?._meta[GATEWAY]).toEqual({
      slug: github.slug,
      url: `${PUBLIC_URL}/mcp/${github.slug}`,
      health: 'healthy',
      toolCount: 3,
      requiredRoles: ['mcp.github'],
    });
    // A server the prober has not reached yet, with no tools synced and open to every caller.
    expect(last?._meta[GATEWAY]).toEqual({
      slug: jira.slug,
      url: `${PUBLIC_URL}/mcp/${jira.slug}`,
      health: 'unknown',
      toolCount: 0,
      requiredRoles: [],
    });
    expect(body.servers.map((entry) => entry._meta[OFFICIAL].isLatest)).toEqual([true, false, true]);
  });

  it('describes a server registered without a description by its title or name, within the schema limits', async () => {
    const bare = await server({ last: 'bare', title: null, description: null });
    const titled = await server({ last: 'titled', title: 'Only a title', description: '   ' });
    const wordy = await server({ last: 'wordy', title: 'T'.repeat(150), description: 'é'.repeat(150) });

    const byName = new Map((await list(search(seed.namespace))).servers.map((entry) => [entry.server.name, entry]));
    expect(byName.get(bare.name)?.server.description).toBe(bare.name);
    expect(byName.get(bare.name)?.server).not.toHaveProperty('title');
    expect(byName.get(titled.name)?.server.description).toBe('Only a title');
    const long = byName.get(wordy.name)?.server;
    expect([...(long?.description ?? '')]).toHaveLength(100);
    expect(long?.description.endsWith('…')).toBe(true);
    expect([...(long?.title ?? '')]).toHaveLength(100);
  });

  it('searches a substring of the name, case-insensitively, and nothing else', async () => {
    const alpha = await server({ last: 'Alpha-Search' });
    await server({ last: 'beta', description: 'mentions alpha-search in its description only' });

    expect(entries(await list(search('alpha-SEARCH')))).toEqual([`${alpha.name}@1.0.0`]);
    expect(entries(await list(search(`${seed.namespace}/alpha-search`)))).toEqual([`${alpha.name}@1.0.0`]);
    // LIKE wildcards are plain characters here.
    expect((await list(search(`${seed.namespace}%`))).servers).toEqual([]);
    expect((await list(search(`${seed.namespace}/_lpha`))).servers).toEqual([]);
  });

  it('pages through a stable order with opaque cursors', async () => {
    for (let i = 0; i < 5; i++) await server({ last: `page-${i}` });
    const all = entries(await list(`${search(`${seed.namespace}/page-`)}&limit=100`));
    expect(all).toHaveLength(5);

    const pages: string[][] = [];
    let cursor: string | undefined;
    do {
      const body = await list(
        `${search(`${seed.namespace}/page-`)}&limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      );
      pages.push(entries(body));
      cursor = body.metadata.nextCursor;
      if (cursor) expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    } while (cursor);
    expect(pages.map((page) => page.length)).toEqual([2, 2, 1]);
    expect(pages.flat()).toEqual(all);

    // The same cursor gives the same page.
    const first = await list(`${search(`${seed.namespace}/page-`)}&limit=2`);
    const again = await list(
      `${search(`${seed.namespace}/page-`)}&limit=2&cursor=${encodeURIComponent(first.metadata.nextCursor ?? '')}`,
    );
    expect(entries(again)).toEqual(pages[1]);
  });

  it('defaults to 30 entries a page', async () => {
    for (let i = 0; i < 31; i++) await server({ last: `many-${String(i).padStart(2, '0')}` });
    const body = await list(search(`${seed.namespace}/many-`));
    expect(body.metadata.count).toBe(30);
    expect(body.metadata.nextCursor).toEqual(expect.any(String));
  });

  it('filters by updated_since (RFC 3339, with any offset) and then includes deleted servers', async () => {
    const stale = await server({ last: 'since-stale' });
    const fresh = await server({ last: 'since-fresh' });
    const gone = await server({ last: 'since-gone', deleted: true });
    await seed.touch(stale.name, '1.0.0', new Date('2024-01-01T00:00:00Z'));
    await seed.touch(fresh.name, '1.0.0', new Date('2025-06-01T12:00:00Z'));
    await seed.touch(gone.name, '1.0.0', new Date('2025-06-01T12:00:00Z'));
    const since = (value: string) => `${search(`${seed.namespace}/since-`)}&updated_since=${encodeURIComponent(value)}`;

    const body = await list(since('2025-01-01T00:00:00Z'));
    expect(entries(body)).toEqual([`${fresh.name}@1.0.0`, `${gone.name}@1.0.0`]);
    expect(body.servers.map((entry) => entry._meta[OFFICIAL].status)).toEqual(['active', 'deleted']);
    expect(entries(await list(since('2025-06-01T13:00:00.000+02:00')))).toEqual([
      `${fresh.name}@1.0.0`,
      `${gone.name}@1.0.0`,
    ]);
    // Strictly after: an entry updated at that very instant is not repeated.
    expect((await list(since('2025-06-01T12:00:00Z'))).servers).toEqual([]);
    // A '+' sent unencoded arrives as a space; it is read as the '+' it was.
    const plain = await list(`${search(`${seed.namespace}/since-`)}&updated_since=2025-01-01T00:00:00+01:00`);
    expect(plain.metadata.count).toBe(2);
  });

  it('filters by version: latest, an exact version, or every version', async () => {
    const multi = await server({ last: 'multi', versions: [{ version: '1.0.0' }, { version: '1.1.0' }] });
    const single = await server({ last: 'single', versions: [{ version: '1.0.0' }] });
    const base = `${search(`${seed.namespace}/`)}&limit=100`;

    const latest = await list(`${search(`${seed.namespace}/multi`)}&version=latest`);
    expect(entries(latest)).toEqual([`${multi.name}@1.1.0`]);
    const exact = await list(`${base}&version=1.0.0`);
    expect(entries(exact)).toEqual(expect.arrayContaining([`${multi.name}@1.0.0`, `${single.name}@1.0.0`]));
    expect(entries(exact).every((entry) => entry.endsWith('@1.0.0'))).toBe(true);
    expect(entries(await list(search(`${seed.namespace}/multi`)))).toEqual([
      `${multi.name}@1.0.0`,
      `${multi.name}@1.1.0`,
    ]);
    expect((await list(`${search(`${seed.namespace}/multi`)}&version=9.9.9`)).servers).toEqual([]);
  });

  it('hides deleted servers unless include_deleted, then marks them deleted', async () => {
    const gone = await server({
      last: 'deleted-one',
      versions: [{ version: '1.0.0' }, { version: '2.0.0' }],
      deleted: true,
    });
    const path = search(`${seed.namespace}/deleted-`);

    expect((await list(path)).servers).toEqual([]);
    expect((await list(`${path}&include_deleted=false`)).servers).toEqual([]);
    const shown = await list(`${path}&include_deleted=true`);
    expect(entries(shown)).toEqual([`${gone.name}@1.0.0`, `${gone.name}@2.0.0`]);
    // Every version of a deleted server is deleted, not only the row the registry marked.
    expect(shown.servers.map((entry) => entry._meta[OFFICIAL].status)).toEqual(['deleted', 'deleted']);
    expect(shown.servers[1]?._meta[GATEWAY]).toMatchObject({ health: 'unknown', toolCount: 0 });

    await failing(`${BASE}/servers/${encoded(gone.name)}/versions`, 404);
    await failing(`${BASE}/servers/${encoded(gone.name)}/versions/latest`, 404);
    expect((await list(`${BASE}/servers/${encoded(gone.name)}/versions?include_deleted=true`)).metadata.count).toBe(2);
    const latest = await one(`${BASE}/servers/${encoded(gone.name)}/versions/latest?include_deleted=true`);
    expect(latest._meta[OFFICIAL]).toMatchObject({ status: 'deleted', isLatest: true });
  });

  it('never shows a disabled server, in any list or lookup, but to a sync, as deleted', async () => {
    const off = await server({
      last: 'disabled-one',
      status: 'disabled',
      versions: [{ version: '1.0.0' }, { version: '2.0.0' }],
    });
    // Versions published while the server was active stay hidden once it is disabled.
    const laterOff = await server({
      last: 'disabled-later',
      status: 'disabled',
      versions: [{ version: '1.0.0', status: 'active' }, { version: '2.0.0' }],
    });
    const path = search(`${seed.namespace}/disabled-`);

    expect((await list(path)).servers).toEqual([]);
    expect((await list(`${path}&include_deleted=true`)).servers).toEqual([]);
    // A mirror that copied the server while it was enabled learns to drop it.
    const synced = await list(`${path}&updated_since=2000-01-01T00:00:00Z`);
    expect(entries(synced)).toEqual([
      `${laterOff.name}@1.0.0`,
      `${laterOff.name}@2.0.0`,
      `${off.name}@1.0.0`,
      `${off.name}@2.0.0`,
    ]);
    for (const entry of synced.servers) {
      expect(entry._meta[OFFICIAL].status).toBe('deleted');
      expect(entry._meta[GATEWAY]).toMatchObject({ health: 'unknown', toolCount: 0 });
    }
    for (const { name } of [off, laterOff]) {
      expect(await failing(`${BASE}/servers/${encoded(name)}/versions`, 404)).toMatchObject({
        error: 'Server not found',
      });
      await failing(`${BASE}/servers/${encoded(name)}/versions/latest`, 404);
      await failing(`${BASE}/servers/${encoded(name)}/versions/1.0.0?include_deleted=true`, 404);
    }
  });

  it('shows every version with the server status of now: a version published while disabled or deprecated too', async () => {
    const registry = `${gw.url}/api/v1/servers`;
    const register = async (last: string) => {
      const name = `${seed.namespace}/${last}`;
      const res = await request(registry).post('').send({ name, url: UPSTREAM_URL, version: '1.0.0' }).expect(201);
      return { name, ref: `/${res.body.id as string}` };
    };
    const patch = (ref: string, body: Record<string, unknown>) => request(registry).patch(ref).send(body).expect(200);
    const revived = await register('revived-disabled');
    const undeprecated = await register('revived-deprecated');
    for (const [{ ref }, status] of [
      [revived, 'disabled'],
      [undeprecated, 'deprecated'],
    ] as const) {
      await patch(ref, { status });
      await patch(ref, { version: '2.0.0' });
      await patch(ref, { status: 'active' });
    }

    for (const { name } of [revived, undeprecated]) {
      const versions = await list(`${BASE}/servers/${encoded(name)}/versions`);
      expect(versions.servers.map((entry) => [entry.server.version, entry._meta[OFFICIAL].status])).toEqual([
        ['2.0.0', 'active'],
        ['1.0.0', 'active'],
      ]);
      expect((await one(`${BASE}/servers/${encoded(name)}/versions/1.0.0`))._meta[OFFICIAL].status).toBe('active');
    }
    await patch(revived.ref, { status: 'deprecated' });
    const deprecated = await list(`${BASE}/servers/${encoded(revived.name)}/versions`);
    expect(deprecated.servers.map((entry) => entry._meta[OFFICIAL].status)).toEqual(['deprecated', 'deprecated']);
    await request(registry).delete(revived.ref).expect(204);
    await request(registry).delete(undeprecated.ref).expect(204);
  });

  it('tells a sync with updated_since of every version a deletion, disabling or change of status reaches', async () => {
    const registry = `${gw.url}/api/v1/servers`;
    const patch = (ref: string, body: Record<string, unknown>) => request(registry).patch(ref).send(body).expect(200);
    const publishTwice = async (last: string) => {
      const name = `${seed.namespace}/${last}`;
      const res = await request(registry).post('').send({ name, url: UPSTREAM_URL, version: '1.0.0' }).expect(201);
      const ref = `/${res.body.id as string}`;
      await patch(ref, { version: '2.0.0' });
      return ref;
    };
    const a = await publishTwice('sync-a');
    const b = await publishTwice('sync-b');
    const c = await publishTwice('sync-c');
    const where = search(`${seed.namespace}/sync-`);
    const path = `${where}&limit=100`;
    const synced = (since: string) => list(`${path}&updated_since=${encodeURIComponent(since)}`);
    const seen = (body: EntryList) =>
      body.servers.map(
        (entry) => `${entry.server.name.split('/')[1]}@${entry.server.version}:${entry._meta[OFFICIAL].status}`,
      );
    /** What a mirror keeps for its next sync: the newest updatedAt it has seen. */
    const newest = (body: EntryList) =>
      body.servers.map((entry) => entry._meta[OFFICIAL].updatedAt).reduce((a, b) => (a > b ? a : b));
    const settle = () => new Promise((resolve) => setTimeout(resolve, 5));

    const t0 = newest(await list(path));
    expect((await synced(t0)).servers).toEqual([]);
    await settle();
    await request(registry).delete(a).expect(204);
    await patch(b, { status: 'disabled' });
    await patch(c, { status: 'deprecated', statusMessage: 'Use sync-a' });

    const changed = await synced(t0);
    expect(seen(changed)).toEqual([
      'sync-a@1.0.0:deleted',
      'sync-a@2.0.0:deleted',
      'sync-b@1.0.0:deleted',
      'sync-b@2.0.0:deleted',
      'sync-c@1.0.0:deprecated',
      'sync-c@2.0.0:deprecated',
    ]);
    for (const entry of changed.servers) expect(entry._meta[OFFICIAL].updatedAt > t0).toBe(true);
    expect(changed.servers.slice(4).map((entry) => entry._meta[OFFICIAL].statusMessage)).toEqual([
      'Use sync-a',
      'Use sync-a',
    ]);
    // The same answer a page at a time: the cursor is a (name, version) position, whatever the updatedAt.
    const pages: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await list(
        `${where}&limit=4&updated_since=${encodeURIComponent(t0)}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      );
      pages.push(...seen(page));
      cursor = page.metadata.nextCursor;
    } while (cursor);
    expect(pages).toEqual(seen(changed));

    const t1 = newest(changed);
    await settle();
    await patch(b, { status: 'active' });
    await patch(c, { allowedRoles: ['mcp.sync'] });
    const later = await synced(t1);
    expect(seen(later)).toEqual([
      'sync-b@1.0.0:active',
      'sync-b@2.0.0:active',
      'sync-c@1.0.0:deprecated',
      'sync-c@2.0.0:deprecated',
    ]);
    expect(later.servers.map((entry) => entry._meta[GATEWAY].requiredRoles)).toEqual([
      [],
      [],
      ['mcp.sync'],
      ['mcp.sync'],
    ]);
    expect(seen(await list(path))).toEqual([
      'sync-b@1.0.0:active',
      'sync-b@2.0.0:active',
      'sync-c@1.0.0:deprecated',
      'sync-c@2.0.0:deprecated',
    ]);
    // A change the official API does not show on older versions touches only the latest.
    const t2 = newest(later);
    await settle();
    await patch(b, { title: 'Sync B' });
    expect(seen(await synced(t2))).toEqual(['sync-b@2.0.0:active']);
    await request(registry).delete(b).expect(204);
    await request(registry).delete(c).expect(204);
  });

  it('maps a deprecated server to the official deprecated status with its message', async () => {
    const old = await server({
      last: 'deprecated-one',
      status: 'deprecated',
      statusMessage: 'Use com.example/new instead',
      versions: [{ version: '1.0.0', status: 'active' }, { version: '2.0.0' }],
    });
    const body = await list(search(`${seed.namespace}/deprecated-`));
    expect(entries(body)).toEqual([`${old.name}@1.0.0`, `${old.name}@2.0.0`]);
    for (const entry of body.servers) {
      expect(entry._meta[OFFICIAL]).toMatchObject({
        status: 'deprecated',
        statusMessage: 'Use com.example/new instead',
      });
    }
    const latest = await one(`${BASE}/servers/${encoded(old.name)}/versions/latest`);
    expect(latest._meta[OFFICIAL]).toMatchObject({ status: 'deprecated', isLatest: true });
  });

  it('lists the versions of one server, newest publication first', async () => {
    const versioned = await server({
      last: 'versioned',
      versions: [
        { version: '1.0.0', publishedAt: new Date('2025-01-01T00:00:00Z') },
        { version: '1.10.0', publishedAt: new Date('2025-03-01T00:00:00Z') },
        { version: '1.9.0', publishedAt: new Date('2025-02-01T00:00:00Z') },
      ],
    });
    const body = await list(`${BASE}/servers/${encoded(versioned.name)}/versions`);
    expect(body.servers.map((entry) => entry.server.version)).toEqual(['1.10.0', '1.9.0', '1.0.0']);
    expect(body.metadata).toEqual({ count: 3 });
    expect(body.servers.map((entry) => entry._meta[OFFICIAL].publishedAt)).toEqual([
      '2025-03-01T00:00:00.000Z',
      '2025-02-01T00:00:00.000Z',
      '2025-01-01T00:00:00.000Z',
    ]);
    // The latest is the one the registry marked, whatever the order of publication.
    expect(body.servers.map((entry) => entry._meta[OFFICIAL].isLatest)).toEqual([false, true, false]);
  });

  it('looks up one version, `latest` included, with the version URL-encoded', async () => {
    const built = await server({
      last: 'built',
      versions: [{ version: '1.0.0' }, { version: '1.0.0+20130313144700' }, { version: '2.0.0-beta.1' }],
    });
    const at = (version: string) => `${BASE}/servers/${encoded(built.name)}/versions/${encodeURIComponent(version)}`;

    expect((await one(at('1.0.0'))).server.version).toBe('1.0.0');
    const withBuild = await one(at('1.0.0+20130313144700'));
    expect(withBuild.server.version).toBe('1.0.0+20130313144700');
    expect(withBuild._meta[OFFICIAL].isLatest).toBe(false);
    const latest = await one(at('latest'));
    expect(latest.server).toMatchObject({ name: built.name, version: '2.0.0-beta.1' });
    expect(latest._meta[OFFICIAL].isLatest).toBe(true);
    expect(latest._meta[GATEWAY].url).toBe(`${PUBLIC_URL}/mcp/${built.slug}`);

    expect(await failing(at('3.0.0'), 404)).toEqual({
      error: 'Server version not found',
      title: 'Not Found',
      status: 404,
      detail: 'Server version not found',
    });
    expect(await failing(`${BASE}/servers/${encoded(`${seed.namespace}/nobody`)}/versions/latest`, 404)).toEqual({
      error: 'Server not found',
      title: 'Not Found',
      status: 404,
      detail: 'Server not found',
    });
    await failing(`${BASE}/servers/${encoded(`${seed.namespace}/nobody`)}/versions`, 404);
  });

  it('matches an encoded name as one path segment and a raw slash never', async () => {
    const named = await server({ last: 'segment' });
    const [namespace, last] = named.name.split('/') as [string, string];

    expect((await list(`${BASE}/servers/${namespace}%2F${last}/versions`)).metadata.count).toBe(1);
    expect((await list(`${BASE}/servers/${namespace}%2f${last}/versions`)).metadata.count).toBe(1);
    expect((await one(`${BASE}/servers/${namespace}%2F${last}/versions/1.0.0`)).server.name).toBe(named.name);

    // A raw slash splits the name into two segments: no route of the facade takes that.
    for (const path of [
      `${BASE}/servers/${namespace}/${last}/versions`,
      `${BASE}/servers/${namespace}/${last}/versions/1.0.0`,
      `${BASE}/servers/${namespace}/versions/${last}`,
    ]) {
      const res = await get(path);
      expect(res.status).toBe(404);
      expect(res.text).not.toContain(named.slug);
    }
    // Encoded twice, the name is not a name.
    await failing(`${BASE}/servers/${namespace}%252F${last}/versions`, 404);
  });

  it('allows GET from any origin on these routes only, with preflight', async () => {
    const named = await server({ last: 'cors' });
    const origin = 'https://vscode.dev';

    const listed = await request(gw.url).get(search(named.name)).set('origin', origin).expect(200);
    expect(listed.headers['access-control-allow-origin']).toBe('*');
    expect(listed.headers['access-control-allow-credentials']).toBeUndefined();
    const missing = await request(gw.url).get(`${BASE}/servers/com.example%2Fnone/versions`).set('origin', origin);
    expect(missing.status).toBe(404);
    expect(missing.headers['access-control-allow-origin']).toBe('*');

    for (const path of [`${BASE}/servers`, `${BASE}/servers/${encoded(named.name)}/versions/latest`]) {
      const preflight = await request(gw.url)
        .options(path)
        .set('origin', origin)
        .set('access-control-request-method', 'GET')
        .set('access-control-request-headers', 'accept, x-request-id');
      expect(preflight.status).toBe(204);
      expect(preflight.headers).toMatchObject({
        'access-control-allow-origin': '*',
        'access-control-allow-methods': 'GET, HEAD, OPTIONS',
        'access-control-allow-headers': 'accept, x-request-id',
      });
      expect(preflight.text).toBe('');
    }
    // A hostile header list is not echoed.
    const hostile = await request(gw.url)
      .options(`${BASE}/servers`)
      .set('origin', origin)
      .set('access-control-request-method', 'GET')
      .set('access-control-request-headers', 'x-a\tx, <script>');
    expect(hostile.status).toBe(204);
    expect(hostile.headers['access-control-allow-headers']).toBeUndefined();

    // The rest of /api/v1 is not opened to browsers.
    const api = await request(gw.url).get('/api/v1').set('origin', origin).expect(200);
    expect(api.headers['access-control-allow-origin']).toBeUndefined();
    const apiPreflight = await request(gw.url)
      .options('/api/v1')
      .set('origin', origin)
      .set('access-control-request-method', 'GET');
    // Answered as any OPTIONS on a known path (204, Allow), with no CORS header.
    expect(apiPreflight.status).toBe(204);
    expect(apiPreflight.headers.allow).toBe('GET, HEAD, OPTIONS');
    expect(apiPreflight.headers['access-control-allow-origin']).toBeUndefined();
    expect(apiPreflight.headers['access-control-allow-methods']).toBeUndefined();
    const lookalike = await request(gw.url).get('/api/v1/registry/v0.10/servers').set('origin', origin);
    expect(lookalike.status).toBe(404);
    expect(lookalike.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('answers bad input with a 4xx in the spec error shape, never a 5xx', async () => {
    const named = await server({ last: 'bad-input' });
    const at = `${BASE}/servers/${encoded(named.name)}/versions`;
    const notCursor = Buffer.from(JSON.stringify(['not a name', '1'])).toString('base64url');
    const notPair = Buffer.from(JSON.stringify([`${seed.namespace}/x`, 1])).toString('base64url');
    const badRequests = [
      '?cursor=garbage!',
      '?cursor=bm90IGpzb24',
      `?cursor=${notCursor}`,
      `?cursor=${notPair}`,
      `?cursor=${'A'.repeat(2000)}`,
      '?limit=0',
      '?limit=abc',
      '?limit=10000',
      '?limit=-1',
      '?limit=1.5',
      '?limit=101',
      '?limit=1&limit=2',
      '?updated_since=yesterday',
      '?updated_since=2025-13-01T00:00:00Z',
      '?updated_since=2025-02-30T00:00:00Z',
      '?updated_since=2025-01-01T00:00:00',
      '?updated_since=2025-01-01T24:00:00Z',
      '?include_deleted=maybe',
      '?search=%00',
      '?search=a%07b',
      `?search=${'x'.repeat(300)}`,
      '?version=%00',
      `?version=${'9'.repeat(300)}`,
    ];
    for (const query of badRequests) {
      const body = await failing(`${BASE}/servers${query}`, 400);
      expect(body.title).toBe('Bad Request');
      expect(body.errors?.[0]?.location).toMatch(/^query\./);
    }
    expect((await failing(`${BASE}/servers?limit=0`, 400)).error).toMatch(/^limit: /);

    const notFound = [
      `${BASE}/servers/..%2F..%2Fetc/versions`,
      `${BASE}/servers/..%2F../versions/latest`,
      `${BASE}/servers/%00/versions`,
      `${BASE}/servers/com.example%2F%00/versions/latest`,
      `${BASE}/servers/${'a'.repeat(300)}%2Fb/versions`,
      `${BASE}/servers/com.example%2F${'b'.repeat(300)}/versions/latest`,
      `${BASE}/servers/%20/versions`,
      `${at}/%00`,
      `${at}/${'9'.repeat(300)}`,
      `${at}/..%2F..`,
      `${at}/1.0.0%0A`,
    ];
    for (const path of notFound) await failing(path, 404);
    await failing(`${at}?include_deleted=perhaps`, 400);

    // Malformed percent-encoding never reaches the facade: the router refuses it, in the facade's shape, naming the
    // parameter and never quoting the segment.
    for (const path of [`${BASE}/servers/%E0%A4%A/versions`, `${at}/%ZZ`, `${BASE}/servers/%ff/versions`]) {
      await failing(path, 400);
    }
    const hostile = [
      `%ff${'A'.repeat(4000)}`,
      '%ZZ<script>alert(1)<%2Fscript>',
      '%ZZ%0A%0D%1B[31m%00',
      '<img src=x onerror=alert(1)>%E0%A4%A',
    ];
    for (const segment of hostile) {
      const paths: [path: string, parameter: string][] = [
        [`${BASE}/servers/${segment}/versions`, 'serverName'],
        [`${BASE}/servers/${segment}/versions/latest`, 'serverName'],
        [`${at}/${segment}`, 'version'],
      ];
      for (const [path, name] of paths) {
        const res = await get(path);
        expect({ path, status: res.status }).toEqual({ path, status: 400 });
        assertValid(officialSchemas.errorBody, res.body, `GET ${path}`);
        expect(res.body).toMatchObject({
          error: `path parameter ${name} is not valid percent-encoding`,
          detail: `path parameter ${name} is not valid percent-encoding`,
        });
        for (const echoed of ['AAAA', 'script', 'onerror', '%ZZ', '%ff', '%E0', '%0A', '\n', '\u001b', '[31m']) {
          expect([path, res.text.includes(echoed)]).toEqual([path, false]);
        }
      }
    }
    // A path no route takes: 404, its text not quoted either (the router's own message quotes the whole target).
    for (const path of [`${BASE}/nothing/<script>alert(1)<%2Fscript>`, `${BASE}/servers/a/tools/${'A'.repeat(4000)}`]) {
      const res = await get(path);
      expect({ path, status: res.status }).toEqual({ path, status: 404 });
      assertValid(officialSchemas.errorBody, res.body, `GET ${path}`);
      expect(res.body).toMatchObject({ error: 'no resource is served at this path' });
      for (const echoed of ['AAAA', 'script', 'nothing'])
        expect([path, res.text.includes(echoed)]).toEqual([path, false]);
    }
    const both = await get(`${BASE}/servers/%ZZ/versions/%ff`);
    expect(both.body).toMatchObject({
      status: 400,
      error: 'path parameters serverName, version are not valid percent-encoding',
    });

    await request(gw.url).get('/health/live').expect(200);
  });

  it("answers the router's errors under its prefix in its own shape, with CORS, never problem+json", async () => {
    const routerErrors: [string, string, number][] = [
      ['GET', `${BASE}/servers/io.github.acme/tools/versions`, 404],
      ['GET', `${BASE}/servers/io.github.acme/tools/versions/latest`, 404],
      ['GET', BASE, 404],
      ['GET', `${BASE}/`, 404],
      ['GET', `${BASE}/nothing-here`, 404],
      ['GET', `${BASE}/servers/%ff/versions/latest`, 400],
      ['POST', `${BASE}/servers`, 405],
      ['DELETE', `${BASE}/servers/x/versions/1.0.0`, 405],
    ];
    for (const [method, path, status] of routerErrors) {
      const res = await request(gw.url)[method === 'GET' ? 'get' : method === 'POST' ? 'post' : 'delete'](path);
      answered.push(res.text);
      expect({ method, path, status: res.status, type: res.headers['content-type'] }).toEqual({
        method,
        path,
        status,
        type: 'application/json; charset=utf-8',
      });
      assertValid(officialSchemas.errorBody, res.body, `${method} ${path}`);
      expect(res.body).toMatchObject({ error: expect.any(String), status });
      expect(res.body).not.toHaveProperty('code');
      expect(res.headers['access-control-allow-origin']).toBe('*');
    }
    // Beside the prefix, problem+json as before.
    const beside = await request(gw.url).get(`${BASE}0/servers`).expect(404);
    expect(beside.headers['content-type']).toMatch(/^application\/problem\+json/);
  });

  it('is described in the OpenAPI document: parameters by their type, every answer by its schema', async () => {
    const documented = await DocumentedResponses.of(gw.url);
    const LIST = `${BASE}/servers`;
    const VERSIONS = `${BASE}/servers/{serverName}/versions`;
    const VERSION = `${BASE}/servers/{serverName}/versions/{version}`;
    const typeOf = (path: string, name: string) =>
      documented.operation('get', path).parameters?.find((parameter) => parameter.name === name)?.schema?.type;
    expect(
      ['cursor', 'limit', 'search', 'updated_since', 'version', 'include_deleted'].map((name) => typeOf(LIST, name)),
    ).toEqual(['string', 'integer', 'string', 'string', 'string', 'boolean']);
    expect([typeOf(VERSIONS, 'include_deleted'), typeOf(VERSION, 'include_deleted')]).toEqual(['boolean', 'boolean']);
    expect(typeOf('/api/v1/servers', 'limit')).toBe('integer');
    // Read from text, described with what they hold: their defaults too.
    const defaultOf = (path: string, name: string) =>
      documented.operation('get', path).parameters?.find((parameter) => parameter.name === name)?.schema?.default;
    expect([LIST, VERSIONS, VERSION].map((path) => defaultOf(path, 'include_deleted'))).toEqual([false, false, false]);
    expect(defaultOf(LIST, 'limit')).toBe(30);

    const named = await server({
      last: 'documented',
      title: 'Documented',
      status: 'deprecated',
      statusMessage: 'use v2',
      tools: 1,
      health: 'healthy',
      versions: [{ version: '1.0.0' }, { version: '2.0.0' }],
    });
    await server({ last: 'documented-gone', deleted: true });
    const encoded = encodeURIComponent(named.name);
    const search = encodeURIComponent(`${seed.namespace}/documented`);
    const answers: [string, string][] = [
      [LIST, `${LIST}?search=${search}&include_deleted=true&limit=1`],
      [LIST, `${LIST}?search=${search}&include_deleted=true`],
      [LIST, `${LIST}?limit=0`],
      [LIST, `${LIST}?cursor=not-a-cursor`],
      [VERSIONS, `${BASE}/servers/${encoded}/versions`],
      [VERSIONS, `${BASE}/servers/${encoded}/versions?include_deleted=x`],
      [VERSIONS, `${BASE}/servers/${encodeURIComponent(`${seed.namespace}/nobody`)}/versions`],
      [VERSION, `${BASE}/servers/${encoded}/versions/latest`],
      [VERSION, `${BASE}/servers/${encoded}/versions/1.0.0`],
      [VERSION, `${BASE}/servers/${encoded}/versions/latest?include_deleted=x`],
      [VERSION, `${BASE}/servers/${encoded}/versions/9.9.9`],
    ];
    const statuses: number[] = [];
    for (const [path, url] of answers) {
      const res = await get(url);
      statuses.push(res.status);
      documented.check('get', path, res);
    }
    expect(statuses).toEqual([200, 200, 400, 400, 200, 400, 404, 200, 200, 400, 404]);
    // A page refers to the schema of its entries instead of repeating it.
    expect(documented.doc.components.schemas.ServerList).toMatchObject({
      properties: { servers: { type: 'array', items: { $ref: '#/components/schemas/ServerResponse' } } },
    });
  });

  it('never carries an upstream address, its auth or its settings in any answer', () => {
    expect(seeded.length).toBeGreaterThan(40);
    expect(answered.length).toBeGreaterThan(50);
    const text = answered.join('\n');
    for (const { upstreamUrl, secretEnv } of seeded) {
      expect(text).not.toContain(upstreamUrl);
      expect(text).not.toContain(new URL(upstreamUrl).host);
      expect(text).not.toContain(secretEnv);
    }
    expect(text).not.toContain('X-Api-Key');
    expect(text).not.toContain('"timeouts"');
    expect(text).not.toContain('"auth"');
  });
});

describe('official MCP Registry read API on the embedded database', () => {
  let gw: TestGateway;
  let seed: ServerVersionFactory;

  beforeAll(async () => {
    gw = await startTestGateway('embedded', { PUBLIC_URL });
    seed = new ServerVersionFactory(gw.gateway.app.get(PrismaService));
  }, 60_000);

  afterAll(async () => {
    await gw?.close();
  });

  it('answers the same queries on PGlite', async () => {
    const named = await seed.server({
      last: 'embedded',
      tools: 2,
      health: 'degraded',
      versions: [{ version: '1.0.0' }, { version: '2.0.0' }],
    });
    await seed.server({ last: 'embedded-gone', deleted: true });

    const res = await request(gw.url).get(
      `${BASE}/servers?search=${encodeURIComponent(`${seed.namespace}/EMBEDDED`)}&limit=1`,
    );
    expect(res.status).toBe(200);
    assertValid(officialSchemas.serverList, res.body);
    const page = res.body as EntryList;
    expect(page.servers[0]?._meta[GATEWAY]).toMatchObject({ health: 'degraded', toolCount: 2 });
    const next = await request(gw.url).get(
      `${BASE}/servers?search=${encodeURIComponent(seed.namespace)}&include_deleted=true&cursor=${page.metadata.nextCursor ?? ''}`,
    );
    expect(
      (next.body as EntryList).servers.map((entry) => `${entry.server.version}:${entry._meta[OFFICIAL].status}`),
    ).toEqual(['2.0.0:active', '1.0.0:deleted']);
    const latest = await request(gw.url).get(`${BASE}/servers/${encodeURIComponent(named.name)}/versions/latest`);
    expect(latest.status).toBe(200);
    assertValid(officialSchemas.serverResponse, latest.body);
  });
});
