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

/**
 * A server row made unreadable behind the gateway's back (`auth` of a type the schema refuses, written straight into
 * PostgreSQL: a direct write, a restore, an older version) beside a readable one: every reader of the servers table
 * other than the registry (the prober, discovery and its list-changed watcher, /mcp and /mcp/{slug}) leaves it out as
 * its own failure, logged once, and goes on with the other server.
 */
describe('a stored server the gateway cannot read, to the prober, discovery and /mcp', () => {
  const role = `Readers.${randomUUID().slice(0, 8)}`;
  let guarded: GuardedUpstreams<TestUpstream>;
  let good: { slug: string; serverId: string };
  let bad: { slug: string; serverId: string };
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

  beforeAll(async () => {
    const registration = { allowedRoles: [role] };
    guarded = await guardUpstreams(
      [
        {
          upstream: await TestUpstream.start('good', GREET_TOOLS),
          slug: `good-${randomUUID().slice(0, 8)}`,
          registration,
        },
        { upstream: await TestUpstream.start('bad', BYE_TOOLS), slug: `bad-${randomUUID().slice(0, 8)}`, registration },
      ],
      { HEALTH_PROBE_INTERVAL_MS: '200', HEALTH_PROBE_TIMEOUT_MS: '5000' },
    );
    const [first, second] = guarded.servers;
    if (!first || !second) throw new Error('two registrations expected');
    [good, bad] = [first, second];
    // The prober sees every row of the shared database: its rounds hold these two (through the real query).
    const mine = new Set([good.serverId, bad.serverId]);
    const repository = guarded.gw.gateway.app.get(UpstreamHealthRepository);
    const list = repository.listProbedServerIds.bind(repository);
    jest
      .spyOn(repository, 'listProbedServerIds')
      .mockImplementation(async () => (await list()).filter((id) => mine.has(id)));

    // Readable, both are synced, watched, probed and offered on /mcp.
    const watchers = guarded.gw.gateway.app.get(ListChangedWatchers);
    await waitUntil(
      () => [good, bad].every((server) => watchers.stateOf(server.serverId) === 'connected'),
      'both servers are watched',
    );
    await eventually(async () => expect((await healthOf(bad.serverId)).status).toBe('healthy'));
    await eventually(async () => {
      const tools = await aggregateTools();
      expect(tools.filter((name) => name.startsWith(`${bad.slug}__`)).length).toBeGreaterThan(0);
      expect(tools.filter((name) => name.startsWith(`${good.slug}__`)).length).toBeGreaterThan(0);
    });

    brokenAt = new Date();
    await guarded.gw.gateway.app
      .get(PrismaService)
      .server.update({ where: { id: bad.serverId }, data: { auth: { type: 'bogus' } } });
  }, 60_000);

  afterAll(async () => {
    await guarded?.stop();
  });

  const authType = [{ field: 'auth.type', message: expect.any(String) as unknown }];

  it('is no longer probed, nor recorded unreachable, while the round goes on probing the other server', async () => {
    const before = await healthOf(bad.serverId);
    /** The other server's next check after `since`: a round went by. */
    const roundAfter = (since: Date) =>
      eventually(async () => {
        const checked = new Date((await healthOf(good.serverId)).lastCheckedAt!);
        expect(checked.getTime()).toBeGreaterThan(since.getTime());
        return checked;
      });
    // A probe of it already under way at the write may record after it: its health is read once two rounds have
    // gone by, and two more rounds must leave it as it was.
    const settledRound = await roundAfter(await roundAfter(brokenAt));
    const settled = await healthOf(bad.serverId);
    await roundAfter(await roundAfter(settledRound));
    const after = await healthOf(bad.serverId);
    expect(after.lastCheckedAt).toBe(settled.lastCheckedAt);
    expect(after).toMatchObject({ status: before.status, lastErrorKind: null, consecutiveFailures: 0 });

    const probed = await api().post(`/api/v1/health/servers/${bad.serverId}/probe`).expect(409);
    expect(probed.body).toMatchObject({ code: 'conflict', errors: authType });
    expect(probed.body.detail).toContain(`server ${bad.serverId} (${bad.slug}) is stored with fields`);

    expect(linesAbout(bad.serverId, 'a stored server the gateway cannot read is not probed')).toEqual([
      expect.objectContaining({ level: 40, slug: bad.slug, problems: authType }),
    ]);
    expect(guarded.gw.logs.lines.filter((line) => line.msg === 'upstream health probing failed')).toEqual([]);
  });

  it('is not synced, and its list-changed watcher is closed, the upstream not blamed; the other one syncs', async () => {
    for (let i = 0; i < 2; i++) {
      const refused = await api().post(`/api/v1/servers/${bad.serverId}/refresh`).expect(409);
      expect(refused.body).toMatchObject({ code: 'conflict', errors: authType });
      await api().post(`/api/v1/servers/${good.serverId}/refresh`).expect(200);
    }
    const watchers = guarded.gw.gateway.app.get(ListChangedWatchers);
    expect(watchers.stateOf(bad.serverId)).toBe('off');
    expect(watchers.stateOf(good.serverId)).toBe('connected');
    expect(linesAbout(bad.serverId, 'a stored server the gateway cannot read is not synced')).toEqual([
      expect.objectContaining({ level: 40, slug: bad.slug, problems: authType }),
    ]);
    expect(linesAbout(bad.serverId, 'discovery sync failed')).toEqual([]);
  });

  it('is left out of /mcp and answered as no server at /mcp/{slug}, logged once each', async () => {
    await eventually(async () => {
      const tools = await aggregateTools();
      expect(tools.filter((name) => name.startsWith(`${bad.slug}__`))).toEqual([]);
      expect(tools.filter((name) => name.startsWith(`${good.slug}__`)).length).toBeGreaterThan(0);
    });
    for (let i = 0; i < 2; i++) {
      await expect(connectClient(`${guarded.gw.url}/mcp/${bad.slug}`, await token())).rejects.toThrow(
        `Unknown MCP server: ${bad.slug}`,
      );
    }
    const { client } = await connectClient(`${guarded.gw.url}/mcp/${good.slug}`, await token());
    await client.close();
    expect(linesAbout(bad.serverId, 'a stored server the gateway cannot read is left out of /mcp')).toEqual([
      expect.objectContaining({ level: 40, slug: bad.slug, problems: authType }),
    ]);
    expect(linesAbout(bad.serverId, 'a stored server the gateway cannot read is not served at /mcp/{slug}')).toEqual([
      expect.objectContaining({ level: 40, slug: bad.slug, problems: authType }),
    ]);
  });
});
