import request from 'supertest';
import { PrismaService } from '../src/database/prisma.service';
import { startTestGateway, type TestGateway } from './support/gateway';
import { matrixCells, ROLES, SERVERS, type ServerKey } from './support/rbac-matrix';
import { insertServer, type StoredServer } from './support/servers-table';

describe('GET /api/v1/authz/explain', () => {
  let gw: TestGateway;
  const stored = {} as Record<ServerKey, StoredServer>;

  beforeAll(async () => {
    gw = await startTestGateway('services');
    for (const [key, server] of Object.entries(SERVERS) as [ServerKey, (typeof SERVERS)[ServerKey]][]) {
      stored[key] = await insertServer(gw.gateway.app, {
        allowedRoles: [...server.allowedRoles],
        toolRules: server.toolRules,
      });
    }
  });

  // The shared database keeps no rows of this suite: its `broken` server (a tool rule PostgreSQL holds but the
  // gateway cannot read) would fail every other suite's unfiltered `GET /api/v1/servers` with a 500.
  afterAll(async () => {
    if (gw) {
      const ids = Object.values(stored).map((server) => server.id);
      await gw.gateway.app.get(PrismaService).server.deleteMany({ where: { id: { in: ids } } });
    }
    await gw?.close();
  });

  const explain = (query: Record<string, string>) => request(gw.url).get('/api/v1/authz/explain').query(query);

  it.each(matrixCells())(
    'answers %s on server %s, tool %s as the policy matrix says',
    async (role, key, tool, sees, calls) => {
      const roles = ROLES[role].join(',');
      const res = await explain({
        server: stored[key].slug,
        tool,
        scopes: 'access_as_user',
        ...(roles ? { roles } : {}),
      }).expect(200);
      expect(res.body.see.allowed).toBe(sees);
      expect(res.body.call.allowed).toBe(calls);
      expect(res.body.allowed).toBe(calls);
      expect(res.body.rule).toBe(
        calls ? res.body.call.rule : [res.body.see, res.body.call].find((d) => !d.allowed).rule,
      );
    },
  );

  it('answers with the server, the caller and every decision', async () => {
    const res = await explain({
      server: stored.readonly.id,
      tool: 'get_secret_key',
      roles: 'Gateway.Reader',
      scopes: 'access_as_user Files.Read',
    }).expect(200);
    expect(res.body).toEqual({
      server: stored.readonly,
      tool: 'get_secret_key',
      caller: { roles: ['Gateway.Reader'], scopes: ['access_as_user', 'Files.Read'], appOnly: false },
      allowed: false,
      rule: 'tool-deny:get_secret*',
      scope: { allowed: true, rule: 'scopes-present' },
      see: { allowed: true, rule: 'server-role:Gateway.Reader' },
      call: { allowed: false, rule: 'tool-deny:get_secret*' },
    });
  });

  it('explains visibility alone without a tool, and finds servers by id, slug or name', async () => {
    for (const server of [stored.open.id, stored.open.slug, stored.open.name]) {
      const res = await explain({ server, roles: 'Gateway.User' }).expect(200);
      expect(res.body).toMatchObject({ allowed: true, rule: 'server-role:Gateway.User', call: null, tool: null });
      // Without scopes, the caller is app-only: roles alone decide.
      expect(res.body.caller.appOnly).toBe(true);
    }
  });

  it('refuses a delegated caller without the required scope, naming the scope (consent could fix it)', async () => {
    const res = await explain({ server: stored.open.slug, roles: 'Gateway.User', scopes: 'Files.Read' }).expect(200);
    expect(res.body).toMatchObject({ allowed: false, rule: 'scope-missing:access_as_user' });
  });

  it('answers 404 problem+json for an unknown server and 400 for bad input', async () => {
    const missing = await explain({ server: 'no-such-server' }).expect(404);
    expect(missing.body).toMatchObject({ code: 'not_found' });
    const bad = await explain({ server: '' }).expect(400);
    expect(bad.body.code).toBe('validation_error');
    const extra = await explain({ server: stored.open.slug, verbose: 'yes' }).expect(400);
    expect(extra.body.code).toBe('validation_error');
    await explain({ server: `../${'x'.repeat(400)}` }).expect(400);
  });

  it('is described in the OpenAPI document', async () => {
    const doc = await request(gw.url).get('/docs-json').expect(200);
    expect(Object.keys(doc.body.paths)).toContain('/api/v1/authz/explain');
  });
});
