import { randomUUID } from 'node:crypto';
import { cpSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { __resetOutOfContextForTests } from 'nestjs-pino/PinoLogger';
import request from 'supertest';
import type { AuditRow } from '../src/audit/audit-record';
import { AuditSpool } from '../src/audit/audit-spool';
import type { AuditRecordView } from '../src/audit/audit.dto';
import { AuditRepository } from '../src/audit/audit.repository';
import { openDatabase } from '../src/database/database';
import { applyMigrations, MIGRATIONS_DIR } from '../src/database/migrator';
import { createLogger } from '../src/logging/logger';
import { principalKeyOf } from '../src/mcp/principal-key';
import { auditOf, exchangeFactory, sql } from './support/audit';
import { waitUntil } from './support/eventually';
import { startTestGateway, type TestGateway } from './support/gateway';
import { createScratchDatabase } from './support/services';

const JWT =
  'eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIn0.c2lnbmF0dXJlLWJ5dGVz';

/** One database for the file: verify walks every stream in it, and each must hold. */
let scratch: Awaited<ReturnType<typeof createScratchDatabase>>;

beforeAll(async () => {
  scratch = await createScratchDatabase();
});

afterAll(async () => {
  await scratch?.drop();
});

describe('audit trail on PostgreSQL', () => {
  let gw: TestGateway;
  let audit: ReturnType<typeof auditOf>;
  /** Unique per run, so filters find only this file's records. */
  const slug = `audit-${randomUUID().slice(0, 8)}`;
  const oid = randomUUID();
  const tid = '11111111-1111-4111-8111-111111111111';

  beforeAll(async () => {
    gw = await startTestGateway('services', { DATABASE_URL: scratch.url });
    audit = auditOf(gw.gateway.app);
  });

  afterAll(async () => {
    await gw?.close();
  });

  const list = (query: Record<string, string> = {}) => request(gw.url).get('/api/v1/audit').query(query);

  /** Records the exchanges and waits until the trail has written them. */
  let clock = Date.now();
  /** Records the exchanges (each a millisecond after the one before, so newest-first order is known) and waits until the trail has written them. */
  async function record(...exchanges: Parameters<typeof exchangeFactory>[0][]): Promise<void> {
    for (const overrides of exchanges) audit.traffic.record(exchangeFactory({ at: new Date(++clock), ...overrides }));
    await audit.trail.flush();
  }

  const principal = { tid, oid, clientId: 'c1', appOnly: false, scopes: [], roles: ['Gateway.User'], name: 'Grace' };
  const server = { id: randomUUID(), slug };

  it('stores one record per exchange: allowed, denied, rate-limited, upstream error, token refused', async () => {
    await record(
      {
        principal,
        server,
        target: 'forecast',
        arguments: { city: 'Paris', apiKey: 'k-123', nested: { password: 'p', list: [{ token: 't' }] }, auth: JWT },
      },
      { principal, server, target: 'drop_db', decision: 'denied', rule: 'tool-deny:drop_*', outcome: 'refused' },
      {
        principal,
        server,
        target: 'forecast',
        decision: 'rate_limited',
        rule: 'per-principal',
        outcome: 'refused',
        upstreamMs: undefined,
        upstreamStatus: undefined,
      },
      {
        principal,
        server,
        target: 'forecast',
        outcome: 'upstream_error',
        upstreamStatus: 502,
        errorKind: 'http_status',
      },
      {
        principal: undefined,
        server,
        method: 'http',
        target: undefined,
        arguments: undefined,
        rpcId: undefined,
        decision: 'unauthenticated',
        rule: 'token-expired',
        outcome: 'refused',
      },
    );
    const res = await list({ server: slug }).expect(200);
    const records = res.body.records as AuditRecordView[];
    expect(records.map((r) => [r.decision, r.outcome, r.rule])).toEqual([
      ['unauthenticated', 'refused', 'token-expired'],
      ['allowed', 'upstream_error', 'server-role:Gateway.User'],
      ['rate_limited', 'refused', 'per-principal'],
      ['denied', 'refused', 'tool-deny:drop_*'],
      ['allowed', 'ok', 'server-role:Gateway.User'],
    ]);
    const [refused, upstreamError, , , allowed] = records;
    expect(allowed).toMatchObject({
      stream: audit.trail.streamId,
      surface: 'server',
      principal: { tid, oid, clientId: 'c1', name: 'Grace' },
      server,
      method: 'tools/call',
      rpcId: 1,
      target: 'forecast',
      latencyMs: 12.5,
      upstreamMs: 10.25,
      upstreamStatus: 200,
      // Redacted by key at every depth, and the JWT by its shape.
      arguments: {
        city: 'Paris',
        apiKey: '[redacted]',
        nested: { password: '[redacted]', list: [{ token: '[redacted]' }] },
        auth: '[redacted]',
      },
    });
    expect(JSON.stringify(res.body)).not.toContain(JWT);
    expect(upstreamError).toMatchObject({ upstreamStatus: 502, errorKind: 'http_status' });
    expect(refused).toMatchObject({ principal: null, method: 'http', target: null, rpcId: null });
    expect(refused).not.toHaveProperty('arguments');
    await expect(audit.verify()).resolves.toEqual({ streams: expect.any(Number), records: expect.any(Number) });
  });

  it('filters by principal, server, tool, decision, outcome and time, and pages with an opaque cursor', async () => {
    const base = Date.parse('2026-01-01T00:00:00.000Z');
    const fslug = `f-${randomUUID().slice(0, 8)}`;
    await record(
      ...Array.from({ length: 7 }, (_, i) => ({
        at: new Date(base + i * 60_000),
        principal,
        server: { id: randomUUID(), slug: fslug },
        target: i % 2 ? 'odd' : 'even',
        decision: i === 3 ? ('denied' as const) : ('allowed' as const),
        outcome: i === 5 ? ('timeout' as const) : ('ok' as const),
      })),
    );
    const ids = async (query: Record<string, string>) =>
      ((await list({ server: fslug, ...query }).expect(200)).body.records as AuditRecordView[]).map((r) =>
        Date.parse(r.at),
      );
    const minute = (i: number) => base + i * 60_000;
    expect(await ids({})).toEqual([6, 5, 4, 3, 2, 1, 0].map(minute));
    expect(await ids({ tool: 'odd' })).toEqual([5, 3, 1].map(minute));
    expect(await ids({ decision: 'denied' })).toEqual([minute(3)]);
    expect(await ids({ outcome: 'timeout' })).toEqual([minute(5)]);
    expect(await ids({ principal: `${tid}:${oid}` })).toHaveLength(7);
    expect(await ids({ principal: oid })).toHaveLength(7);
    expect(await ids({ principal: `${randomUUID()}:${oid}` })).toEqual([]);
    expect(await ids({ from: new Date(minute(2)).toISOString(), to: '2026-01-01T00:05:00+00:00' })).toEqual(
      [4, 3, 2].map(minute),
    );

    const seen: number[] = [];
    let cursor: string | undefined;
    do {
      const res = await list({ server: fslug, limit: '3', ...(cursor ? { cursor } : {}) }).expect(200);
      seen.push(...(res.body.records as AuditRecordView[]).map((r) => Date.parse(r.at)));
      cursor = res.body.nextCursor ?? undefined;
    } while (cursor);
    expect(seen).toEqual([6, 5, 4, 3, 2, 1, 0].map(minute));
  });

  it('finds an app-only caller by the name the rate limiter gives it (<tid>:app:<clientId>), and only that caller', async () => {
    const kslug = `k-${randomUUID().slice(0, 8)}`;
    const clientId = randomUUID();
    const app = { ...principal, oid: randomUUID(), clientId, appOnly: true, name: undefined };
    // A user signed in through the same client application, and the same application in another tenant.
    const user = { ...principal, oid: randomUUID(), clientId };
    const elsewhere = { ...app, tid: '33333333-3333-4333-8333-333333333333' };
    const at = (i: number) => new Date(Date.parse('2026-02-01T00:00:00.000Z') + i * 60_000);
    await record(
      ...[app, user, elsewhere, app].map((caller, i) => ({
        at: at(i),
        principal: caller,
        server: { id: randomUUID(), slug: kslug },
      })),
    );
    const minutes = async (query: Record<string, string>) =>
      ((await list({ server: kslug, ...query }).expect(200)).body.records as AuditRecordView[]).map(
        (r) => (Date.parse(r.at) - at(0).getTime()) / 60_000,
      );
    const appKey = principalKeyOf(app);
    expect(appKey).toBe(`${tid}:app:${clientId}`);
    expect(await minutes({ principal: appKey })).toEqual([3, 0]);
    expect(await minutes({ principal: principalKeyOf(elsewhere) })).toEqual([2]);
    // By object id, an app caller is found through its service principal, a user as a user.
    expect(await minutes({ principal: `${tid}:${app.oid}` })).toEqual([3, 0]);
    expect(await minutes({ principal: principalKeyOf(user) })).toEqual([1]);
    expect(await minutes({ principal: `${tid}:app:${randomUUID()}` })).toEqual([]);
    const records = (await list({ server: kslug }).expect(200)).body.records as AuditRecordView[];
    expect(records.map((r) => r.principal?.kind)).toEqual(['app', 'app', 'user', 'app']);
    const exported = await request(gw.url).get('/api/v1/audit/export').query({ principal: appKey }).expect(200);
    expect(exported.text.trim().split('\n')).toHaveLength(2);
    await expect(audit.verify()).resolves.not.toHaveProperty('broken');
  });

  it('exports the same records as NDJSON, streamed', async () => {
    const res = await request(gw.url).get('/api/v1/audit/export').query({ server: slug }).expect(200);
    expect(res.headers['content-type']).toMatch(/^application\/x-ndjson/);
    expect(res.text.endsWith('\n')).toBe(true);
    const lines = res.text
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as AuditRecordView);
    const listed = (await list({ server: slug }).expect(200)).body.records as AuditRecordView[];
    expect(lines).toEqual(listed);
  });

  it('exports more records than one page holds, in order, none twice', async () => {
    const eslug = `e-${randomUUID().slice(0, 8)}`;
    const at = new Date();
    // Equal times: the cursor must order by id as well.
    await record(...Array.from({ length: 2_100 }, () => ({ at, server: { id: randomUUID(), slug: eslug } })));
    const res = await request(gw.url).get('/api/v1/audit/export').query({ server: eslug }).expect(200);
    const ids = res.text
      .trim()
      .split('\n')
      .map((line) => (JSON.parse(line) as AuditRecordView).id);
    expect(ids).toHaveLength(2_100);
    expect(new Set(ids).size).toBe(2_100);
  });

  it.each([
    ['limit=0', { limit: '0' }, 'limit'],
    ['limit=501', { limit: '501' }, 'limit'],
    ['limit=abc', { limit: 'abc' }, 'limit'],
    ['a cursor it did not issue', { cursor: 'bm90LWEtY3Vyc29y' }, 'cursor'],
    [
      'a cursor with SQL in it',
      { cursor: Buffer.from("2026-01-01T00:00:00.000Z|' OR 1=1 --").toString('base64url') },
      'cursor',
    ],
    ['an oversized cursor', { cursor: 'A'.repeat(5_000) }, 'cursor'],
    ['a bad time', { from: 'yesterday' }, 'from'],
    // PostgreSQL has no year 0: such a time reached it and failed the query, a 500.
    ['a time in year 0', { from: '0000-06-01T00:00:00Z' }, 'from'],
    ['a time that is year 0 in UTC', { to: '0001-01-01T00:30:00+01:00' }, 'to'],
    [
      'a cursor in year 0',
      { cursor: Buffer.from('0000-01-01T00:00:00.000Z|0b9a3c1e-6f1d-4c84-9d4b-2f8a1e7c5d90').toString('base64url') },
      'cursor',
    ],
    ['from after to', { from: '2026-02-01T00:00:00Z', to: '2026-01-01T00:00:00Z' }, 'from'],
    ['an unknown decision', { decision: 'maybe' }, 'decision'],
    ['an unknown outcome', { outcome: "ok' OR '1'='1" }, 'outcome'],
    ['a hostile principal', { principal: "x' OR 1=1; DROP TABLE audit_records; --" }, 'principal'],
    ['a principal with three parts', { principal: 'a:b:c' }, 'principal'],
    ['an app principal without a client id', { principal: 'tid:app:' }, 'principal'],
    ['an app principal without a tenant', { principal: ':app:client' }, 'principal'],
    ['an app principal with four parts', { principal: 'tid:app:client:x' }, 'principal'],
    ['an app principal spelled otherwise', { principal: 'tid:APP:client' }, 'principal'],
    ['a hostile app principal', { principal: "tid:app:x' OR '1'='1" }, 'principal'],
    ['an oversized app principal', { principal: `tid:app:${'c'.repeat(101)}` }, 'principal'],
    ['an app principal with a NUL', { principal: 'tid:app:c\u0000' }, 'principal'],
    ['a bad server slug', { server: '../../etc/passwd' }, 'server'],
    ['an oversized tool', { tool: 'x'.repeat(1_025) }, 'tool'],
    ['a NUL in the tool', { tool: 'a\u0000b' }, 'tool'],
    ['a control character in the tool', { tool: 'x\u001b[31m' }, 'tool'],
    ['an unknown filter', { sort: 'asc' }, 'sort'],
  ])('answers 400 problem+json for %s', async (_name, query, field) => {
    for (const path of ['/api/v1/audit', '/api/v1/audit/export']) {
      if (path.endsWith('export') && (field === 'limit' || field === 'cursor')) continue;
      const res = await request(gw.url).get(path).query(query).expect(400);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.body.code).toBe('validation_error');
      expect(JSON.stringify(res.body.errors ?? [])).toContain(field);
    }
  });

  it('answers 400 for a repeated filter, and a URL larger than the server accepts without a 5xx', async () => {
    await request(gw.url).get('/api/v1/audit?server=a&server=b').expect(400);
    const res = await request(gw.url).get(`/api/v1/audit?tool=${'x'.repeat(70_000)}`);
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
  });

  it('treats hostile filter values as data', async () => {
    const hostile = "forecast'; DELETE FROM audit_records; --";
    await record({ server, target: hostile });
    const res = await list({ tool: hostile }).expect(200);
    expect(res.body.records).toHaveLength(1);
    expect((await sql<{ n: string }>(scratch.url, 'SELECT count(*) AS n FROM audit_records'))[0]!.n).not.toBe('0');
  });

  it('stores NUL, lone surrogates and oversized values so that the chain still verifies', async () => {
    await record({
      server,
      method: 'tools/\u0000call',
      target: `bad\ud800name${'y'.repeat(5_000)}`,
      requestId: 'r\u0000',
      arguments: { text: 'a\u0000b\udc00', big: 'z'.repeat(20_000) },
      rpcId: 'id\ud800',
    });
    const [stored] = (await list({ server: slug, limit: '1' }).expect(200)).body.records as AuditRecordView[];
    expect(stored!.method).toBe('tools/\uFFFDcall');
    expect(stored!.target!.length).toBeLessThanOrEqual(1024);
    expect(stored!.arguments).toEqual({ truncated: true, bytes: expect.any(Number), sha256: expect.any(String) });
    await expect(audit.verify()).resolves.not.toHaveProperty('broken');
  });

  it('stores quotes, backslashes, control characters and astral text as they were', async () => {
    const awkward = 'q"uo\\te\\"d \u0001\u001f\t\n \u2028 \\ud800 ünï 😀 ' + "'; DROP TABLE audit_records; --";
    await record({ server, target: awkward, rpcId: awkward, arguments: { text: awkward } });
    const [stored] = (await list({ server: slug, limit: '1' }).expect(200)).body.records as AuditRecordView[];
    expect(stored).toMatchObject({ target: awkward, rpcId: awkward, arguments: { text: awkward } });
    await expect(audit.verify()).resolves.not.toHaveProperty('broken');
  });

  it('never stores the token, whatever the key is called', async () => {
    await record({
      server,
      arguments: {
        note: `Bearer ${JWT}`,
        headers: { Authorization: 'Bearer abc' },
        x: JWT,
        url: `https://example.com/?t=${JWT}`,
        command: `curl -H "Authorization: Bearer ${JWT}" https://example.com`,
      },
    });
    const rows = await sql<{ arguments: string }>(
      scratch.url,
      "SELECT arguments FROM audit_records WHERE arguments LIKE '%Bearer%' OR arguments LIKE '%eyJ%'",
    );
    expect(rows).toEqual([]);
  });

  it('documents both routes in OpenAPI', async () => {
    const { body } = await request(gw.url).get('/docs-json').expect(200);
    const paths = body.paths as Record<string, { get?: { responses: Record<string, { content?: object }> } }>;
    expect(Object.keys(paths['/api/v1/audit']!.get!.responses)).toEqual(expect.arrayContaining(['200', '400']));
    expect(Object.keys(paths['/api/v1/audit/export']!.get!.responses['200']!.content!)).toEqual([
      'application/x-ndjson',
    ]);
    // What principal= accepts, the app form included, and the caller's kind in a record.
    for (const route of ['/api/v1/audit', '/api/v1/audit/export']) {
      const parameters = (paths[route]!.get as unknown as { parameters: { name: string; description?: string }[] })
        .parameters;
      expect(parameters.find((parameter) => parameter.name === 'principal')?.description).toContain(
        '`{tid}:app:{clientId}`',
      );
    }
    expect(JSON.stringify(body.components.schemas)).toContain('`app` for an app-only token');
  });

  it('counts what it did for metrics', async () => {
    const before = audit.trail.stats();
    await record({ server }, { server });
    const after = audit.trail.stats();
    expect(after.recorded - before.recorded).toBe(2);
    expect(after.stored - before.stored).toBe(2);
    expect(after).toMatchObject({ queueDepth: 0, spoolFiles: 0, spoolRecords: 0, overflowed: 0 });
  });
});

describe('audit trail: argument policies', () => {
  it.each([
    // Once on the embedded database too: the migration and the inserts work on PGlite.
    ['off', 'embedded' as const, undefined],
    ['hash', 'services' as const, expect.stringMatching(/^sha256:[0-9a-f]{64}$/)],
  ])('AUDIT_ARGUMENTS=%s (%s)', async (mode, profile, expected) => {
    const gw = await startTestGateway(profile, {
      AUDIT_ARGUMENTS: mode,
      ...(profile === 'services' ? { DATABASE_URL: scratch.url } : {}),
    });
    try {
      const audit = auditOf(gw.gateway.app);
      const slug = `p-${randomUUID().slice(0, 8)}`;
      audit.traffic.record(
        exchangeFactory({ server: { id: randomUUID(), slug }, arguments: { password: 'hunter2', city: 'Paris' } }),
      );
      await audit.trail.flush();
      const [stored] = (await request(gw.url).get('/api/v1/audit').query({ server: slug }).expect(200)).body
        .records as AuditRecordView[];
      expect(stored!.arguments).toEqual(expected);
      expect(JSON.stringify(stored)).not.toContain('hunter2');
    } finally {
      await gw.close();
    }
  });
});

describe('audit trail: shutdown', () => {
  it('stores all 1,000 records still queued when the gateway stops', async () => {
    // Nothing would be written before the stop: no timer, no batch-size wake.
    const gw = await startTestGateway('services', {
      DATABASE_URL: scratch.url,
      AUDIT_FLUSH_INTERVAL_MS: '60000',
      AUDIT_BATCH_SIZE: '5000',
    });
    const audit = auditOf(gw.gateway.app);
    for (let i = 0; i < 1_000; i++) audit.traffic.record(exchangeFactory({ requestId: `r${i}` }));
    expect(audit.trail.stats()).toMatchObject({ queueDepth: 1_000, stored: 0 });
    await gw.close();
    const rows = await sql<{ n: string; max: string }>(
      scratch.url,
      'SELECT count(DISTINCT request_id) AS n, max(seq) AS max FROM audit_records WHERE stream_id = $1',
      [audit.trail.streamId],
    );
    expect(rows).toEqual([{ n: '1000', max: '1000' }]);
    expect(audit.trail.stats()).toMatchObject({ stored: 1_000, spooled: 0 });
  });

  it('spoolQueuedNow: the batch being written and everything queued go to the spool, replayed at the next start', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'mcp-gateway-audit-forced-'));
    const env = {
      DATABASE_URL: scratch.url,
      DATA_DIR: dataDir,
      AUDIT_FLUSH_INTERVAL_MS: '60000',
      AUDIT_BATCH_SIZE: '60',
      AUDIT_WRITE_TIMEOUT_MS: '600000',
    };
    const gw = await startTestGateway('services', env);
    const audit = auditOf(gw.gateway.app);
    const streamId = audit.trail.streamId;
    // The first batch's insert hangs until the process would be gone.
    let release = (): void => undefined;
    const insert = jest
      .spyOn(gw.gateway.app.get(AuditRepository), 'insert')
      .mockImplementation(() => new Promise((resolve) => (release = () => resolve(0))));
    try {
      for (let i = 0; i < 100; i++) audit.traffic.record(exchangeFactory({ requestId: `forced-${i}` }));
      const flushed = audit.trail.flush();
      await waitUntil(() => insert.mock.calls.length === 1, 'the first batch is being written');
      audit.trail.spoolQueuedNow();
      audit.traffic.record(exchangeFactory({ requestId: 'forced-100' }));
      expect(audit.trail.stats()).toMatchObject({ queueDepth: 0, spoolRecords: 101, stored: 0 });
      release();
      await flushed;
      expect(insert).toHaveBeenCalledTimes(1);
    } finally {
      release();
      insert.mockRestore();
      await gw.close();
    }
    // The next gateway on this DATA_DIR replays them, in order, one chain.
    const next = await startTestGateway('services', env);
    try {
      const audit = auditOf(next.gateway.app);
      await audit.trail.flush();
      const rows = await sql<{ request_id: string; seq: string }>(
        scratch.url,
        'SELECT request_id, seq FROM audit_records WHERE stream_id = $1 ORDER BY seq',
        [streamId],
      );
      expect(rows.map((row) => row.request_id)).toEqual(Array.from({ length: 101 }, (_, i) => `forced-${i}`));
      expect(rows.map((row) => Number(row.seq))).toEqual(Array.from({ length: 101 }, (_, i) => i + 1));
      await expect(audit.verify()).resolves.not.toHaveProperty('broken');
    } finally {
      await next.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('spools, never drops, when the queue is full', async () => {
    const gw = await startTestGateway('services', {
      DATABASE_URL: scratch.url,
      AUDIT_QUEUE_CAPACITY: '100',
      AUDIT_FLUSH_INTERVAL_MS: '60000',
      AUDIT_BATCH_SIZE: '5000',
    });
    try {
      const audit = auditOf(gw.gateway.app);
      const spoolEvents: unknown[] = [];
      audit.trail.onSpool((event) => spoolEvents.push(event));
      for (let i = 0; i < 250; i++) audit.traffic.record(exchangeFactory());
      expect(audit.trail.stats()).toMatchObject({ overflowed: 200, queueDepth: 50, spoolRecords: 200 });
      expect(audit.trail.stats().spoolBytes).toBeGreaterThan(0);
      expect(spoolEvents).toEqual([
        { records: 100, overflow: true },
        { records: 100, overflow: true },
      ]);
      await audit.trail.flush();
      expect(audit.trail.stats()).toMatchObject({ stored: 250, replayed: 200, spoolFiles: 0, queueDepth: 0 });
      await expect(audit.verify()).resolves.not.toHaveProperty('broken');
      const [count] = await sql<{ n: string }>(
        scratch.url,
        'SELECT count(*) AS n FROM audit_records WHERE stream_id = $1',
        [audit.trail.streamId],
      );
      expect(count?.n).toBe('250');
    } finally {
      await gw.close();
    }
  });
  it('says so when the spool refuses a full queue, and holds it until the database takes it', async () => {
    // nestjs-pino keeps the logger of the first app in the process for its injected loggers: this gateway's own.
    __resetOutOfContextForTests();
    const gw = await startTestGateway('services', {
      DATABASE_URL: scratch.url,
      AUDIT_QUEUE_CAPACITY: '100',
      AUDIT_FLUSH_INTERVAL_MS: '60000',
      AUDIT_BATCH_SIZE: '5000',
    });
    const spoolDir = path.join(gw.dataDir, 'audit-spool');
    const linesOf = (pattern: RegExp) =>
      gw.logs.lines.filter((line) => typeof line.msg === 'string' && pattern.test(line.msg));
    try {
      const audit = auditOf(gw.gateway.app);
      // DATA_DIR unwritable: a file where the spool's directory was.
      rmSync(spoolDir, { recursive: true });
      writeFileSync(spoolDir, '');
      for (let i = 0; i < 100; i++) audit.traffic.record(exchangeFactory({ requestId: `held-${i}` }));
      expect(linesOf(/^audit queue full/)).toEqual([
        expect.objectContaining({
          level: 40,
          records: 100,
          msg: 'audit queue full and the spool refused it: held in memory until the database or the spool takes it',
        }),
      ]);
      expect(audit.trail.stats()).toMatchObject({ queueDepth: 100, overflowed: 0, spooled: 0 });
      expect(audit.traffic.haltedReason).toMatch(/can neither store nor spool/);

      await audit.trail.flush();
      expect(audit.traffic.haltedReason).toBeUndefined();
      expect(audit.trail.stats()).toMatchObject({ queueDepth: 0, stored: 100 });
      const rows = await sql<{ request_id: string }>(
        scratch.url,
        'SELECT request_id FROM audit_records WHERE stream_id = $1 ORDER BY seq',
        [audit.trail.streamId],
      );
      expect(rows.map((row) => row.request_id)).toEqual(Array.from({ length: 100 }, (_, i) => `held-${i}`));
      await expect(audit.verify()).resolves.not.toHaveProperty('broken');
    } finally {
      rmSync(spoolDir, { force: true });
      await gw.close();
    }
  });
});

describe('audit trail: waits for the condition, not a time', () => {
  it('writes on its own, without flush(), within the flush interval', async () => {
    const gw = await startTestGateway('services', { DATABASE_URL: scratch.url, AUDIT_FLUSH_INTERVAL_MS: '20' });
    try {
      const audit = auditOf(gw.gateway.app);
      audit.traffic.record(exchangeFactory());
      await waitUntil(() => audit.trail.stats().stored === 1, 'the record is stored');
    } finally {
      await gw.close();
    }
  });
  it('between ticks writes only full batches: the rest waits for the next tick or a flush', async () => {
    // No tick within the test: only a full batch wakes the writer.
    const gw = await startTestGateway('services', {
      DATABASE_URL: scratch.url,
      AUDIT_FLUSH_INTERVAL_MS: '60000',
      AUDIT_BATCH_SIZE: '10',
    });
    try {
      const audit = auditOf(gw.gateway.app);
      const batches: number[] = [];
      audit.trail.onWrite((event) => batches.push(event.records));
      for (let i = 0; i < 25; i++) audit.traffic.record(exchangeFactory({ requestId: `b${i}` }));
      await waitUntil(() => audit.trail.stats().stored === 20, 'two full batches are stored');
      // The writer has stopped: five records are not a batch.
      await new Promise((resolve) => setImmediate(resolve));
      expect(audit.trail.stats()).toMatchObject({ stored: 20, queueDepth: 5 });
      await audit.trail.flush();
      expect(audit.trail.stats()).toMatchObject({ stored: 25, queueDepth: 0 });
      expect(batches).toEqual([10, 10, 5]);
    } finally {
      await gw.close();
    }
  });
});

describe('audit trail: records of the version before the caller kind was stored', () => {
  // Its last migration: the database as that version left it.
  const EARLIER_LAST_MIGRATION = '20261121205924_server_items_search_text';
  const STREAM = '00000000-0000-4000-8000-000000000001';
  /**
   * One chain of five records as that version hashed them (the v1 form: no kind), computed apart from this code;
   * the first two are the ones audit-record.spec.ts pins. It stored three and spooled the last two.
   */
  const HASHES = [
    '24545f4ae1a6534c0935cb2b6f6a86ffbc2c4667a7b6b0f46bbb95f46394b542',
    'e71b7c0d6c19ba14254c0731dcfeb059660fba40537b2ce8d52fdabf2d717cd2',
    'cea959fb80961d09763545738e2c99334729c3905d83d6ba9be2bd823d887c6a',
    'c9ece513df7e630d56a8285df65387c4b3beb8c5259587300c446137acb35eda',
    '53465cc5ca8bfa1e99149e235e61f08a357960045d50d3180e730c71ca57b704',
  ];
  /** The record of seq `seq`, as that version kept it: every field but a kind. */
  const earlierRow = (seq: number): Omit<AuditRow, 'principalKind'> => ({
    id: `00000000-0000-4000-8000-${String(seq).padStart(12, '0')}`,
    streamId: STREAM,
    seq,
    at: new Date(Date.UTC(2026, 0, 1, 0, 0, seq)),
    requestId: `r${seq}`,
    surface: 'server',
    ip: null,
    tenantId: 't',
    objectId: 'o',
    clientId: 'c',
    principalName: null,
    sessionId: null,
    serverId: null,
    serverSlug: 'weather',
    method: 'tools/call',
    rpcId: String(seq),
    target: 'forecast',
    arguments: null,
    decision: 'allowed',
    rule: null,
    outcome: 'ok',
    latencyMs: 1.5,
    upstreamMs: null,
    upstreamStatus: 200,
    errorKind: null,
    prevHash: seq === 1 ? '0'.repeat(64) : HASHES[seq - 2]!,
    hash: HASHES[seq - 1]!,
  });

  let database: Awaited<ReturnType<typeof createScratchDatabase>>;
  let dataDir: string;
  let gw: TestGateway;

  beforeAll(async () => {
    database = await createScratchDatabase();
    const migrations = mkdtempSync(path.join(tmpdir(), 'mcp-gateway-earlier-migrations-'));
    for (const name of readdirSync(MIGRATIONS_DIR)) {
      if (name <= EARLIER_LAST_MIGRATION || !/^\d/.test(name)) {
        cpSync(path.join(MIGRATIONS_DIR, name), path.join(migrations, name), { recursive: true });
      }
    }
    const connection = await openDatabase(
      { kind: 'postgres', url: database.url, poolSize: 1, queryTimeoutMs: 10_000 },
      createLogger({ logLevel: 'silent' }),
    );
    try {
      await applyMigrations(connection.adapterFactory, migrations);
    } finally {
      await connection.close();
      rmSync(migrations, { recursive: true, force: true });
    }
    await sql(
      database.url,
      `INSERT INTO audit_streams (id, started_at, host, pid, last_seq, last_hash) VALUES ($1, now(), 'earlier', 1, 3, $2)`,
      [STREAM, HASHES[2]],
    );
    for (const seq of [1, 2, 3]) {
      const row = earlierRow(seq);
      await sql(
        database.url,
        `INSERT INTO audit_records (id, stream_id, seq, at, request_id, surface, ip, tenant_id, object_id, client_id,
          principal_name, session_id, server_id, server_slug, method, rpc_id, target, arguments, decision, rule,
          outcome, latency_ms, upstream_ms, upstream_status, error_kind, prev_hash, hash)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22,
          $23, $24, $25, $26, $27)`,
        [
          row.id,
          row.streamId,
          row.seq,
          row.at,
          row.requestId,
          row.surface,
          row.ip,
          row.tenantId,
          row.objectId,
          row.clientId,
          row.principalName,
          row.sessionId,
          row.serverId,
          row.serverSlug,
          row.method,
          row.rpcId,
          row.target,
          row.arguments,
          row.decision,
          row.rule,
          row.outcome,
          row.latencyMs,
          row.upstreamMs,
          row.upstreamStatus,
          row.errorKind,
          row.prevHash,
          row.hash,
        ],
      );
    }
    // The batch it spooled, in its spool format (rows without a kind field), found by the new version at start.
    dataDir = mkdtempSync(path.join(tmpdir(), 'mcp-gateway-earlier-spool-'));
    new AuditSpool(path.join(dataDir, 'audit-spool')).write([earlierRow(4), earlierRow(5)] as AuditRow[]);
    gw = await startTestGateway('services', { DATABASE_URL: database.url, DATA_DIR: dataDir });
    await auditOf(gw.gateway.app).trail.flush();
  });

  afterAll(async () => {
    await gw?.close();
    await database?.drop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('verifies the records it stored, once migrated, and the batch it spooled, once replayed', async () => {
    const rows = await sql<{ seq: string; principal_kind: string | null; hash: string }>(
      database.url,
      'SELECT seq, principal_kind, hash FROM audit_records WHERE stream_id = $1 ORDER BY seq',
      [STREAM],
    );
    expect(rows).toEqual(HASHES.map((hash, i) => ({ seq: String(i + 1), principal_kind: null, hash })));
    // Its stream and the new gateway's own (no records yet).
    await expect(auditOf(gw.gateway.app).verify()).resolves.toEqual({ streams: 2, records: 5 });
  });

  it('lists them without a kind: tid:oid finds them, the app form (which needs the kind) does not', async () => {
    const list = (principal: string) => request(gw.url).get('/api/v1/audit').query({ principal }).expect(200);
    const records = (await list('t:o')).body.records as AuditRecordView[];
    expect(records.map((record) => [record.seq, record.principal])).toEqual(
      [5, 4, 3, 2, 1].map((seq) => [seq, { tid: 't', oid: 'o', clientId: 'c', name: null, kind: null }]),
    );
    expect((await list('t:app:c')).body.records).toEqual([]);
  });
});
