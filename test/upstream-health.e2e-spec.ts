import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { PrismaService } from '../src/database/prisma.service';
import { RegistryEvents } from '../src/registry/registry-events';
import type { ServerHealthDetail } from '../src/upstream-health/upstream-health.dto';
import { UpstreamHealthRepository } from '../src/upstream-health/upstream-health.repository';
import { startTestGateway, type TestGateway } from './support/gateway';
import { parsePrometheusText, valueOf } from './support/prometheus-text';
import { startRawHttpServer, type RawHttpServer } from './support/raw-http';
import { deleteServers, insertServer, type ServerRow } from './support/server-rows';
import { GREET_TOOLS, TestUpstream } from './support/upstream';

const PREFIX = 'uh';
const PROBLEM_JSON = /^application\/problem\+json/;

/** Polls `read` until `until` holds or the deadline passes; then fails with the last value seen. */
async function eventually<T>(read: () => Promise<T>, until: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T = await read();
  while (!until(last)) {
    if (Date.now() > deadline) {
      throw new Error(`condition not met within ${timeoutMs} ms; last value: ${JSON.stringify(last, null, 2)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
    last = await read();
  }
  return last;
}

/**
 * The prober of a test gateway sees every server in the shared database; this
 * narrows its rounds to the rows `mine` holds (still through the real query),
 * so leftovers of other tests neither slow these tests down nor count.
 */
function probeOnly(gw: TestGateway, mine: Set<string>): void {
  const repository = gw.gateway.app.get(UpstreamHealthRepository);
  const list = repository.listProbedServerIds.bind(repository);
  jest
    .spyOn(repository, 'listProbedServerIds')
    .mockImplementation(async () => (await list()).filter((id) => mine.has(id)));
}

describe('upstream health (services)', () => {
  let gw: TestGateway;
  let prisma: PrismaService;
  let greet: TestUpstream;
  let steady: TestUpstream;
  let hung: RawHttpServer;
  let refusing: RawHttpServer;
  const rows: ServerRow[] = [];
  const mine = new Set<string>();

  async function register(url: string, overrides: Parameters<typeof insertServer>[2] = {}): Promise<ServerRow> {
    const row = await insertServer(prisma, PREFIX, { url, ...overrides });
    rows.push(row);
    mine.add(row.id);
    return row;
  }

  async function healthOf(id: string): Promise<ServerHealthDetail> {
    const res = await request(gw.url).get(`/api/v1/health/servers/${id}`).expect(200);
    return res.body as ServerHealthDetail;
  }

  beforeAll(async () => {
    greet = await TestUpstream.start('greet', GREET_TOOLS);
    steady = await TestUpstream.start('steady', GREET_TOOLS);
    hung = await startRawHttpServer(() => undefined);
    refusing = await startRawHttpServer((_req, res) => {
      res.writeHead(401, { 'www-authenticate': 'Bearer' }).end();
    });
    gw = await startTestGateway('services', {
      UPSTREAM_ALLOWED_HOSTS: 'loopback',
      HEALTH_PROBE_INTERVAL_MS: '200',
      HEALTH_PROBE_TIMEOUT_MS: '500',
      HEALTH_UNREACHABLE_AFTER: '3',
    });
    probeOnly(gw, mine);
    prisma = gw.gateway.app.get(PrismaService);
  });

  afterAll(async () => {
    if (prisma) await deleteServers(prisma, rows);
    await gw?.close();
    await Promise.all([greet?.stop(), steady?.stop(), hung?.close(), refusing?.close()]);
  });

  it('makes a registered server healthy, with its latency and a stored transition', async () => {
    const server = await register(greet.url);
    const health = await eventually(
      () => healthOf(server.id),
      (h) => h.status === 'healthy',
    );
    expect(health).toMatchObject({
      id: server.id,
      slug: server.slug,
      name: server.name,
      serverStatus: 'active',
      consecutiveFailures: 0,
    });
    expect(health.latencyP50Ms).toBeGreaterThan(0);
    expect(health.latencyP95Ms).toBeGreaterThanOrEqual(health.latencyP50Ms ?? Infinity);
    expect(Date.parse(health.lastSuccessAt ?? '')).toBeGreaterThan(0);
    // Normally one transition, unknown -> healthy; on a starved machine a first probe may time out before.
    expect(health.transitions[0]).toMatchObject({ to: 'healthy', at: health.changedAt });
    expect(health.transitions.at(-1)).toMatchObject({ from: 'unknown' });
    const stored = await prisma.serverHealthTransition.findMany({ where: { serverId: server.id } });
    expect(stored).toHaveLength(health.transitions.length);

    const healthy = await request(gw.url).get('/api/v1/health/servers?status=healthy').expect(200);
    expect(healthy.body.servers.map((s: { id: string }) => s.id)).toContain(server.id);
    expect(new Set(healthy.body.servers.map((s: { status: string }) => s.status))).toEqual(new Set(['healthy']));
    const unreachable = await request(gw.url).get('/api/v1/health/servers?status=unreachable').expect(200);
    expect(unreachable.body.servers.map((s: { id: string }) => s.id)).not.toContain(server.id);
  });

  it('turns a stopped upstream unreachable after 3 refused probes, and healthy again once it is back', async () => {
    const server = await register(greet.url);
    await eventually(
      () => healthOf(server.id),
      (h) => h.status === 'healthy',
    );

    await greet.refuse();
    const down = await eventually(
      () => healthOf(server.id),
      (h) => h.status === 'unreachable' && h.lastErrorKind === 'connection_refused',
    );
    expect(down.consecutiveFailures).toBeGreaterThanOrEqual(3);
    expect(down.latencyP50Ms).toBeGreaterThan(0);
    expect(down.transitions[0]).toMatchObject({
      from: 'degraded',
      to: 'unreachable',
      reason: expect.stringMatching(/^unreachable: 3 consecutive failed probes \(/),
    });
    expect(down.transitions[1]).toMatchObject({ from: 'healthy', to: 'degraded' });
    const stored = await prisma.serverHealthTransition.findMany({
      where: { serverId: server.id },
      orderBy: { at: 'desc' },
    });
    expect(stored.map((t) => `${t.from}->${t.to}`)).toEqual(down.transitions.map((t) => `${t.from}->${t.to}`));
    expect(gw.logs.lines).toContainEqual(
      expect.objectContaining({
        msg: 'upstream health changed',
        serverId: server.id,
        from: 'degraded',
        to: 'unreachable',
      }),
    );

    await greet.restart();
    const up = await eventually(
      () => healthOf(server.id),
      (h) => h.status === 'healthy',
    );
    expect(up).toMatchObject({ consecutiveFailures: 0, lastErrorKind: 'connection_refused' });
    expect(up.transitions[0]).toMatchObject({
      from: 'unreachable',
      to: 'healthy',
      reason: expect.stringMatching(/^recovered/),
    });
  });

  it('times out a hung upstream without delaying the probes of another', async () => {
    const stuck = await register(hung.url);
    const fine = await register(steady.url);
    const first = await eventually(
      () => healthOf(stuck.id),
      (h) => h.lastErrorKind === 'timeout',
    );
    expect(first.status).toBe('degraded');

    // While the hung upstream's probes take their full 500 ms, the other keeps being probed every 200 ms.
    const seen = new Set<string>();
    await eventually(
      async () => {
        const [a, b] = await Promise.all([healthOf(stuck.id), healthOf(fine.id)]);
        if (b.lastCheckedAt) seen.add(b.lastCheckedAt);
        return a;
      },
      (a) => a.consecutiveFailures >= first.consecutiveFailures + 2,
    );
    expect(seen.size).toBeGreaterThanOrEqual(3);
    await eventually(
      () => healthOf(fine.id),
      (h) => h.status === 'healthy',
    );
    // Every probe ends its session: neither upstream piles up sessions or connections.
    const connections = await new Promise<number>((resolve, reject) =>
      hung.server.getConnections((error, count) => (error ? reject(error) : resolve(count))),
    );
    expect(connections).toBeLessThanOrEqual(2);
    expect(steady['sessions'].size).toBeLessThanOrEqual(1);

    const down = await eventually(
      () => healthOf(stuck.id),
      (h) => h.status === 'unreachable',
    );
    expect(down).toMatchObject({ lastErrorKind: 'timeout', lastSuccessAt: null, latencyP50Ms: null });
  });

  it('counts an upstream answering 401 as reachable: degraded with an auth error, never unreachable', async () => {
    const server = await register(refusing.url);
    const checks = new Set<string>();
    const statuses = new Set<string>();
    const health = await eventually(
      async () => {
        const h = await healthOf(server.id);
        if (h.lastCheckedAt) checks.add(h.lastCheckedAt);
        statuses.add(h.status);
        return h;
      },
      (h) => checks.size > 4 && h.lastErrorKind === 'auth',
    );
    expect(health).toMatchObject({
      status: 'degraded',
      consecutiveFailures: 0,
      lastError: "the upstream refused the gateway's credentials (HTTP 401)",
      lastSuccessAt: null,
    });
    expect(statuses).not.toContain('unreachable');
    expect(health.transitions).toEqual([expect.objectContaining({ from: 'unknown', to: 'degraded' })]);
  });

  it('counts an auth challenge as healthy for a server only a signed-in user can use (entra-obo)', async () => {
    const server = await register(refusing.url, { auth: { type: 'entra-obo', scope: 'api://upstream/.default' } });
    const health = await eventually(
      () => healthOf(server.id),
      (h) => h.status === 'healthy',
    );
    expect(health).toMatchObject({ consecutiveFailures: 0, lastErrorKind: null });
    expect(health.latencyP50Ms).toBeGreaterThan(0);
  });

  it('counts a header secret the gateway lacks as an auth error too', async () => {
    const variable = `UH_MISSING_${randomUUID().slice(0, 8).toUpperCase()}`;
    const server = await register(steady.url, {
      auth: { type: 'headers', headers: { 'X-Api-Key': { env: variable } } },
    });
    const health = await eventually(
      () => healthOf(server.id),
      (h) => h.lastErrorKind === 'auth',
    );
    expect(health).toMatchObject({
      status: 'degraded',
      consecutiveFailures: 0,
      lastError: `environment variable ${variable} (for header X-Api-Key) is not set`,
    });
  });

  it('probes on request, even a disabled server the background rounds leave alone', async () => {
    const server = await register(steady.url, { status: 'disabled' });
    const before = await healthOf(server.id);
    expect(before).toMatchObject({ status: 'unknown', serverStatus: 'disabled', lastCheckedAt: null, changedAt: null });

    // Asked again only if a starved machine let the first probe time out.
    const res = await eventually(
      () => request(gw.url).post(`/api/v1/health/servers/${server.id}/probe`).expect(200),
      (r) => r.body.status === 'healthy',
    );
    expect(res.body).toMatchObject({ id: server.id, serverStatus: 'disabled', consecutiveFailures: 0 });
    expect(res.body.lastCheckedAt).not.toBeNull();
    expect(res.body.transitions[0]).toMatchObject({ to: 'healthy' });
  });

  it('lists servers with the prober settings and counters', async () => {
    const res = await request(gw.url).get('/api/v1/health/servers').expect(200);
    const ids = res.body.servers.map((s: { id: string }) => s.id);
    for (const row of rows) expect(ids).toContain(row.id);
    expect(res.body.prober).toMatchObject({
      enabled: true,
      intervalMs: 200,
      timeoutMs: 500,
      unreachableAfter: 3,
      healthyAfter: 1,
      counters: { rounds: expect.any(Number), probes: expect.any(Number) },
    });
    const { counters } = res.body.prober;
    expect(counters.probes).toBeGreaterThan(0);
    expect(counters.failedProbes).toMatchObject({
      connection_refused: expect.any(Number),
      timeout: expect.any(Number),
      auth: expect.any(Number),
    });
    expect(counters.transitions['degraded->unreachable']).toBeGreaterThanOrEqual(2);
  });

  it('forgets a deleted server', async () => {
    const server = await register(steady.url);
    await eventually(
      () => healthOf(server.id),
      (h) => h.status === 'healthy',
    );
    await prisma.server.delete({ where: { id: server.id } });
    gw.gateway.app.get(RegistryEvents).emit({ type: 'deleted', serverId: server.id, slug: server.slug });
    await request(gw.url).get(`/api/v1/health/servers/${server.id}`).expect(404);
    expect(await prisma.serverHealth.count({ where: { serverId: server.id } })).toBe(0);
    expect(await prisma.serverHealthTransition.count({ where: { serverId: server.id } })).toBe(0);
  });

  it('logs no errors while probing', () => {
    expect(gw.logs.lines.filter((line) => (line.level as number) >= 50)).toEqual([]);
  });

  describe('bad input', () => {
    it.each([
      ['GET', '/api/v1/health/servers/Not_A_Ref', 'ref'],
      ['POST', '/api/v1/health/servers/Not_A_Ref/probe', 'ref'],
      ['GET', '/api/v1/health/servers?status=sideways', 'status'],
      ['GET', '/api/v1/health/servers?status=healthy&status=degraded', 'status'],
    ])('%s %s answers 400 naming the field', async (method, path, field) => {
      const res = await (method === 'GET' ? request(gw.url).get(path) : request(gw.url).post(path)).expect(400);
      expect(res.headers['content-type']).toMatch(PROBLEM_JSON);
      expect(res.body).toMatchObject({ status: 400, code: 'validation_error' });
      expect(res.body.errors.map((e: { field: string }) => e.field)).toEqual([field]);
    });

    it.each([
      ['GET', ''],
      ['POST', '/probe'],
    ])('%s of an unknown server answers 404', async (method, suffix) => {
      const path = `/api/v1/health/servers/${randomUUID()}${suffix}`;
      const res = await (method === 'GET' ? request(gw.url).get(path) : request(gw.url).post(path)).expect(404);
      expect(res.headers['content-type']).toMatch(PROBLEM_JSON);
      expect(res.body).toMatchObject({ status: 404, code: 'not_found' });
    });
  });

  it('leaves the gateway’s own /health alone', async () => {
    await request(gw.url).get('/health/live').expect(200, { status: 'ok' });
    await request(gw.url).get('/health').expect(200);
  });

  it('describes the routes in /docs-json', async () => {
    const res = await request(gw.url).get('/docs-json').expect(200);
    const paths = res.body.paths;
    expect(paths['/api/v1/health/servers'].get.parameters).toContainEqual(
      expect.objectContaining({ name: 'status', in: 'query' }),
    );
    expect(paths['/api/v1/health/servers/{ref}'].get.parameters).toContainEqual(
      expect.objectContaining({ name: 'ref', in: 'path' }),
    );
    expect(paths['/api/v1/health/servers/{ref}/probe'].post.responses['200']).toBeDefined();
  });
});

describe('upstream health probing on registry events (services)', () => {
  let gw: TestGateway;
  let prisma: PrismaService;
  let upstream: TestUpstream;
  let hung: RawHttpServer;
  let closed = false;
  const rows: ServerRow[] = [];

  beforeAll(async () => {
    upstream = await TestUpstream.start('events', GREET_TOOLS);
    hung = await startRawHttpServer(() => undefined);
    // Rounds an hour apart: whatever is probed here, an event asked for.
    gw = await startTestGateway('services', {
      UPSTREAM_ALLOWED_HOSTS: 'loopback',
      HEALTH_PROBE_INTERVAL_MS: '3600000',
      HEALTH_PROBE_TIMEOUT_MS: '20000',
    });
    prisma = gw.gateway.app.get(PrismaService);
  });

  afterAll(async () => {
    if (prisma && !closed) await deleteServers(prisma, rows);
    await gw?.close();
    await Promise.all([upstream?.stop(), hung?.close()]);
  });

  it('probes a created server soon', async () => {
    const server = await insertServer(prisma, PREFIX, { url: upstream.url });
    rows.push(server);
    gw.gateway.app.get(RegistryEvents).emit({ type: 'created', serverId: server.id, slug: server.slug });
    await eventually(
      () => request(gw.url).get(`/api/v1/health/servers/${server.id}`),
      (r) => r.body.status === 'healthy',
      5_000,
    );
    const list = await request(gw.url).get('/api/v1/health/servers').expect(200);
    expect(list.body.prober.counters.rounds).toBe(0);
  });

  it('stops without waiting for a probe that hangs', async () => {
    const server = await insertServer(prisma, PREFIX, { url: hung.url });
    rows.push(server);
    const requests = new Promise<void>((resolve) => hung.server.once('request', () => resolve()));
    gw.gateway.app.get(RegistryEvents).emit({ type: 'updated', serverId: server.id, slug: server.slug });
    await requests;
    await deleteServers(prisma, rows);
    const started = Date.now();
    closed = true;
    await gw.close();
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});

describe('upstream health probing by two replicas of one deployment (services)', () => {
  const INTERVAL_MS = 200;
  const replicas: TestGateway[] = [];
  let prisma: PrismaService;
  let upstream: TestUpstream;
  const rows: ServerRow[] = [];
  const mine = new Set<string>();

  beforeAll(async () => {
    upstream = await TestUpstream.start('pair', GREET_TOOLS);
    // One database and one Redis: one deployment.
    for (let index = 0; index < 2; index++) {
      const gw = await startTestGateway('services', {
        UPSTREAM_ALLOWED_HOSTS: 'loopback',
        HEALTH_PROBE_INTERVAL_MS: String(INTERVAL_MS),
        HEALTH_PROBE_TIMEOUT_MS: '2000',
      });
      probeOnly(gw, mine);
      replicas.push(gw);
    }
    prisma = replicas[0]!.gateway.app.get(PrismaService);
  });

  afterAll(async () => {
    if (prisma) await deleteServers(prisma, rows);
    await Promise.all(replicas.map((gw) => gw.close()));
    await upstream?.stop();
  });

  /** The probes each replica has recorded. */
  const probesOf = (): Promise<number[]> =>
    Promise.all(
      replicas.map(
        async (gw) =>
          (await request(gw.url).get('/api/v1/health/servers').expect(200)).body.prober.counters.probes as number,
      ),
    );

  it('probes an upstream once per interval, by whichever replica claims the round, not once per replica', async () => {
    const before = await probesOf();
    const start = Date.now();
    const server = await insertServer(prisma, PREFIX, { url: upstream.url });
    rows.push(server);
    mine.add(server.id);
    await new Promise((resolve) => setTimeout(resolve, 12 * INTERVAL_MS));
    const after = await probesOf();
    const end = Date.now();

    const made = after[0]! - before[0]! + (after[1]! - before[1]!);
    // Each round is one interval of the wall clock, claimed in Redis by one replica. A round claimed just before
    // the server was inserted may still have listed it: one more.
    const rounds = Math.floor(end / INTERVAL_MS) - Math.floor(start / INTERVAL_MS) + 2;
    expect(made).toBeGreaterThanOrEqual(2);
    expect(made).toBeLessThanOrEqual(rounds);
    const health = await request(replicas[1]!.url).get(`/api/v1/health/servers/${server.id}`).expect(200);
    expect(health.body.status).toBe('healthy');
    // Every replica's /metrics shows the stored health, whichever replica probed.
    for (const gw of replicas) {
      const families = parsePrometheusText((await request(gw.url).get('/metrics').expect(200)).text);
      expect(valueOf(families, 'mcp_gateway_upstream_health_status', { server: server.slug, status: 'healthy' })).toBe(
        1,
      );
    }
  });
});
