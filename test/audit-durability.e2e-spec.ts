import { createHash, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { __resetOutOfContextForTests } from 'nestjs-pino/PinoLogger';
import { Client } from 'pg';
import request from 'supertest';
import { redactKeyPattern } from '../src/audit/argument-policy';
import { type AuditRow, ChainHead } from '../src/audit/audit-record';
import { AuditSpool } from '../src/audit/audit-spool';
import { toUnchainedRow } from '../src/audit/exchange-row';
import { AuditRetention } from '../src/audit/audit-retention';
import { AuditRepository } from '../src/audit/audit.repository';
import { verifyAuditTrail } from '../src/audit/audit-verifier';
import { PrismaService } from '../src/database/prisma.service';
import { auditOf, exchangeFactory, sql } from './support/audit';
import { runCli } from './support/cli';
import { entraEnv, LocalEntraIssuer } from './support/entra-issuer';
import { eventually, waitUntil } from './support/eventually';
import { startTestGateway, type TestGateway } from './support/gateway';
import { startScratchPrisma } from './support/scratch-prisma';
import { createScratchDatabase } from './support/services';
import { StallableProxy } from './support/stallable-proxy';
import { hostPortOf, TcpProxy, withHostPort } from './support/tcp-proxy';

type Scratch = Awaited<ReturnType<typeof createScratchDatabase>>;

/** Rows of one stream: how many, how many distinct seqs, and the highest seq. */
async function streamCounts(url: string, streamId: string): Promise<{ n: string; seqs: string; max: string }> {
  const [row] = await sql<{ n: string; seqs: string; max: string }>(
    url,
    'SELECT count(*) AS n, count(DISTINCT seq) AS seqs, max(seq) AS max FROM audit_records WHERE stream_id = $1',
    [streamId],
  );
  return row!;
}

describe('audit trail: database outage', () => {
  let scratch: Scratch;
  /** Between the gateway and PostgreSQL: refusing connections there is the outage, without touching the real service. */
  let relay: TcpProxy;

  beforeAll(async () => {
    scratch = await createScratchDatabase();
    const { host, port } = hostPortOf(scratch.url);
    relay = new TcpProxy(host, port);
    await relay.start();
  });

  afterAll(async () => {
    await relay?.stop();
    await scratch?.drop();
  });

  it('spools while PostgreSQL is down and replays in order when it returns: none lost, none duplicated', async () => {
    const gw = await startTestGateway('services', {
      DATABASE_URL: withHostPort(scratch.url, relay.port),
      AUDIT_FLUSH_INTERVAL_MS: '50',
      AUDIT_BATCH_SIZE: '100',
    });
    const spoolDir = path.join(gw.dataDir, 'audit-spool');
    const saved = fs.mkdtempSync(path.join(os.tmpdir(), 'audit-spool-copy-'));
    let streamId: string;
    try {
      const audit = auditOf(gw.gateway.app);
      streamId = audit.trail.streamId;
      for (let i = 0; i < 150; i++) audit.traffic.record(exchangeFactory({ requestId: `before-${i}` }));
      await audit.trail.flush();
      expect(audit.trail.stats()).toMatchObject({ stored: 150, spooled: 0 });

      await relay.refuse();
      for (let i = 0; i < 450; i++) audit.traffic.record(exchangeFactory({ requestId: `during-${i}` }));
      await audit.trail.flush();
      expect(audit.trail.stats()).toMatchObject({ stored: 150, spooled: 450, spoolRecords: 450 });
      expect(audit.trail.stats().writeFailures).toBeGreaterThan(0);
      // Still down: newer records queue behind the spooled ones.
      for (let i = 0; i < 50; i++) audit.traffic.record(exchangeFactory({ requestId: `later-${i}` }));
      await audit.trail.flush();
      expect(audit.trail.stats()).toMatchObject({ spoolRecords: 500 });
      for (const name of fs.readdirSync(spoolDir)) fs.copyFileSync(path.join(spoolDir, name), path.join(saved, name));

      await relay.start();
      await waitUntil(() => audit.trail.stats().spoolFiles === 0, 'the spool is replayed');
      expect(audit.trail.stats()).toMatchObject({ stored: 650, replayed: 500, queueDepth: 0 });
      expect(fs.readdirSync(spoolDir)).toEqual([]);
      await expect(streamCounts(scratch.url, streamId)).resolves.toEqual({ n: '650', seqs: '650', max: '650' });
      // In order: the chain walks seq 1..650 and holds.
      await expect(audit.verify()).resolves.not.toHaveProperty('broken');
    } finally {
      await gw.close();
    }

    // A batch replayed twice (the insert committed but its answer was lost): a later start replays the copy, and nothing doubles.
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'audit-replay-'));
    fs.cpSync(saved, path.join(dataDir, 'audit-spool'), { recursive: true });
    const again = await startTestGateway('services', { DATABASE_URL: scratch.url, DATA_DIR: dataDir });
    try {
      const trail = auditOf(again.gateway.app).trail;
      await waitUntil(() => trail.stats().spoolFiles === 0, 'the copied spool is replayed');
      await expect(streamCounts(scratch.url, streamId)).resolves.toEqual({ n: '650', seqs: '650', max: '650' });
      const requestIds = await sql<{ n: string }>(
        scratch.url,
        'SELECT count(DISTINCT request_id) AS n FROM audit_records WHERE stream_id = $1',
        [streamId],
      );
      expect(requestIds).toEqual([{ n: '650' }]);
    } finally {
      await again.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
      fs.rmSync(saved, { recursive: true, force: true });
    }
  });

  it('queues records as they are stored while a write hangs, not the arguments as sent, and loses none', async () => {
    const { host, port } = hostPortOf(scratch.url);
    const hanging = new StallableProxy(host, port);
    await hanging.start();
    const gw = await startTestGateway('services', {
      DATABASE_URL: withHostPort(scratch.url, hanging.port),
      AUDIT_FLUSH_INTERVAL_MS: '60000',
      AUDIT_BATCH_SIZE: '50',
      AUDIT_QUEUE_CAPACITY: '100',
      AUDIT_WRITE_TIMEOUT_MS: '600000',
    });
    try {
      const audit = auditOf(gw.gateway.app);
      const large = 'x'.repeat(1024 * 1024);
      const sent: { n: number; text?: string }[] = [];
      const recordLarge = (count: number) => {
        for (let i = 0; i < count; i++) {
          const args = { n: sent.length, text: large };
          sent.push(args);
          audit.traffic.record(exchangeFactory({ arguments: args }));
        }
      };
      hanging.stall();
      // A full batch: the writer takes it, and its insert hangs for as long as the test lets it.
      recordLarge(50);
      await waitUntil(() => audit.trail.stats().queueDepth === 0, 'the writer is writing the first batch');
      // The queue's bound holds: the request that fills it spools it; the rest waits in memory.
      recordLarge(190);
      expect(audit.trail.stats()).toMatchObject({ queueDepth: 90, overflowed: 100, spoolRecords: 100, stored: 0 });
      // What waits in memory is each record's stored form (1 MiB of arguments: their size and sha256), not the
      // arguments as sent: the gateway lets go of a request's body once it has answered, as this does of every one.
      for (const args of sent) delete args.text;

      hanging.resume();
      await audit.trail.flush();
      await waitUntil(() => audit.trail.stats().spoolFiles === 0, 'the spool is replayed');
      const stored = await sql<{ arguments: string }>(
        scratch.url,
        'SELECT arguments FROM audit_records WHERE stream_id = $1 ORDER BY seq',
        [audit.trail.streamId],
      );
      // In order, each with the size and hash of the arguments it was sent with.
      expect(stored.map((row) => JSON.parse(row.arguments) as unknown)).toEqual(
        sent.map((_, n) => {
          const text = JSON.stringify({ n, text: large });
          return { truncated: true, bytes: text.length, sha256: createHash('sha256').update(text).digest('hex') };
        }),
      );
      await expect(streamCounts(scratch.url, audit.trail.streamId)).resolves.toEqual({
        n: '240',
        seqs: '240',
        max: '240',
      });
      await expect(audit.verify()).resolves.not.toHaveProperty('broken');
    } finally {
      hanging.resume();
      await gw.close();
      await hanging.stop();
    }
  });

  it('logs an outage once, not at every retry, and once more when the database takes records again', async () => {
    // nestjs-pino keeps the logger of the first app in the process for its injected loggers: this gateway's own.
    __resetOutOfContextForTests();
    const gw = await startTestGateway('services', {
      DATABASE_URL: withHostPort(scratch.url, relay.port),
      AUDIT_FLUSH_INTERVAL_MS: '20',
    });
    const refused =
      'audit records not stored: kept for replay (spooled, or held in memory while the spool refuses them too), retried until the database takes them';
    const linesOf = (msg: string) => gw.logs.lines.filter((line) => line.msg === msg);
    try {
      const audit = auditOf(gw.gateway.app);
      await relay.refuse();
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < 5; i++) audit.traffic.record(exchangeFactory());
        await audit.trail.flush();
      }
      // New records and replays of the spooled ones, retried every AUDIT_FLUSH_INTERVAL_MS, all failing.
      await waitUntil(() => audit.trail.stats().writeFailures >= 20, 'replay has been retried');
      expect(linesOf(refused)).toHaveLength(1);
      expect(linesOf(refused)[0]).toMatchObject({ level: 40, err: { message: expect.any(String) } });

      await relay.start();
      await waitUntil(() => audit.trail.stats().spoolFiles === 0, 'the spool is replayed');
      expect(linesOf('the database takes audit records again; spooled ones are replayed')).toHaveLength(1);
      expect(linesOf(refused)).toHaveLength(1);
    } finally {
      await relay.start();
      await gw.close();
    }
  });

  it('refuses MCP requests while the spool holds its limit, and serves them again once replay brings it below', async () => {
    const issuer = await LocalEntraIssuer.start();
    const gw = await startTestGateway('services', {
      ...entraEnv(issuer),
      DATABASE_URL: withHostPort(scratch.url, relay.port),
      AUDIT_FLUSH_INTERVAL_MS: '50',
      AUDIT_BATCH_SIZE: '200',
      // Two workers share 2 MiB: this process may spool 1 MiB.
      AUDIT_SPOOL_MAX_BYTES: String(2 * 1024 * 1024),
      WORKERS: '2',
    });
    try {
      const audit = auditOf(gw.gateway.app);
      const token = await issuer.token({ roles: ['Gateway.User'] });
      const initialize = { jsonrpc: '2.0', id: 1, method: 'initialize', params: {} };
      const post = (authorization?: string) => {
        const req = request(gw.url).post('/mcp').set('accept', 'application/json, text/event-stream');
        return (authorization ? req.set('authorization', authorization) : req).send(initialize);
      };
      const spoolFull = async () =>
        /^mcp_gateway_audit_spool_full (\d)$/m.exec((await request(gw.url).get('/metrics')).text)?.[1];
      expect(audit.trail.stats()).toMatchObject({ spoolCapacityBytes: 1024 * 1024, spoolFull: false });
      // Refused, and recorded as refused.
      expect((await post()).status).toBe(401);
      await audit.trail.flush();
      expect(audit.trail.stats()).toMatchObject({ recorded: 1, stored: 1 });
      await expect(spoolFull()).resolves.toBe('0');

      await relay.refuse();
      // About 1.7 KB a record (redacted arguments are kept whole): the spool passes 1 MiB after some 600.
      const args = { text: 'x'.repeat(1_500) };
      let recorded = 0;
      while (!audit.trail.stats().spoolFull && recorded < 5_000) {
        for (let i = 0; i < 200; i++) audit.traffic.record(exchangeFactory({ arguments: args }));
        recorded += 200;
        await audit.trail.flush();
      }
      expect(audit.trail.stats()).toMatchObject({ spoolFull: true, spoolRecords: recorded, stored: 1 });
      expect(audit.trail.stats().spoolBytes).toBeGreaterThanOrEqual(1024 * 1024);

      // Nothing under MCP_PREFIX is served, with a token or without, and nothing is recorded of it.
      for (const answer of [await post(), await post(`Bearer ${token}`), await request(gw.url).get('/mcp')]) {
        expect(answer.status).toBe(503);
        expect(answer.headers['retry-after']).toBe('30');
        expect(answer.body).toEqual({
          error: 'temporarily_unavailable',
          error_description: expect.stringContaining('audit spool is full') as unknown,
        });
      }
      expect(audit.trail.stats().recorded).toBe(recorded + 1);
      const ready = await request(gw.url).get('/health/ready').expect(503);
      expect(ready.body.failing).toContain('audit');
      expect(ready.body.checks.audit).toMatchObject({ status: 'down', kind: 'spool' });
      await expect(spoolFull()).resolves.toBe('1');

      await relay.start();
      await waitUntil(() => audit.trail.stats().spoolFiles === 0, 'the spool is replayed');
      expect(audit.trail.stats()).toMatchObject({ spoolFull: false, stored: recorded + 1 });
      expect((await post()).status).toBe(401);
      await audit.trail.flush();
      const readyAgain = await request(gw.url).get('/health/ready').expect(200);
      expect(readyAgain.body.checks.audit).toEqual({ status: 'up', kind: 'spool' });
      await expect(spoolFull()).resolves.toBe('0');
      await expect(streamCounts(scratch.url, audit.trail.streamId)).resolves.toMatchObject({ n: String(recorded + 2) });
      await expect(audit.verify()).resolves.not.toHaveProperty('broken');
    } finally {
      await relay.start();
      await gw.close();
      await issuer.stop();
    }
  });

  it('holds records neither the database nor the spool takes, refusing MCP requests, until one of them takes them', async () => {
    const gw = await startTestGateway('services', {
      DATABASE_URL: withHostPort(scratch.url, relay.port),
      AUDIT_FLUSH_INTERVAL_MS: '50',
      AUDIT_BATCH_SIZE: '100',
    });
    const spoolDir = path.join(gw.dataDir, 'audit-spool');
    try {
      const audit = auditOf(gw.gateway.app);
      const streamId = audit.trail.streamId;
      for (let i = 0; i < 50; i++) audit.traffic.record(exchangeFactory());
      await audit.trail.flush();

      // PostgreSQL down and DATA_DIR unwritable: a file where the spool's directory was.
      await relay.refuse();
      fs.rmSync(spoolDir, { recursive: true });
      fs.writeFileSync(spoolDir, '');
      for (let i = 0; i < 150; i++) audit.traffic.record(exchangeFactory());
      await audit.trail.flush();
      expect(audit.traffic.haltedReason).toMatch(/can neither store nor spool/);
      const ready = await request(gw.url).get('/health/ready').expect(503);
      expect(ready.body.failing).toContain('audit');
      // Metrics still answer, the spool's gauges from what this process knows; the held records count as queued.
      const metrics = await request(gw.url).get('/metrics').expect(200);
      expect(metrics.text).toMatch(/^mcp_gateway_audit_queue_depth 150$/m);
      expect(metrics.text).toMatch(/^mcp_gateway_audit_spool_records 0$/m);
      // Records of requests already admitted keep coming: held behind the others.
      for (let i = 0; i < 20; i++) audit.traffic.record(exchangeFactory());
      await audit.trail.flush();
      expect(audit.traffic.haltedReason).toBeDefined();

      // The disk first: the held records go to the spool, then to the database once it is back.
      fs.rmSync(spoolDir);
      await audit.trail.flush();
      expect(audit.traffic.haltedReason).toBeUndefined();
      expect(audit.trail.stats()).toMatchObject({ spoolRecords: 170 });
      await relay.start();
      await waitUntil(() => audit.trail.stats().spoolFiles === 0, 'the spool is replayed');
      await expect(streamCounts(scratch.url, streamId)).resolves.toEqual({ n: '220', seqs: '220', max: '220' });
      await expect(audit.verify()).resolves.not.toHaveProperty('broken');
      await request(gw.url).get('/health/ready').expect(200);
    } finally {
      await relay.start();
      await gw.close();
    }
  });

  it('spools what is queued at shutdown when the database is down, and a later start stores it', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'audit-down-'));
    try {
      const gw = await startTestGateway('services', {
        DATABASE_URL: withHostPort(scratch.url, relay.port),
        DATA_DIR: dataDir,
        AUDIT_FLUSH_INTERVAL_MS: '60000',
        AUDIT_BATCH_SIZE: '5000',
      });
      const audit = auditOf(gw.gateway.app);
      const streamId = audit.trail.streamId;
      for (let i = 0; i < 1_000; i++) audit.traffic.record(exchangeFactory());
      await relay.refuse();
      await gw.close();
      expect(audit.trail.stats()).toMatchObject({ stored: 0, spoolRecords: 1_000 });
      await relay.start();

      const next = await startTestGateway('services', { DATABASE_URL: scratch.url, DATA_DIR: dataDir });
      try {
        await waitUntil(() => auditOf(next.gateway.app).trail.stats().spoolFiles === 0, 'the spool is replayed');
        await expect(streamCounts(scratch.url, streamId)).resolves.toEqual({ n: '1000', seqs: '1000', max: '1000' });
      } finally {
        await next.close();
      }
    } finally {
      await relay.start();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('audit trail: a spooled batch the database refuses', () => {
  // Migrated before any gateway starts: the test locks a table of it first.
  let scratch: Awaited<ReturnType<typeof startScratchPrisma>>;

  beforeAll(async () => {
    scratch = await startScratchPrisma();
  });

  afterAll(async () => {
    await scratch?.close();
  });

  /**
   * A gateway on the scratch database and `dataDir`'s spool, flushing and cutting only when told to; nestjs-pino's
   * logger reset, so that the gateway's log holds its own lines.
   */
  const spoolGateway = (dataDir: string, env: Record<string, string> = {}): Promise<TestGateway> => {
    __resetOutOfContextForTests();
    return startTestGateway('services', {
      DATABASE_URL: scratch.url,
      DATA_DIR: dataDir,
      AUDIT_FLUSH_INTERVAL_MS: '60000',
      AUDIT_RETENTION_INTERVAL_MS: '0',
      ...env,
    });
  };

  /** A batch of `count` records of a new stream, as a gateway spools it; `edit` changes each before it is chained. */
  function spooledBatch(
    count: number,
    edit: (row: Omit<AuditRow, 'seq' | 'prevHash' | 'hash'>, index: number) => void = () => {},
  ) {
    const policy = { mode: 'redacted' as const, redactKeys: redactKeyPattern('secret'), maxBytes: 8192 };
    const head = new ChainHead(randomUUID());
    const rows = Array.from({ length: count }, (_, index) => {
      const row = toUnchainedRow(exchangeFactory(), policy);
      edit(row, index);
      return head.link(row);
    });
    return { streamId: head.streamId, rows };
  }

  it('sets a batch of the wrong shape or with values the database refuses aside as .rejected, and replays the next', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'audit-rejected-'));
    const spoolDir = path.join(dataDir, 'audit-spool');
    const earlier = new AuditSpool(spoolDir);
    // Stream ids that sort first: replay takes batches in name order, and these come before the good one.
    const fileOf = (streamId: string) => `${streamId}-${'1'.padStart(16, '0')}.ndjson`;
    const shapeless = '00000000-0000-4000-8000-000000000001';
    fs.writeFileSync(path.join(spoolDir, fileOf(shapeless)), '{"hello":"world"}\n');
    const refused = spooledBatch(3, (row) => (row.serverId = 'not-a-uuid'));
    refused.rows.forEach((row) => (row.streamId = '00000000-0000-4000-8000-000000000002'));
    earlier.write(refused.rows);
    const good = spooledBatch(20);
    earlier.write(good.rows);

    // An outage first: inserts wait on a lock and time out, which is no refusal.
    const locker = new Client({ connectionString: scratch.url });
    await locker.connect();
    let gw: TestGateway | undefined;
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE audit_records IN ACCESS EXCLUSIVE MODE');
      gw = await spoolGateway(dataDir, { AUDIT_WRITE_TIMEOUT_MS: '300' });
      const logs = gw.logs;
      const setAsideLines = () =>
        logs.lines.filter((line) => typeof line.msg === 'string' && / set aside /.test(line.msg));
      const audit = auditOf(gw.gateway.app);
      await waitUntil(() => audit.trail.stats().writeFailures > 0, 'a replay has timed out');
      // The batch that is not audit records was set aside without asking the database; the refused one waits.
      expect(fs.readdirSync(spoolDir).sort()).toEqual([
        fileOf(shapeless) + '.rejected',
        fileOf('00000000-0000-4000-8000-000000000002'),
        fileOf(good.streamId),
      ]);
      expect(audit.trail.stats()).toMatchObject({ spoolFiles: 2, spoolSetAside: { rejected: 1, corrupt: 0 } });

      await locker.query('ROLLBACK');
      await audit.trail.flush();
      expect(fs.readdirSync(spoolDir).sort()).toEqual([
        fileOf(shapeless) + '.rejected',
        fileOf('00000000-0000-4000-8000-000000000002') + '.rejected',
      ]);
      expect(setAsideLines()).toEqual([
        expect.objectContaining({
          level: 50,
          file: fileOf(shapeless),
          err: expect.objectContaining({ message: 'line 1 is not an audit record: id must be a string' }) as unknown,
          msg: 'a spooled audit batch does not hold audit records: set aside as .rejected, and replay goes on without it',
        }),
        // Each of its records is refused: each is set aside, into one file.
        expect.objectContaining({
          level: 50,
          file: fileOf('00000000-0000-4000-8000-000000000002') + '.rejected',
          records: 3,
          err: expect.objectContaining({ message: expect.stringContaining('uuid') as unknown }) as unknown,
          msg: REFUSED_RECORDS,
        }),
      ]);
      expect(audit.trail.stats()).toMatchObject({
        spoolFiles: 0,
        replayed: 20,
        spoolSetAside: { rejected: 2, corrupt: 0 },
      });
      const metrics = (await request(gw.url).get('/metrics').expect(200)).text;
      expect(metrics).toMatch(/^mcp_gateway_audit_spool_set_aside_files\{reason="rejected"\} 2$/m);
      expect(metrics).toMatch(/^mcp_gateway_audit_spool_set_aside_files\{reason="corrupt"\} 0$/m);
      await expect(streamCounts(scratch.url, good.streamId)).resolves.toEqual({ n: '20', seqs: '20', max: '20' });
      await expect(audit.verify()).resolves.not.toHaveProperty('broken');
    } finally {
      await locker.end();
      await gw?.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('sets aside only the records the database refuses, and stores the others linked around them, after a restart too', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'audit-refused-record-'));
    const spoolDir = path.join(dataDir, 'audit-spool');
    // Seqs 8 and 17 hold what the uuid column refuses; 1-12 and 13-25 are two spooled batches, 26-30 a third.
    const { streamId, rows } = spooledBatch(30, (row, index) => {
      if (index === 7 || index === 16) row.serverId = 'not-a-uuid';
    });
    const earlier = new AuditSpool(spoolDir);
    earlier.write(rows.slice(0, 12));
    earlier.write(rows.slice(12, 25));
    const rejectedOf = (seq: number) => `${streamId}-${String(seq).padStart(16, '0')}.ndjson.rejected`;
    const setAside = (seq: number) => fs.readFileSync(path.join(spoolDir, rejectedOf(seq)), 'utf8');
    const storedIds = async () =>
      (
        await sql<{ id: string; seq: string }>(
          scratch.url,
          'SELECT id, seq FROM audit_records WHERE stream_id = $1 ORDER BY seq',
          [streamId],
        )
      ).map((row) => row.id);
    const others = rows.filter((_, index) => index !== 7 && index !== 16).map((row) => row.id);

    let gw = await spoolGateway(dataDir);
    try {
      const audit = auditOf(gw.gateway.app);
      await audit.trail.flush();
      expect(fs.readdirSync(spoolDir).sort()).toEqual([rejectedOf(8), rejectedOf(17)]);
      // The refused records as they were spooled, one a file (one of each batch).
      expect(JSON.parse(setAside(8))).toMatchObject({ id: rows[7]!.id, seq: 8, hash: rows[7]!.hash });
      expect(JSON.parse(setAside(17))).toMatchObject({ id: rows[16]!.id, seq: 17 });
      // The others, in order, under seqs without gaps: the chain goes on without the two.
      await expect(storedIds()).resolves.toEqual(others.slice(0, 23));
      await expect(streamCounts(scratch.url, streamId)).resolves.toEqual({ n: '23', seqs: '23', max: '23' });
      await expect(audit.verify()).resolves.not.toHaveProperty('broken');
      expect(audit.trail.stats()).toMatchObject({
        spoolFiles: 0,
        replayed: 23,
        spoolSetAside: { rejected: 2, corrupt: 0 },
      });
      const lines = gw.logs.lines.filter((line) => line.msg === REFUSED_RECORDS);
      expect(lines).toEqual([
        expect.objectContaining({ level: 50, file: rejectedOf(8), records: 1 }),
        expect.objectContaining({ level: 50, file: rejectedOf(17), records: 1 }),
      ]);
      expect(lines[0]!.err).toMatchObject({ message: expect.stringContaining('uuid') as unknown });
      const metrics = (await request(gw.url).get('/metrics').expect(200)).text;
      expect(metrics).toMatch(/^mcp_gateway_audit_spool_set_aside_files\{reason="rejected"\} 2$/m);
    } finally {
      await gw.close();
    }

    // A later batch of the stream, replayed by the next run, which knows of the two from the stream's row; and one
    // of the two renamed back by an operator, which the database still refuses, and the other edited to fit, which no
    // longer matches its hash: both set aside again.
    new AuditSpool(spoolDir).write(rows.slice(25));
    fs.renameSync(path.join(spoolDir, rejectedOf(8)), path.join(spoolDir, rejectedOf(8).replace(/\.rejected$/, '')));
    fs.writeFileSync(
      path.join(spoolDir, rejectedOf(17).replace(/\.rejected$/, '')),
      setAside(17).replace('"not-a-uuid"', `"${randomUUID()}"`),
    );
    fs.rmSync(path.join(spoolDir, rejectedOf(17)));
    gw = await spoolGateway(dataDir);
    try {
      const audit = auditOf(gw.gateway.app);
      await audit.trail.flush();
      expect(fs.readdirSync(spoolDir).sort()).toEqual([rejectedOf(8), rejectedOf(17)]);
      expect(JSON.parse(setAside(8))).toMatchObject({ id: rows[7]!.id, seq: 8 });
      await expect(storedIds()).resolves.toEqual(others);
      await expect(streamCounts(scratch.url, streamId)).resolves.toEqual({ n: '28', seqs: '28', max: '28' });
      await expect(audit.verify()).resolves.not.toHaveProperty('broken');
      expect(audit.trail.stats()).toMatchObject({ replayed: 5, spoolSetAside: { rejected: 2, corrupt: 0 } });
      expect(gw.logs.lines.filter((line) => line.msg === REFUSED_RECORDS)).toEqual([
        expect.objectContaining({
          file: rejectedOf(8),
          records: 1,
          err: expect.objectContaining({
            message: expect.stringContaining('uuid') as unknown,
          }) as unknown,
        }),
        expect.objectContaining({
          file: rejectedOf(17),
          records: 1,
          err: expect.objectContaining({
            message: 'the record does not hash to its hash: changed since it was set aside',
          }) as unknown,
        }),
      ]);
      expect(JSON.parse(setAside(17))).toMatchObject({ id: rows[16]!.id, seq: 17 });
    } finally {
      await gw.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('sets aside a fresh record the database refuses (a constraint added by hand), and links the next ones around it', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'audit-refused-fresh-'));
    const refused = `refuse-me-${randomUUID()}`;
    await sql(scratch.url, `ALTER TABLE audit_records ADD CONSTRAINT refuse_me CHECK (target <> '${refused}')`);
    const gw = await spoolGateway(dataDir);
    try {
      const audit = auditOf(gw.gateway.app);
      const streamId = audit.trail.streamId;
      for (let i = 0; i < 10; i++) audit.traffic.record(exchangeFactory({ target: i === 3 ? refused : `tool-${i}` }));
      await audit.trail.flush();
      for (let i = 10; i < 15; i++) audit.traffic.record(exchangeFactory({ target: `tool-${i}` }));
      await audit.trail.flush();

      const stored = await sql<{ target: string; seq: string }>(
        scratch.url,
        'SELECT target, seq FROM audit_records WHERE stream_id = $1 ORDER BY seq',
        [streamId],
      );
      const expected = Array.from({ length: 15 }, (_, i) => `tool-${i}`).filter((target) => target !== 'tool-3');
      expect(stored.map((row) => row.target)).toEqual(expected);
      expect(stored.map((row) => Number(row.seq))).toEqual(expected.map((_, i) => i + 1));
      await expect(audit.verify()).resolves.not.toHaveProperty('broken');
      const file = `${streamId}-${'4'.padStart(16, '0')}.ndjson.rejected`;
      expect(fs.readdirSync(path.join(dataDir, 'audit-spool'))).toEqual([file]);
      expect(JSON.parse(fs.readFileSync(path.join(dataDir, 'audit-spool', file), 'utf8'))).toMatchObject({
        target: refused,
        seq: 4,
      });
      expect(audit.trail.stats()).toMatchObject({ stored: 14, spooled: 0, spoolSetAside: { rejected: 1 } });
      expect(gw.logs.lines.filter((line) => line.msg === REFUSED_RECORDS)).toEqual([
        expect.objectContaining({
          file,
          records: 1,
          err: expect.objectContaining({ message: expect.stringContaining('refuse_me') as unknown }) as unknown,
        }),
      ]);
    } finally {
      await gw.close();
      await sql(scratch.url, 'ALTER TABLE audit_records DROP CONSTRAINT refuse_me');
    }

    // The database fixed and the file renamed back: the record is stored, as a stream of its own, its own chain went
    // on without it.
    const spoolDir = path.join(dataDir, 'audit-spool');
    const [file] = fs.readdirSync(spoolDir);
    const { id } = JSON.parse(fs.readFileSync(path.join(spoolDir, file!), 'utf8')) as { id: string };
    fs.renameSync(path.join(spoolDir, file!), path.join(spoolDir, file!.replace(/\.rejected$/, '')));
    const next = await spoolGateway(dataDir);
    try {
      const audit = auditOf(next.gateway.app);
      await audit.trail.flush();
      expect(fs.readdirSync(spoolDir)).toEqual([]);
      const [apart] = await sql<{ stream_id: string; seq: string; target: string }>(
        scratch.url,
        'SELECT stream_id, seq, target FROM audit_records WHERE id = $1',
        [id],
      );
      expect(apart).toMatchObject({ seq: '1', target: refused });
      expect(next.logs.lines).toContainEqual(
        expect.objectContaining({
          level: 40,
          stream: apart!.stream_id,
          seqs: [4],
          msg: 'audit records set aside before and put back are stored as a stream of their own: their chain went on without them',
        }),
      );
      await expect(audit.verify()).resolves.not.toHaveProperty('broken');
    } finally {
      await next.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
  it('sets a batch the database refuses whole aside without splitting it down to each record', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'audit-refused-all-'));
    const refused = `refuse-all-${randomUUID()}`;
    await sql(scratch.url, `ALTER TABLE audit_records ADD CONSTRAINT refuse_all CHECK (target <> '${refused}')`);
    const gw = await spoolGateway(dataDir, { AUDIT_BATCH_SIZE: '100' });
    try {
      const audit = auditOf(gw.gateway.app);
      const streamId = audit.trail.streamId;
      for (let i = 0; i < 100; i++) audit.traffic.record(exchangeFactory({ target: refused }));
      await audit.trail.flush();
      const spoolDir = path.join(dataDir, 'audit-spool');
      const files = fs.readdirSync(spoolDir);
      expect(files).toEqual([`${streamId}-${'1'.padStart(16, '0')}.ndjson.rejected`]);
      const lines = fs.readFileSync(path.join(spoolDir, files[0]!), 'utf8').trim().split('\n');
      expect(lines.map((line) => (JSON.parse(line) as { seq: number }).seq)).toEqual(
        Array.from({ length: 100 }, (_, i) => i + 1),
      );
      // Split down to each record, the batch took 199 refused inserts.
      expect(audit.trail.stats().writeFailures).toBeLessThan(50);
      await expect(streamCounts(scratch.url, streamId)).resolves.toMatchObject({ n: '0' });
      await expect(audit.verify()).resolves.not.toHaveProperty('broken');
      expect(gw.logs.lines.filter((line) => line.msg === REFUSED_RECORDS)).toEqual([
        expect.objectContaining({ records: 100, file: files[0] }),
      ]);
    } finally {
      await gw.close();
      await sql(scratch.url, 'ALTER TABLE audit_records DROP CONSTRAINT refuse_all');
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

/** `audit verify`'s failure to read: one line, naming the database (not its credentials) and the bound it ran past. */
function expectReadFailure(stderr: string, url: string): void {
  const { host, pathname } = new URL(url);
  expect(stderr.split('\n')).toEqual([expect.stringMatching(/^mcp-gateway: audit verify failed: /), '']);
  expect(stderr).toContain(
    `reading postgresql://${host}${pathname}: the database did not answer in time (DATABASE_QUERY_TIMEOUT_MS is 500 ms): `,
  );
}

const REFUSED_RECORDS =
  'audit records the database refuses are set aside in a .rejected file; the records after them are stored, linked around them';

describe('mcp-gateway audit verify', () => {
  let scratch: Scratch;
  let streamId: string;
  const verify = () => runCli(['audit', 'verify'], { DATABASE_URL: scratch.url, LOG_LEVEL: 'error' });

  beforeAll(async () => {
    scratch = await createScratchDatabase();
    const gw = await startTestGateway('services', { DATABASE_URL: scratch.url });
    try {
      const audit = auditOf(gw.gateway.app);
      streamId = audit.trail.streamId;
      for (let i = 0; i < 20; i++) audit.traffic.record(exchangeFactory({ target: `tool-${i}` }));
    } finally {
      await gw.close();
    }
  });

  afterAll(async () => {
    await scratch?.drop();
  });

  async function rowAt(seq: number): Promise<{ id: string; json: unknown }> {
    const [row] = await sql<{ id: string; json: unknown }>(
      scratch.url,
      'SELECT id, row_to_json(r) AS json FROM audit_records r WHERE stream_id = $1 AND seq = $2',
      [streamId, seq],
    );
    return row!;
  }

  const restore = (json: unknown) =>
    sql(scratch.url, 'INSERT INTO audit_records SELECT * FROM json_populate_record(NULL::audit_records, $1)', [
      JSON.stringify(json),
    ]);

  it('passes on an intact trail (exit 0)', async () => {
    const result = await verify();
    expect(result.stderr).toBe('');
    expect(result.stdout).toContain('audit chain verified: 20 record(s) in 1 stream(s)');
    expect(result.code).toBe(0);
  });

  it('says when AUDIT_HMAC_KEY is set for records hashed without one, rather than that a field was changed', async () => {
    const keyed = await runCli(['audit', 'verify'], {
      DATABASE_URL: scratch.url,
      LOG_LEVEL: 'error',
      AUDIT_HMAC_KEY: 'a-key-the-gateway-never-had',
    });
    expect(keyed.code).toBe(1);
    expect(keyed.stdout).toContain(`stream ${streamId}, record ${(await rowAt(1)).id} (seq 1)`);
    expect(keyed.stdout).toMatch(/hashed without a key though AUDIT_HMAC_KEY is set/);
  });

  it('fails on an edited row, naming it (exit 1), and passes again once the edit is undone', async () => {
    const row = await rowAt(7);
    await sql(scratch.url, "UPDATE audit_records SET decision = 'allowed', target = 'other' WHERE id = $1", [row.id]);
    const result = await verify();
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(`stream ${streamId}, record ${row.id} (seq 7)`);
    expect(result.stdout).toMatch(/does not hash to its stored hash/);

    await sql(scratch.url, "UPDATE audit_records SET target = 'tool-6' WHERE id = $1", [row.id]);
    expect((await verify()).code).toBe(0);
  });

  it('fails on an edited hash chain link (a row re-hashed without the key is still out of its chain)', async () => {
    const row = await rowAt(3);
    await sql(scratch.url, "UPDATE audit_records SET prev_hash = repeat('0', 64) WHERE id = $1", [row.id]);
    const result = await verify();
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/prev_hash does not match/);
    await sql(scratch.url, 'UPDATE audit_records SET prev_hash = $2 WHERE id = $1', [
      row.id,
      (row.json as { prev_hash: string }).prev_hash,
    ]);
    expect((await verify()).code).toBe(0);
  });

  it.each([
    ['a row in the middle', 10],
    ['the first row', 1],
    ['the newest row', 20],
  ])('fails on a deleted row: %s', async (_name, seq) => {
    const row = await rowAt(seq);
    await sql(scratch.url, 'DELETE FROM audit_records WHERE id = $1', [row.id]);
    try {
      const result = await verify();
      expect(result.code).toBe(1);
      expect(result.stdout).toContain(`stream ${streamId}, seq ${seq}`);
      expect(result.stdout).toMatch(/missing/);
    } finally {
      await restore(row.json);
    }
    expect((await verify()).code).toBe(0);
  });

  it('fails when the stream row is deleted', async () => {
    const [stream] = await sql(scratch.url, 'SELECT row_to_json(s) AS json FROM audit_streams s WHERE id = $1', [
      streamId,
    ]);
    await sql(scratch.url, 'DELETE FROM audit_streams WHERE id = $1', [streamId]);
    try {
      const result = await verify();
      expect(result.code).toBe(1);
      expect(result.stdout).toContain(`stream ${streamId}`);
    } finally {
      await sql(scratch.url, 'INSERT INTO audit_streams SELECT * FROM json_populate_record(NULL::audit_streams, $1)', [
        JSON.stringify(stream!.json),
      ]);
    }
  });

  it('fails with one line naming the database when a read waits past DATABASE_QUERY_TIMEOUT_MS, as serve does', async () => {
    const queryTimeoutMs = 500;
    // A table lock makes its reads wait; PostgreSQL cancels the wait (statement_timeout).
    const holder = new Client({ connectionString: scratch.url });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE audit_records IN ACCESS EXCLUSIVE MODE');
      const result = await runCli(['audit', 'verify'], {
        DATABASE_URL: scratch.url,
        DATABASE_QUERY_TIMEOUT_MS: String(queryTimeoutMs),
        LOG_LEVEL: 'silent',
      });
      expect(result.code).toBe(1);
      expect(result.stdout).toBe('');
      expectReadFailure(result.stderr, scratch.url);
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
    }
    expect((await verify()).code).toBe(0);
  });

  it('fails with one line naming the database when the database stops answering in the middle, instead of hanging', async () => {
    const { host, port } = hostPortOf(scratch.url);
    const relay = new StallableProxy(host, port);
    await relay.start();
    const applicationName = `gw-verify-${randomUUID()}`;
    const url = new URL(withHostPort(scratch.url, relay.port));
    url.searchParams.set('application_name', applicationName);
    // The lock holds verify's first read of the records until the relay has stopped relaying answers.
    const holder = new Client({ connectionString: scratch.url });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE audit_records IN ACCESS EXCLUSIVE MODE');
      const result = runCli(['audit', 'verify'], {
        DATABASE_URL: url.toString(),
        DATABASE_QUERY_TIMEOUT_MS: '500',
        LOG_LEVEL: 'silent',
      });
      await eventually(async () => {
        const waiting = await sql(
          scratch.url,
          `SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`,
          [applicationName],
        );
        expect(waiting).toHaveLength(1);
      });
      relay.stall();
      await holder.query('ROLLBACK');
      const verified = await result;
      expect(verified.code).toBe(1);
      expect(verified.stdout).toBe('');
      expectReadFailure(verified.stderr, url.toString());
    } finally {
      relay.resume();
      await holder.end();
      await relay.stop();
    }
  });

  it('answers usage errors with exit 2 and an unreachable database with exit 1', async () => {
    expect((await runCli(['audit', 'verify', 'extra'], { DATABASE_URL: scratch.url })).code).toBe(2);
    expect((await runCli(['audit', 'verify'], { DATABASE_URL: 'mysql://nope' })).code).toBe(2);
    const down = await runCli(['audit', 'verify'], {
      DATABASE_URL: 'postgresql://postgres@127.0.0.1:1/none',
      LOG_LEVEL: 'silent',
    });
    expect(down.code).toBe(1);
    expect(down.stderr).toContain('audit verify failed');
  });
});

describe('audit verify, a page at a time', () => {
  it('walks every stream and chain, and finds records without their stream row, past the first page of each read', async () => {
    const scratch = await startScratchPrisma();
    try {
      const repository = new AuditRepository(scratch.prisma);
      const policy = { mode: 'redacted' as const, redactKeys: redactKeyPattern('secret'), maxBytes: 8192 };
      const streamIds: string[] = [];
      for (let stream = 0; stream < 5; stream++) {
        const head = new ChainHead(randomUUID());
        await repository.insert(Array.from({ length: 3 }, () => head.link(toUnchainedRow(exchangeFactory(), policy))));
        streamIds.push(head.streamId);
      }
      // Pages of two: three of streams, three of the stream ids records name, two of each chain.
      await expect(verifyAuditTrail(repository, undefined, 2)).resolves.toEqual({ streams: 5, records: 15 });
      const lastById = [...streamIds].sort().at(-1)!;
      await sql(scratch.url, 'DELETE FROM audit_streams WHERE id = $1', [lastById]);
      await expect(verifyAuditTrail(repository, undefined, 2)).resolves.toMatchObject({
        broken: { streamId: lastById, seq: 0 },
      });
    } finally {
      await scratch.close();
    }
  });
});

describe('audit retention', () => {
  const DAY_MS = 86_400_000;

  /**
   * A gateway keeping 30 days of audit records, on a scratch database of its own, whose stream holds `old` records
   * from 40 days ago (a millisecond apart, from `oldAt`) and then `young` ones from now, all stored.
   */
  async function retentionGateway(old: number, young: number) {
    const scratch = await createScratchDatabase();
    const gw = await startTestGateway('services', { DATABASE_URL: scratch.url, AUDIT_RETENTION_DAYS: '30' }).catch(
      async (error: unknown) => {
        await scratch.drop();
        throw error;
      },
    );
    const audit = auditOf(gw.gateway.app);
    const oldAt = Date.now() - 40 * DAY_MS;
    for (let i = 0; i < old; i++) audit.traffic.record(exchangeFactory({ at: new Date(oldAt + i) }));
    for (let i = 0; i < young; i++) audit.traffic.record(exchangeFactory());
    await audit.trail.flush();
    return {
      scratch,
      gw,
      audit,
      streamId: audit.trail.streamId,
      oldAt,
      repository: gw.gateway.app.get(AuditRepository),
      retention: gw.gateway.app.get(AuditRetention),
      prisma: gw.gateway.app.get(PrismaService),
      /** The stream's records still stored, by seq. */
      storedSeqs: async () =>
        (
          await sql<{ seq: number }>(
            scratch.url,
            'SELECT seq::int AS seq FROM audit_records WHERE stream_id = $1 ORDER BY seq',
            [audit.trail.streamId],
          )
        ).map((row) => row.seq),
      close: async () => {
        try {
          await gw.close();
        } finally {
          await scratch.drop();
        }
      },
    };
  }

  /** `prisma`, but each interactive transaction first awaits `before` (told how many began before it). */
  function beforeEachTransaction(
    prisma: PrismaService,
    before: (began: number) => Promise<void> | void,
  ): PrismaService {
    let began = 0;
    return new Proxy(prisma, {
      get(target, property) {
        const value = Reflect.get(target, property, target) as unknown;
        if (property === '$transaction' && typeof value === 'function') {
          return async (...args: unknown[]) => {
            await before(began++);
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        }
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
  }

  it('removes records past retention, leaves an anchor, and the chain still verifies; tampering after it still fails', async () => {
    const setup = await retentionGateway(10, 5);
    const { scratch, streamId } = setup;
    try {
      try {
        const expiring = (await setup.repository.list({}, undefined, 100)).filter((row) => row.seq <= 10);
        expect(expiring).toHaveLength(10);
        await expect(setup.retention.expire()).resolves.toEqual({ streams: 1, removed: 10 });
        // A replayed batch holding rows retention already passed stores none of them.
        await expect(setup.repository.insert(expiring)).resolves.toBe(0);
        // Idempotent: nothing more is old enough.
        await expect(setup.retention.expire()).resolves.toEqual({ streams: 0, removed: 0 });
        await expect(setup.audit.verify()).resolves.toEqual({ streams: 1, records: 5 });
        await expect(
          sql(scratch.url, 'SELECT anchor_seq::int AS seq, removed_count::int AS removed FROM audit_streams'),
        ).resolves.toEqual([{ seq: 10, removed: 10 }]);
      } finally {
        await setup.gw.close();
      }
      const ok = await runCli(['audit', 'verify'], { DATABASE_URL: scratch.url, LOG_LEVEL: 'error' });
      expect(ok.stdout).toContain('verified: 5 record(s)');
      expect(ok.code).toBe(0);

      await sql(scratch.url, 'DELETE FROM audit_records WHERE stream_id = $1 AND seq = 11', [streamId]);
      const broken = await runCli(['audit', 'verify'], { DATABASE_URL: scratch.url, LOG_LEVEL: 'error' });
      expect(broken.stdout).toContain(`stream ${streamId}, seq 11`);
      expect(broken.code).toBe(1);
    } finally {
      await scratch.drop();
    }
  });

  it('verify walking a stream while retention cuts it reports no missing record', async () => {
    const setup = await retentionGateway(10, 5);
    try {
      const { repository, retention } = setup;
      // Retention's pass lands between verify reading the streams and reading their records.
      const racing = Object.create(repository) as AuditRepository;
      let cut = false;
      racing.chainPage = async (...args) => {
        if (!cut) {
          cut = true;
          await expect(retention.expire()).resolves.toEqual({ streams: 1, removed: 10 });
        }
        return repository.chainPage(...args);
      };
      await expect(verifyAuditTrail(racing)).resolves.toEqual({ streams: 1, records: 5 });
      // A record really missing is still reported, by its seq.
      await sql(setup.scratch.url, 'DELETE FROM audit_records WHERE stream_id = $1 AND seq = 12', [setup.streamId]);
      await expect(verifyAuditTrail(repository)).resolves.toMatchObject({ broken: { seq: 12 } });
    } finally {
      await setup.close();
    }
  });

  it('a spooled batch replayed while retention runs keeps its records younger than the cutoff', async () => {
    const setup = await retentionGateway(4, 6);
    try {
      const { repository, streamId } = setup;
      // Seq 5..7, young, are still spooled somewhere: not in the database when retention looks.
      const spooled = (await repository.list({}, undefined, 100)).filter((row) => row.seq >= 5 && row.seq <= 7);
      await sql(setup.scratch.url, 'DELETE FROM audit_records WHERE stream_id = $1 AND seq BETWEEN 5 AND 7', [
        streamId,
      ]);
      // The replay lands after retention chose its streams, before it cuts.
      const racing = beforeEachTransaction(setup.prisma, async (began) => {
        if (began === 0) await expect(repository.insert(spooled)).resolves.toBe(3);
      });
      await expect(new AuditRepository(racing).expire(new Date(Date.now() - 30 * DAY_MS))).resolves.toEqual({
        streams: 1,
        removed: 4,
      });
      await expect(setup.storedSeqs()).resolves.toEqual([5, 6, 7, 8, 9, 10]);
      await expect(setup.audit.verify()).resolves.toEqual({ streams: 1, records: 6 });
    } finally {
      await setup.close();
    }
  });

  it('cuts a backlog larger than one step a step at a time, each its own transaction, seeing a replay between steps', async () => {
    const setup = await retentionGateway(10, 6);
    try {
      const { repository, streamId, scratch } = setup;
      // Seq 11..13, young, are still spooled somewhere: the cut stops before the gap, at seq 8 after two steps of 4,
      // until their replay lands before the third step, which then cuts seq 9 and 10 and stops at seq 11.
      const spooled = (await repository.list({}, undefined, 100)).filter((row) => row.seq >= 11 && row.seq <= 13);
      await sql(scratch.url, 'DELETE FROM audit_records WHERE stream_id = $1 AND seq BETWEEN 11 AND 13', [streamId]);
      const anchors: number[] = [];
      const racing = beforeEachTransaction(setup.prisma, async (began) => {
        const [stream] = await sql<{ seq: number }>(
          scratch.url,
          'SELECT anchor_seq::int AS seq FROM audit_streams WHERE id = $1',
          [streamId],
        );
        anchors.push(stream!.seq);
        if (began === 2) await expect(repository.insert(spooled)).resolves.toBe(3);
      });
      await expect(
        new AuditRepository(racing).expire(new Date(Date.now() - 30 * DAY_MS), { batchSize: 4 }),
      ).resolves.toEqual({ streams: 1, removed: 10 });
      // Each step committed before the next began: the anchor moved between them.
      expect(anchors).toEqual([0, 4, 8]);
      await expect(setup.storedSeqs()).resolves.toEqual([11, 12, 13, 14, 15, 16]);
      await expect(
        sql(scratch.url, 'SELECT anchor_seq::int AS seq, removed_count::int AS removed FROM audit_streams'),
      ).resolves.toEqual([{ seq: 10, removed: 10 }]);
      await expect(setup.audit.verify()).resolves.toEqual({ streams: 1, records: 6 });
      await setup.gw.close();
      const verified = await runCli(['audit', 'verify'], { DATABASE_URL: scratch.url, LOG_LEVEL: 'error' });
      expect(verified.stdout).toContain('audit chain verified: 6 record(s) in 1 stream(s)');
      expect(verified.code).toBe(0);
    } finally {
      await setup.close();
    }
  });

  it('stops a pass between two steps when the gateway shuts down; the next pass cuts the rest', async () => {
    const setup = await retentionGateway(10, 2);
    try {
      const stopping = new AbortController();
      const racing = beforeEachTransaction(setup.prisma, (began) => {
        if (began === 1) stopping.abort();
      });
      const cutoff = new Date(Date.now() - 30 * DAY_MS);
      await expect(
        new AuditRepository(racing).expire(cutoff, { batchSize: 3, signal: stopping.signal }),
      ).resolves.toEqual({ streams: 1, removed: 6 });
      await expect(setup.audit.verify()).resolves.toEqual({ streams: 1, records: 6 });
      await expect(setup.retention.expire({ batchSize: 3 })).resolves.toEqual({ streams: 1, removed: 4 });
      await expect(setup.storedSeqs()).resolves.toEqual([11, 12]);
      await expect(setup.audit.verify()).resolves.toEqual({ streams: 1, records: 2 });
    } finally {
      await setup.close();
    }
  });

  it('two passes at once (two replicas) cut each record once, while the stream takes new records', async () => {
    const setup = await retentionGateway(20, 3);
    try {
      const { audit, scratch } = setup;
      const cutoff = new Date(Date.now() - 30 * DAY_MS);
      for (let i = 0; i < 30; i++) audit.traffic.record(exchangeFactory());
      const [first, second] = await Promise.all([
        setup.repository.expire(cutoff, { batchSize: 3 }),
        new AuditRepository(setup.prisma).expire(cutoff, { batchSize: 3 }),
        audit.trail.flush(),
      ]);
      expect(first.removed + second.removed).toBe(20);
      await expect(
        sql(scratch.url, 'SELECT anchor_seq::int AS seq, removed_count::int AS removed FROM audit_streams'),
      ).resolves.toEqual([{ seq: 20, removed: 20 }]);
      await expect(setup.audit.verify()).resolves.toEqual({ streams: 1, records: 33 });
    } finally {
      await setup.close();
    }
  });

  it('verify walking a stream that retention cuts a step between each of its reads reports no missing record', async () => {
    const setup = await retentionGateway(12, 5);
    try {
      const { repository, retention, oldAt } = setup;
      // Each read of a page first lets retention cut two more records, one step: six cuts in all, so verify
      // finds records missing six times over, each time where the anchor has since moved past.
      const racing = Object.create(repository) as AuditRepository;
      let cuts = 0;
      racing.chainPage = async (...args) => {
        if (cuts < 6) {
          cuts += 1;
          const now = new Date(oldAt + 2 * cuts + 30 * DAY_MS);
          await expect(retention.expire({ now, batchSize: 2 })).resolves.toEqual({ streams: 1, removed: 2 });
        }
        return repository.chainPage(...args);
      };
      await expect(verifyAuditTrail(racing)).resolves.toEqual({ streams: 1, records: 5 });
      expect(cuts).toBe(6);
    } finally {
      await setup.close();
    }
  });
});
