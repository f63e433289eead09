import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { PrismaService } from '../src/database/prisma.service';
import { ListChangedWatchers } from '../src/discovery/list-changed-watchers';
import { UpstreamHealthRepository } from '../src/upstream-health/upstream-health.repository';
import type { ServerHealthDetail } from '../src/upstream-health/upstream-health.dto';
import { eventually, waitUntil } from './support/eventually';
import { guardUpstreams, type GuardedUpstreams } from './support/guarded-upstream';
import { connectClient } from './support/mcp-client';
import { BYE_TOOLS, GREET_TOOLS, TestUpstream } from './support/upstream';

/** A way to make a stored row unreadable behind the gateway's back, and the field it names. */
interface Breakage {
  what: string;
  field: string;
  write: (prisma: PrismaService, id: string) => Promise<unknown>;
}

const BREAKAGES: Breakage[] = [
  {
    what: 'auth of a type the schema refuses',
    field: 'auth.type',
    write: (prisma, id) => prisma.server.update({ where: { id }, data: { auth: { type: 'bogus' } } }),
  },
  {
    what: 'a URL that is none',
    field: 'url',
    write: (prisma, id) => prisma.$executeRaw`UPDATE servers SET url = 'not a url' WHERE id = ${id}::uuid`,
  },
];

/**
 * Server rows made unreadable behind the gateway's back (each in one of the ways above, written straight into
 * PostgreSQL: a direct write, a restore, an older version) beside a readable one: every reader of the servers table
 * other than the registry (the prober, discovery and its list-changed watcher, /mcp and /mcp/{slug}) leaves each out
 * as its own failure, logged once, and goes on with the other server.
 */
describe('a stored server the gateway cannot read, to the prober, discovery and /mcp', () => {
  const role = `Readers.${randomUUID().slice(0, 8)}`;
  let guarded: GuardedUpstreams<TestUpstream>;
  let good: { slug: string; serverId: string };
  let bads: ({ slug: string; serverId: string } & Breakage)[];
  let brokenAt: Date;
  const api = () => request(guarded.gw.url);
  const token = () => guarded.issuer.token({ roles: [role] });
  const linesAbout = (serverId: string, message: string) =>
    guarded.gw.logs.lines.filter((line) => line.serverId === serverId && String(line.msg).startsWith(message));
  const healthOf = async (id: string): Promise<ServerHealthDetail> =>
    (await api().get(`/api/v1/health/servers/${id}`).expect(200)).body as ServerHealthDetail;
  const aggregateTools = async (): Promise<string[]> => {
    const { client } = await connectClient(`${guarded.gw.url}/mcp`, await token());
    try {
      return (await client.listTools()).tools.map((tool) => tool.name);
    } finally {
      await client.close();
    }
  };
  const problemsOf = (bad: Breakage) => [{ field: bad.field, message: expect.any(String) as unknown }];

  beforeAll(async () => {
    const registration = { allowedRoles: [role] };
    const bye = await TestUpstream.start('bad', BYE_TOOLS);
    guarded = await guardUpstreams(
      [
        {
          upstream: await TestUpstream.start('good', GREET_TOOLS),
          slug: `good-${randomUUID().slice(0, 8)}`,
          registration,
        },
        ...BREAKAGES.map(() => ({ upstream: bye, slug: `bad-${randomUUID().slice(0, 8)}`, registration })),
      ],
      { HEALTH_PROBE_INTERVAL_MS: '200', HEALTH_PROBE_TIMEOUT_MS: '5000' },
    );
    const [first, ...rest] = guarded.servers;
    if (!first || rest.length !== BREAKAGES.length) throw new Error(`${BREAKAGES.length + 1} registrations expected`);
    good = first;
    bads = rest.map((server, i) => ({ ...server, ...BREAKAGES[i]! }));
    const all = [good, ...bads];
    // The prober sees every row of the shared database: its rounds hold these (through the real query).
    const mine = new Set(all.map((server) => server.serverId));
    const repository = guarded.gw.gateway.app.get(UpstreamHealthRepository);
    const list = repository.listProbedServerIds.bind(repository);
    jest
      .spyOn(repository, 'listProbedServerIds')
      .mockImplementation(async () => (await list()).filter((id) => mine.has(id)));

    // Readable, all are synced, watched, probed and offered on /mcp.
    const watchers = guarded.gw.gateway.app.get(ListChangedWatchers);
    await waitUntil(
      () => all.every((server) => watchers.stateOf(server.serverId) === 'connected'),
      'every server is watched',
    );
    for (const bad of bads) await eventually(async () => expect((await healthOf(bad.serverId)).status).toBe('healthy'));
    await eventually(async () => {
      const tools = await aggregateTools();
      for (const server of all) {
        expect(tools.filter((name) => name.startsWith(`${server.slug}__`)).length).toBeGreaterThan(0);
      }
    });

    brokenAt = new Date();
    const prisma = guarded.gw.gateway.app.get(PrismaService);
    for (const bad of bads) await bad.write(prisma, bad.serverId);
  }, 60_000);

  afterAll(async () => {
    await guarded?.stop();
  });

  it('is no longer probed, nor recorded unreachable, while the round goes on probing the other server', async () => {
    const before = new Map<string, ServerHealthDetail>();
    for (const bad of bads) before.set(bad.serverId, await healthOf(bad.serverId));
    /** The other server's next check after `since`: a round went by. */
    const roundAfter = (since: Date) =>
      eventually(async () => {
        const checked = new Date((await healthOf(good.serverId)).lastCheckedAt!);
        expect(checked.getTime()).toBeGreaterThan(since.getTime());
        return checked;
      });
    // A probe of one already under way at the write may record after it: their health is read once two rounds have
    // gone by, and two more rounds must leave it as it was.
    const settledRound = await roundAfter(await roundAfter(brokenAt));
    const settled = new Map<string, ServerHealthDetail>();
    for (const bad of bads) settled.set(bad.serverId, await healthOf(bad.serverId));
    await roundAfter(await roundAfter(settledRound));
    for (const bad of bads) {
      const after = await healthOf(bad.serverId);
      expect({ what: bad.what, lastCheckedAt: after.lastCheckedAt }).toEqual({
        what: bad.what,
        lastCheckedAt: settled.get(bad.serverId)!.lastCheckedAt,
      });
      expect(after).toMatchObject({
        status: before.get(bad.serverId)!.status,
        lastErrorKind: null,
        consecutiveFailures: 0,
      });

      const probed = await api().post(`/api/v1/health/servers/${bad.serverId}/probe`).expect(409);
      expect(probed.body).toMatchObject({ code: 'conflict', errors: problemsOf(bad) });
      expect(probed.body.detail).toContain(`server ${bad.serverId} (${bad.slug}) is stored with fields`);

      expect(linesAbout(bad.serverId, 'a stored server the gateway cannot read is not probed')).toEqual([
        expect.objectContaining({ level: 40, slug: bad.slug, problems: problemsOf(bad) }),
      ]);
    }
    expect(guarded.gw.logs.lines.filter((line) => line.msg === 'upstream health probing failed')).toEqual([]);
  });

  it('is not synced, and its list-changed watcher is closed, the upstream not blamed; the other one syncs', async () => {
    const watchers = guarded.gw.gateway.app.get(ListChangedWatchers);
    for (const bad of bads) {
      for (let i = 0; i < 2; i++) {
        const refused = await api().post(`/api/v1/servers/${bad.serverId}/refresh`).expect(409);
        expect(refused.body).toMatchObject({ code: 'conflict', errors: problemsOf(bad) });
        await api().post(`/api/v1/servers/${good.serverId}/refresh`).expect(200);
      }
      expect({ what: bad.what, watch: watchers.stateOf(bad.serverId) }).toEqual({ what: bad.what, watch: 'off' });
      expect(linesAbout(bad.serverId, 'a stored server the gateway cannot read is not synced')).toEqual([
        expect.objectContaining({ level: 40, slug: bad.slug, problems: problemsOf(bad) }),
      ]);
      expect(linesAbout(bad.serverId, 'discovery sync failed')).toEqual([]);
    }
    expect(watchers.stateOf(good.serverId)).toBe('connected');
  });

  it('has the items of its last good sync answered by none of the discovery routes, as its refresh is', async () => {
    for (const bad of bads) {
      const capabilities = await api().get(`/api/v1/servers/${bad.serverId}/capabilities`);
      expect({ what: bad.what, status: capabilities.status }).toEqual({ what: bad.what, status: 409 });
      expect(capabilities.body).toMatchObject({ code: 'conflict', errors: problemsOf(bad) });
      expect(capabilities.body.detail).toContain(`server ${bad.serverId} (${bad.slug}) is stored with fields`);
      expect(capabilities.text).not.toContain('echoBye');
    }
    const kept = await api().get(`/api/v1/servers/${good.serverId}/capabilities`).expect(200);
    expect(kept.body.tools.length).toBeGreaterThan(0);
  });

  it('is left out of /mcp and answered as no server at /mcp/{slug}, logged once each', async () => {
    await eventually(async () => {
      const tools = await aggregateTools();
      for (const bad of bads) expect(tools.filter((name) => name.startsWith(`${bad.slug}__`))).toEqual([]);
      expect(tools.filter((name) => name.startsWith(`${good.slug}__`)).length).toBeGreaterThan(0);
    });
    for (const bad of bads) {
      for (let i = 0; i < 2; i++) {
        await expect(connectClient(`${guarded.gw.url}/mcp/${bad.slug}`, await token())).rejects.toThrow(
          `Unknown MCP server: ${bad.slug}`,
        );
      }
      expect(linesAbout(bad.serverId, 'a stored server the gateway cannot read is left out of /mcp')).toEqual([
        expect.objectContaining({ level: 40, slug: bad.slug, problems: problemsOf(bad) }),
      ]);
      expect(linesAbout(bad.serverId, 'a stored server the gateway cannot read is not served at /mcp/{slug}')).toEqual([
        expect.objectContaining({ level: 40, slug: bad.slug, problems: problemsOf(bad) }),
      ]);
    }
    const { client } = await connectClient(`${guarded.gw.url}/mcp/${good.slug}`, await token());
    await client.close();
  });
});
