import { randomUUID } from 'node:crypto';
import request from 'supertest';
import type { AuditRecordView } from '../src/audit/audit.dto';
import { auditOf, sql } from './support/audit';
import { runCli } from './support/cli';
import { entraEnv, HOME_TENANT, LocalEntraIssuer } from './support/entra-issuer';
import { eventually } from './support/eventually';
import { startTestGateway, type TestGateway } from './support/gateway';
import { startReplicas, stopReplicas } from './support/gateway-replicas';
import { connectClient } from './support/mcp-client';
import { createScratchDatabase, REDIS_URL } from './support/services';
import { GREET_TOOLS, BYE_TOOLS, TestUpstream } from './support/upstream';

type Scratch = Awaited<ReturnType<typeof createScratchDatabase>>;

async function registerServer(url: string, upstreamUrl: string, role: string): Promise<{ id: string; slug: string }> {
  const slug = `aud-${randomUUID().slice(0, 8)}`;
  const created = await request(url)
    .post('/api/v1/servers')
    .send({
      name: `com.example.audit/${slug}`,
      slug,
      url: upstreamUrl,
      allowedRoles: [role],
      toolRules: { deny: ['echoBye'] },
    })
    .expect(201);
  return { id: created.body.id as string, slug };
}

/** Runs `count` tasks, `width` at a time. */
async function inParallel(count: number, width: number, task: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < count) await task(next++);
    }),
  );
}

describe('audit records of real MCP requests', () => {
  let issuer: LocalEntraIssuer;
  let upstream: TestUpstream;
  let scratch: Scratch;
  let gw: TestGateway;
  let server: { id: string; slug: string };
  const role = `Audit.${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    issuer = await LocalEntraIssuer.start();
    upstream = await TestUpstream.start('greet', [...GREET_TOOLS, ...BYE_TOOLS]);
    scratch = await createScratchDatabase();
    gw = await startTestGateway('services', {
      ...entraEnv(issuer),
      DATABASE_URL: scratch.url,
      UPSTREAM_ALLOWED_HOSTS: 'loopback',
    });
    server = await registerServer(gw.url, upstream.url, role);
  });

  afterAll(async () => {
    await gw?.close();
    await upstream?.stop();
    await issuer?.stop();
    await scratch?.drop();
  });

  /** The server's records, oldest first, once the trail has written them. */
  async function recordsOf(query: Record<string, string>): Promise<AuditRecordView[]> {
    await auditOf(gw.gateway.app).trail.flush();
    const res = await request(gw.url).get('/api/v1/audit').query(query).expect(200);
    return (res.body.records as AuditRecordView[]).reverse();
  }

  it('records allowed and denied calls through /mcp/{slug}, with who, what, the rule and the outcome', async () => {
    const token = await issuer.token({ roles: [role], name: 'Ada Lovelace' });
    const { client } = await connectClient(`${gw.url}/mcp/${server.slug}`, token);
    try {
      await client.callTool({ name: 'echoHai', arguments: { userName: 'Ada', apiToken: 'sekrit' } });
      await expect(client.callTool({ name: 'echoBye', arguments: { userName: 'Ada' } })).rejects.toThrow();
    } finally {
      await client.close();
    }
    const records = await recordsOf({ server: server.slug, method: 'tools/call' });
    expect(records.map((r) => [r.surface, r.target, r.decision, r.outcome])).toEqual([
      ['server', 'echoHai', 'allowed', 'ok'],
      ['server', 'echoBye', 'denied', 'refused'],
    ]);
    expect(records[1]!.rule).toBe('tool-deny:echoBye');
    expect(records[0]).toMatchObject({
      principal: { tid: HOME_TENANT, name: 'Ada Lovelace', oid: expect.any(String), clientId: expect.any(String) },
      server,
      arguments: { userName: 'Ada', apiToken: '[redacted]' },
      upstreamStatus: 200,
    });
    expect(records[0]!.upstreamMs).toEqual(expect.any(Number));
    const initialize = await recordsOf({ server: server.slug, method: 'initialize' });
    expect(initialize.length).toBeGreaterThanOrEqual(1);
  });

  it('records calls through /mcp under the upstream name', async () => {
    const token = await issuer.token({ roles: [role] });
    const { client } = await connectClient(`${gw.url}/mcp`, token);
    try {
      await eventually(async () => {
        const { tools } = await client.listTools();
        expect(tools.map((tool) => tool.name)).toContain(`${server.slug}__echoHai`);
      });
      await client.callTool({ name: `${server.slug}__echoHai`, arguments: { userName: 'Bob' } });
    } finally {
      await client.close();
    }
    const records = await recordsOf({ server: server.slug, tool: 'echoHai' });
    expect(records.at(-1)).toMatchObject({ surface: 'aggregate', decision: 'allowed', outcome: 'ok' });
  });

  it('stores a resource URI read through /mcp/{slug} without the credentials it carries, and finds it by the URI sent', async () => {
    const token = await issuer.token({ roles: [role] });
    const secret = `opaque-${randomUUID()}`;
    const uri = `https://files.example/${randomUUID()}?access_token=${secret}&page=2#id_token=${secret}-2`;
    const { client } = await connectClient(`${gw.url}/mcp/${server.slug}`, token);
    try {
      // The upstream serves no resources: the read fails there, and is recorded all the same.
      await expect(client.readResource({ uri })).rejects.toThrow();
    } finally {
      await client.close();
    }
    const records = await recordsOf({ server: server.slug, method: 'resources/read', tool: uri });
    expect(records).toHaveLength(1);
    expect(records[0]!.target).toBe(
      `${uri.slice(0, uri.indexOf('?'))}?access_token=[redacted]&page=2#id_token=[redacted]`,
    );
    const stored = JSON.stringify(await sql(scratch.url, 'SELECT * FROM audit_records'));
    expect(stored).not.toContain(secret);
  });

  it('records refused tokens with the reason, the slug the path names and the JSON-RPC id, and never the token', async () => {
    const forged = await issuer.token({ roles: [role], aud: 'api://someone-else' });
    await request(gw.url)
      .post(`/mcp/${server.slug}`)
      .set('authorization', `Bearer ${forged}`)
      .send({ jsonrpc: '2.0', id: 1, method: 'tools/list' })
      .expect(401);
    // Refused before the server is looked up: the record has the slug the path names, and no server id.
    const records = await recordsOf({ decision: 'unauthenticated', server: server.slug });
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({
      principal: null,
      outcome: 'refused',
      surface: 'server',
      server: { id: null, slug: server.slug },
      method: 'tools/list',
      rpcId: 1,
    });
    expect(records[0]!.rule).toMatch(/aud/i);
    const stored = await sql(scratch.url, 'SELECT * FROM audit_records');
    const signature = forged.split('.')[2]!;
    expect(JSON.stringify(stored)).not.toContain(signature);
    await expect(auditOf(gw.gateway.app).verify()).resolves.not.toHaveProperty('broken');
  });

  it('records of refused tokens take a slug only from a path that names one, and an id only from a lone request', async () => {
    const madeUp = `nosuch-${randomUUID().slice(0, 8)}`;
    const long = 'i'.repeat(5_000);
    const sent: [string, string, unknown, Partial<AuditRecordView>][] = [
      // A slug no server has: recorded as the path names it, as the refusal's metadata URL does.
      [
        'a made-up slug',
        `/mcp/${madeUp}`,
        { jsonrpc: '2.0', id: 'a-1', method: 'tools/call' },
        { surface: 'server', server: { id: null, slug: madeUp }, method: 'tools/call', rpcId: 'a-1' },
      ],
      [
        'the REST bridge',
        `/mcp/${server.slug}/tools/echoHai`,
        { userName: 'Ada' },
        { surface: 'rest', server: { id: null, slug: server.slug }, method: 'http', rpcId: null },
      ],
      [
        'the aggregate',
        '/mcp',
        { jsonrpc: '2.0', id: 0, method: 'ping' },
        { surface: 'aggregate', server: null, rpcId: 0 },
      ],
      [
        'a path segment that is no slug',
        `/mcp/${encodeURIComponent("x' OR 1=1 --")}`,
        { jsonrpc: '2.0', id: 2, method: 'ping' },
        { surface: 'aggregate', server: null, rpcId: 2 },
      ],
      [
        'a batch',
        `/mcp/${server.slug}`,
        [{ jsonrpc: '2.0', id: 3, method: 'ping' }],
        { server: { id: null, slug: server.slug }, method: 'http', rpcId: null },
      ],
      ['an object as the id', '/mcp', { jsonrpc: '2.0', id: { $ne: 1 }, method: 'ping' }, { rpcId: null }],
      ['a null id', '/mcp', { jsonrpc: '2.0', id: null, method: 'ping' }, { rpcId: null }],
      ['a number too large for JSON-RPC', '/mcp', '{"jsonrpc":"2.0","id":1e400,"method":"ping"}', { rpcId: null }],
      ['an oversized id', '/mcp', { jsonrpc: '2.0', id: long, method: 'ping' }, {}],
    ];
    const ids = new Map<string, Partial<AuditRecordView>>();
    for (const [name, path, body, expected] of sent) {
      const requestId = `refused-${randomUUID()}`;
      ids.set(requestId, expected);
      const res = await request(gw.url)
        .post(path)
        .set('x-request-id', requestId)
        .set('content-type', 'application/json')
        .send(body as object);
      expect([name, res.status]).toEqual([name, 401]);
    }
    const records = (await recordsOf({ decision: 'unauthenticated', limit: '500' })).filter((record) =>
      ids.has(record.requestId),
    );
    expect(records).toHaveLength(sent.length);
    for (const record of records) expect(record).toMatchObject(ids.get(record.requestId)!);
    // Cut as every client-chosen text is (the cut text is no JSON any more, so it is listed as the text stored).
    const oversized = records.find((record) => String(record.rpcId).includes('iii'));
    expect(String(oversized?.rpcId).length).toBeLessThanOrEqual(200);
    // A slug anyone may name is no server of the gateway's: never a metrics label.
    const metrics = await request(gw.url).get('/metrics').expect(200);
    expect(metrics.text).not.toContain(madeUp);
    await expect(auditOf(gw.gateway.app).verify()).resolves.not.toHaveProperty('broken');
  });
});

describe('audit trail across gateway processes', () => {
  let issuer: LocalEntraIssuer;
  let upstream: TestUpstream;
  let scratch: Scratch;
  const role = `Audit.${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    issuer = await LocalEntraIssuer.start();
    upstream = await TestUpstream.start('greet', GREET_TOOLS);
    scratch = await createScratchDatabase();
  });

  afterAll(async () => {
    await upstream?.stop();
    await issuer?.stop();
    await scratch?.drop();
  });

  const env = (extra: Record<string, string> = {}) => ({
    ...entraEnv(issuer),
    DATABASE_URL: scratch.url,
    REDIS_URL,
    UPSTREAM_ALLOWED_HOSTS: 'loopback',
    DISCOVERY_INTERVAL_MS: '0',
    HEALTH_PROBE_INTERVAL_MS: '0',
    ...extra,
  });

  it('two processes write their own chains at once, and verify passes over both', async () => {
    const replicas = await startReplicas(2, env({ AUDIT_BATCH_SIZE: '20', AUDIT_FLUSH_INTERVAL_MS: '10' }));
    let slug: string;
    try {
      slug = (await registerServer(replicas[0]!.url, upstream.url, role)).slug;
      const token = await issuer.token({ roles: [role] });
      // The other replica learns of the new server, then of its tools once discovered, through the cluster signal:
      // a 200 with no tools yet would let the calls below reach a replica that answers 404.
      for (const replica of replicas) {
        await eventually(async () => {
          const listed = await request(replica.url)
            .get(`/mcp/${slug}/tools`)
            .set('authorization', `Bearer ${token}`)
            .expect(200);
          expect((listed.body.tools as { name: string }[]).map((tool) => tool.name)).toContain('echoHai');
        });
      }
      await inParallel(200, 10, async (i) => {
        await request(replicas[i % 2]!.url)
          .post(`/mcp/${slug}/tools/echoHai`)
          .set('authorization', `Bearer ${token}`)
          .send({ userName: `u${i}` })
          .expect(200);
      });
    } finally {
      expect(await stopReplicas(replicas)).toEqual([0, 0]);
    }
    const perStream = await sql<{ n: number }>(
      scratch.url,
      "SELECT count(*)::int AS n FROM audit_records WHERE server_slug = $1 AND target = 'echoHai' GROUP BY stream_id ORDER BY n",
      [slug],
    );
    expect(perStream).toEqual([{ n: 100 }, { n: 100 }]);
    const result = await runCli(['audit', 'verify'], { DATABASE_URL: scratch.url, LOG_LEVEL: 'error' });
    expect(result.stdout).toMatch(/audit chain verified: \d+ record\(s\) in 2 stream\(s\)/);
    expect(result.code).toBe(0);
  });

  it('SIGTERM with 1,000 queued records: all 1,000 stored before the process exits', async () => {
    // A flush interval and batch size that never fire: every record is still queued at the signal.
    const [replica] = await startReplicas(
      1,
      env({ AUDIT_FLUSH_INTERVAL_MS: '60000', AUDIT_BATCH_SIZE: '10000', AUDIT_QUEUE_CAPACITY: '10000' }),
    );
    const requestIds: string[] = [];
    try {
      await inParallel(1_000, 20, async (i) => {
        const requestId = `sigterm-${i}-${randomUUID()}`;
        requestIds.push(requestId);
        await request(replica!.url)
          .post('/mcp')
          .set('x-request-id', requestId)
          .send({ jsonrpc: '2.0', id: i, method: 'tools/list' })
          .expect(401);
      });
      const before = await sql<{ n: number }>(
        scratch.url,
        "SELECT count(*)::int AS n FROM audit_records WHERE request_id LIKE 'sigterm-%'",
      );
      expect(before).toEqual([{ n: 0 }]);
    } finally {
      expect(await stopReplicas([replica!])).toEqual([0]);
    }
    const after = await sql<{ n: number; streams: number }>(
      scratch.url,
      "SELECT count(DISTINCT request_id)::int AS n, count(DISTINCT stream_id)::int AS streams FROM audit_records WHERE request_id LIKE 'sigterm-%'",
    );
    expect(after).toEqual([{ n: 1_000, streams: 1 }]);
    expect((await runCli(['audit', 'verify'], { DATABASE_URL: scratch.url, LOG_LEVEL: 'error' })).code).toBe(0);
  });
});
