import { __resetOutOfContextForTests } from 'nestjs-pino/PinoLogger';
import request from 'supertest';
import { PrismaService } from '../src/database/prisma.service';
import { etagOf } from '../src/registry/etag';
import { startTestGateway, type TestGateway } from './support/gateway';
import { PROBLEM_JSON, PUBLIC_URL, serverBody, token } from './support/registry';
import { insertServer, type StoredServer } from './support/servers-table';

const SERVERS = '/api/v1/servers';
const FACADE = '/api/v1/registry/v0.1/servers';
const toolRulesAllow = { field: 'toolRules.allow', message: expect.any(String) as unknown };

/**
 * A `servers` row the gateway cannot read (a tool rule stored as a string where an array belongs: a direct database
 * write, a restore, an older version), written straight into the shared PostgreSQL table. Lists stay available
 * without it, the row itself answers 409 naming the field, it is logged once, and an admin repairs or deletes it.
 */
describe('a stored server the gateway cannot read', () => {
  let gw: TestGateway;
  const written: string[] = [];
  const api = () => request(gw.url);

  beforeAll(async () => {
    gw = await startTestGateway('services');
  });

  // Every other suite lists the shared database: no row of this suite stays behind, the unreadable ones least of all.
  afterAll(async () => {
    if (gw) await gw.gateway.app.get(PrismaService).server.deleteMany({ where: { id: { in: written } } });
    await gw?.close();
  });

  /** A readable server registered through the API, its name holding `mark` for a list filtered on it. */
  async function registered(mark: string): Promise<{ id: string; name: string }> {
    const res = await api()
      .post(SERVERS)
      .send(serverBody({ name: `io.test-${token()}/${mark}-${token()}` }))
      .expect(201);
    written.push(res.body.id as string);
    return res.body as { id: string; name: string };
  }

  /** An unreadable row written straight into the table, its name holding `mark`. */
  async function unreadable(mark: string): Promise<StoredServer> {
    const row = await insertServer(gw.gateway.app, {
      name: `io.test-${token()}/${mark}-${token()}`,
      toolRules: { allow: 'get_*' },
    });
    written.push(row.id);
    return row;
  }

  const unreadableLines = (id: string) =>
    gw.logs.lines.filter(
      (line) => line.serverId === id && String(line.msg).startsWith('a stored server cannot be read'),
    );

  it('is left out of GET /api/v1/servers, every page of it, and logged once with the field at fault', async () => {
    const mark = `unreadable-${token()}`;
    const before = await registered(mark);
    const bad = await unreadable(mark);
    const after = await registered(mark);

    // All at once, twice, then a page at a time: the page holding only the bad row still leads on to the next.
    const named = { id: bad.id, name: bad.name, slug: bad.slug, problems: [toolRulesAllow] };
    for (let round = 0; round < 2; round++) {
      const all = await api().get(SERVERS).query({ q: mark }).expect(200);
      expect((all.body.servers as { id: string }[]).map((server) => server.id)).toEqual([before.id, after.id]);
      expect(all.body.unreadable).toEqual([named]);
    }
    const paged: string[] = [];
    const unreadablePaged: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 5; page++) {
      const res = await api()
        .get(SERVERS)
        .query({ q: mark, limit: '1', ...(cursor ? { cursor } : {}) })
        .expect(200);
      paged.push(...(res.body.servers as { id: string }[]).map((server) => server.id));
      unreadablePaged.push(...((res.body.unreadable ?? []) as { id: string }[]).map((server) => server.id));
      cursor = (res.body.nextCursor as string | null) ?? undefined;
      if (!cursor) break;
    }
    expect(paged).toEqual([before.id, after.id]);
    expect(unreadablePaged).toEqual([bad.id]);
    // A page whose rows are all readable says nothing of the others.
    const readable = await api().get(SERVERS).query({ q: mark, limit: '1' }).expect(200);
    expect(readable.body).not.toHaveProperty('unreadable');
    // The unfiltered list too, as every admin and the CLI read it.
    const unfiltered = await api().get(SERVERS).query({ limit: '100' }).expect(200);
    expect((unfiltered.body.servers as { id: string }[]).map((server) => server.id)).not.toContain(bad.id);

    expect(unreadableLines(bad.id)).toEqual([
      expect.objectContaining({
        level: 40,
        serverId: bad.id,
        slug: bad.slug,
        problems: [toolRulesAllow],
      }),
    ]);
  });

  it('answers 409 problem+json naming the row and the field, by id, slug and name, never a 500', async () => {
    const bad = await unreadable(`unreadable-${token()}`);
    for (const ref of [bad.id, bad.slug, encodeURIComponent(bad.name)]) {
      const res = await api().get(`${SERVERS}/${ref}`);
      expect(res.status).toBe(409);
      expect(res.headers['content-type']).toMatch(PROBLEM_JSON);
      expect(res.body).toMatchObject({
        code: 'conflict',
        detail: expect.stringContaining(`server ${bad.id} (${bad.slug}) is stored with fields the gateway cannot read`),
        errors: [{ field: 'toolRules.allow', message: expect.any(String) }],
      });
      expect(res.body).not.toHaveProperty('errorId');
      expect(res.text).not.toMatch(/ZodError|at .*\.ts|get_\*/);
      // What discovery kept of it is not answered either, as its refresh and probe routes answer it.
      const capabilities = await api().get(`${SERVERS}/${ref}/capabilities`);
      expect(capabilities.status).toBe(409);
      expect(capabilities.body).toMatchObject({ code: 'conflict', errors: [{ field: 'toolRules.allow' }] });
    }
    // Its version history (none: it was never registered through the API) is reached by its name alone.
    await api().get(`${SERVERS}/${bad.id}/versions`).expect(404);
  });

  it('judges a URL that is none as a field it cannot read, named, until a PATCH gives it', async () => {
    const mark = `unreadable-${token()}`;
    const row = await insertServer(gw.gateway.app, { name: `io.test-${token()}/${mark}-url` });
    written.push(row.id);
    await gw.gateway.app.get(PrismaService)
      .$executeRaw`UPDATE servers SET url = 'not a url' WHERE id = ${row.id}::uuid`;

    const url = [{ field: 'url', message: expect.any(String) as unknown }];
    const res = await api().get(`${SERVERS}/${row.id}`);
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({ code: 'conflict', errors: url });
    expect(res.text).not.toMatch(/not a url/);
    const listed = await api().get(SERVERS).query({ q: mark }).expect(200);
    expect(listed.body.servers).toEqual([]);
    expect(listed.body.unreadable).toEqual([{ id: row.id, name: row.name, slug: row.slug, problems: url }]);
    await api().patch(`${SERVERS}/${row.id}`).send({ title: 'Still broken' }).expect(409);
    await api().patch(`${SERVERS}/${row.id}`).send({ url: PUBLIC_URL }).expect(200);
    const repaired = await api().get(SERVERS).query({ q: mark }).expect(200);
    expect((repaired.body.servers as { id: string }[]).map((server) => server.id)).toEqual([row.id]);
    expect(repaired.body).not.toHaveProperty('unreadable');
  });

  it('leaves the other readers of the servers table answering: health, the official registry API, discovery', async () => {
    const bad = await unreadable(`unreadable-${token()}`);
    await api().get('/api/v1/health/servers').expect(200);
    await api().get(`/api/v1/health/servers/${bad.id}`).expect(200);
    await api().get('/api/v1/registry/v0.1/servers').query({ limit: '100' }).expect(200);
    await api().get('/api/v1/discovery/tools').expect(200);
  });

  it('refuses a PATCH that leaves a bad field as it is, 409 naming it, and changes nothing', async () => {
    const bad = await unreadable(`unreadable-${token()}`);
    const res = await api().patch(`${SERVERS}/${bad.id}`).send({ title: 'Renamed' });
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({ code: 'conflict', errors: [{ field: 'toolRules.allow' }] });
    const row = await gw.gateway.app.get(PrismaService).server.findUniqueOrThrow({ where: { id: bad.id } });
    expect(row).toMatchObject({ title: null, revision: 1, toolRules: { allow: 'get_*' } });
  });

  it('is repaired by a PATCH giving the bad field, then read and listed as any other', async () => {
    const mark = `unreadable-${token()}`;
    const bad = await unreadable(mark);
    const res = await api()
      .patch(`${SERVERS}/${bad.id}`)
      .send({ title: 'Repaired', toolRules: { allow: ['get_*'] } })
      .expect(200);
    expect(res.body).toMatchObject({
      id: bad.id,
      name: bad.name,
      slug: bad.slug,
      title: 'Repaired',
      url: PUBLIC_URL,
      toolRules: { allow: ['get_*'] },
      revision: 2,
    });
    await api().get(`${SERVERS}/${bad.id}`).expect(200);
    const listed = await api().get(SERVERS).query({ q: mark }).expect(200);
    expect((listed.body.servers as { id: string }[]).map((server) => server.id)).toEqual([bad.id]);
    const versions = await api().get(`${SERVERS}/${bad.id}/versions`).expect(200);
    expect(versions.body.versions).toEqual([expect.objectContaining({ version: '0.0.0', isLatest: true })]);
  });

  it('is repaired by a PUT, which needs no If-Match more than any PUT, and honours one it is given', async () => {
    const bad = await unreadable(`unreadable-${token()}`);
    const body = { name: bad.name, url: PUBLIC_URL, toolRules: { deny: ['delete_*'] } };
    await api().put(`${SERVERS}/${bad.id}`).set('if-match', etagOf(bad.id, 7)).send(body).expect(412);
    const res = await api().put(`${SERVERS}/${bad.id}`).send(body).expect(200);
    expect(res.body).toMatchObject({ id: bad.id, slug: bad.slug, toolRules: { deny: ['delete_*'] }, revision: 2 });
    await api().get(`${SERVERS}/${bad.id}`).expect(200);
  });

  it('is named in an export, which an import of it ignores', async () => {
    const bad = await unreadable(`unreadable-${token()}`);
    const exported = await api().get(`${SERVERS}/export`).expect(200);
    expect((exported.body.servers as { name: string }[]).map((server) => server.name)).not.toContain(bad.name);
    expect(exported.body.unreadable).toContainEqual({
      id: bad.id,
      name: bad.name,
      slug: bad.slug,
      problems: [{ field: 'toolRules.allow', message: expect.any(String) }],
    });
    // The envelope of an export imports whole; the servers it names as unreadable are not documents of it.
    const document = {
      name: `${bad.name}-copy`,
      description: 'Imported for a test',
      version: '1.0.0',
      remotes: [{ type: 'streamable-http', url: PUBLIC_URL }],
    };
    const imported = await api()
      .post(`${SERVERS}/import`)
      .send({ servers: [document], unreadable: exported.body.unreadable })
      .expect(200);
    expect(imported.body).toMatchObject({ created: 1, failed: 0 });
    await api()
      .delete(`${SERVERS}/${encodeURIComponent(document.name)}`)
      .expect(204);
    // Any other field of the envelope is still refused.
    await api()
      .post(`${SERVERS}/import`)
      .send({ servers: [document], other: [] })
      .expect(400);
  });

  it('is deleted by DELETE, as any other server', async () => {
    const bad = await unreadable(`unreadable-${token()}`);
    await api().delete(`${SERVERS}/${bad.id}`).expect(204);
    await api().get(`${SERVERS}/${bad.id}`).expect(404);
    expect(await gw.gateway.app.get(PrismaService).server.findUnique({ where: { id: bad.id } })).toBeNull();
  });
});

/**
 * Stored rows of `server_versions` the gateway cannot read (a status it does not know, a record that is no object or
 * whose fields are not what a record holds), written straight into the shared PostgreSQL table beside readable ones:
 * the version lists keep the readable versions, and the bad one read alone is answered 409 naming the fields.
 */
describe('a stored server version the gateway cannot read', () => {
  let gw: TestGateway;
  const names: string[] = [];
  const api = () => request(gw.url);
  const prisma = () => gw.gateway.app.get(PrismaService);

  beforeAll(async () => {
    // nestjs-pino keeps the logger of the first app in the process for its injected loggers: this gateway's own.
    __resetOutOfContextForTests();
    gw = await startTestGateway('services');
  });

  afterAll(async () => {
    if (gw) {
      await prisma().server.deleteMany({ where: { name: { in: names } } });
      await prisma().serverVersion.deleteMany({ where: { name: { in: names } } });
    }
    await gw?.close();
  });

  /**
   * A server registered at 1.0.0 and changed to 1.1.0, 1.2.0 and 1.3.0 (the latest, left readable), then its history
   * broken behind the gateway's back: 1.0.0's title a number (a field the official registry API publishes), 1.1.0's
   * auth of a type the schema refuses (one it does not), 1.2.0 a record that is no object and a status it does not know.
   */
  async function brokenHistory(): Promise<{ id: string; name: string }> {
    const created = await api()
      .post(SERVERS)
      .send(serverBody({ version: '1.0.0', title: 'History' }))
      .expect(201);
    const { id, name } = created.body as { id: string; name: string };
    names.push(name);
    for (const version of ['1.1.0', '1.2.0', '1.3.0']) {
      await api().patch(`${SERVERS}/${id}`).send({ version }).expect(200);
    }
    await prisma().$executeRaw`
      UPDATE server_versions SET record = jsonb_set(record, '{title}', '42') WHERE name = ${name} AND version = '1.0.0'`;
    await prisma().$executeRaw`
      UPDATE server_versions SET record = jsonb_set(record, '{auth}', '{"type":"bogus"}')
      WHERE name = ${name} AND version = '1.1.0'`;
    await prisma().$executeRaw`
      UPDATE server_versions SET record = '"garbage"', status = 'bogus' WHERE name = ${name} AND version = '1.2.0'`;
    return { id, name };
  }

  const problem = (field: string) => ({ field, message: expect.any(String) as unknown });

  it('is left out of GET /servers/{ref}/versions, named in its unreadable, and answered 409 alone', async () => {
    const { id, name } = await brokenHistory();
    for (const ref of [id, encodeURIComponent(name)]) {
      const list = await api().get(`${SERVERS}/${ref}/versions`).expect(200);
      expect((list.body.versions as { version: string }[]).map((row) => row.version)).toEqual(['1.3.0']);
      expect(list.body.unreadable).toEqual(
        expect.arrayContaining([
          { version: '1.0.0', problems: [problem('record.title')] },
          { version: '1.1.0', problems: [problem('record.auth.type')] },
          { version: '1.2.0', problems: [problem('status'), problem('record')] },
        ]),
      );
      expect(list.body.unreadable).toHaveLength(3);
    }
    const fields = { '1.0.0': ['record.title'], '1.1.0': ['record.auth.type'], '1.2.0': ['status', 'record'] };
    for (const [version, named] of Object.entries(fields)) {
      const res = await api().get(`${SERVERS}/${id}/versions/${version}`);
      expect(res.status).toBe(409);
      expect(res.headers['content-type']).toMatch(PROBLEM_JSON);
      expect(res.body).toMatchObject({
        code: 'conflict',
        detail: `version "${version}" of server ${name} is stored with fields the gateway cannot read`,
        errors: named.map(problem),
      });
      expect(res.body).not.toHaveProperty('errorId');
      expect(res.text).not.toMatch(/ZodError|garbage|bogus/);
    }
    await api().get(`${SERVERS}/${id}/versions/1.3.0`).expect(200);
    // The server itself reads as ever; its history once deleted too.
    await api().get(`${SERVERS}/${id}`).expect(200);
    await api().delete(`${SERVERS}/${id}`).expect(204);
    const gone = await api().get(`${SERVERS}/${id}/versions`).expect(200);
    expect(gone.body.versions).toEqual([expect.objectContaining({ version: '1.3.0', status: 'deleted' })]);
    expect(gone.body.unreadable).toHaveLength(3);

    const logged = gw.logs.lines.filter(
      (line) => line.serverName === name && String(line.msg).startsWith('a stored server version cannot be read'),
    );
    // Once each a write of the row (the DELETE wrote every version of the server, its updatedAt): each is named.
    expect([...new Set(logged.map((line) => line.version))].sort()).toEqual(['1.0.0', '1.1.0', '1.2.0']);
    expect(logged.every((line) => line.level === 40)).toBe(true);
  });

  it('is left out of the official registry API when what it publishes cannot be read, and answered 409 alone', async () => {
    const { name } = await brokenHistory();
    const encoded = encodeURIComponent(name);
    // 1.1.0's auth is none of the API's business: it is published as it was.
    const shown = ['1.1.0', '1.3.0'];
    const versions = await api().get(`${FACADE}/${encoded}/versions`).expect(200);
    const listed = (body: { servers: { server: { version: string } }[] }) =>
      body.servers.map((entry) => entry.server.version).sort();
    expect(listed(versions.body)).toEqual(shown);
    expect(versions.body.metadata).toEqual({ count: 2 });
    const search = await api().get(FACADE).query({ search: name, limit: '1' }).expect(200);
    const paged = [...listed(search.body)];
    let cursor = search.body.metadata.nextCursor as string | undefined;
    for (let page = 0; cursor && page < 5; page++) {
      const next = await api().get(FACADE).query({ search: name, limit: '1', cursor }).expect(200);
      paged.push(...listed(next.body));
      cursor = next.body.metadata.nextCursor as string | undefined;
    }
    expect(paged.sort()).toEqual(shown);
    const all = await api().get(FACADE).query({ search: name }).expect(200);
    expect(listed(all.body)).toEqual(shown);

    for (const [version, named] of [
      ['1.0.0', 'record.title'],
      ['1.2.0', 'status'],
    ] as const) {
      const res = await api().get(`${FACADE}/${encoded}/versions/${version}`);
      expect(res.status).toBe(409);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.body.error).toContain(`Version "${version}" of server ${name} is stored with fields`);
      expect(res.body.error).toContain(named);
      expect(res.text).not.toMatch(/ZodError|garbage|errorId/);
    }
    const oneOne = await api().get(`${FACADE}/${encoded}/versions/1.1.0`).expect(200);
    expect(JSON.stringify(oneOne.body)).not.toContain('bogus');
    await api().get(`${FACADE}/${encoded}/versions/latest`).expect(200);
  });
});
