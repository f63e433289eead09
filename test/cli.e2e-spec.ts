import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';
import request from 'supertest';
import { MIGRATIONS_DIR } from '../src/database/migrator';
import { type CliResult, runCli, ServeProcess } from './support/cli';
import { eventually, waitUntil } from './support/eventually';
import { createScratchDatabase, POSTGRES_URL, REDIS_URL } from './support/services';
import { StallableProxy } from './support/stallable-proxy';
import { hostPortOf, withHostPort } from './support/tcp-proxy';

/** The advisory lock Prisma's schema engine takes around migrations (`SELECT pg_advisory_lock(72707369)`). */
const PRISMA_MIGRATE_LOCK = 72707369;

const COMMITTED = readdirSync(MIGRATIONS_DIR, { withFileTypes: true })
  .filter((entry) => entry.isDirectory())
  .map((entry) => entry.name)
  .sort();

describe('mcp-gateway CLI', () => {
  let dataDir: string;

  beforeAll(() => {
    dataDir = mkdtempSync(path.join(tmpdir(), 'mcp-gateway-cli-'));
  });

  afterAll(() => {
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('lists the resolve flags in migrate --help', async () => {
    const result = await runCli(['migrate', '--help']);
    expect(result.stdout).toContain('--resolve-applied <migration>');
    expect(result.stdout).toContain('--resolve-rolled-back <migration>');
  });

  it.each([[['--help']], [['serve', '--help']], [['migrate', '--help']]])(
    'prints help for %j and exits 0',
    async (args) => {
      const result = await runCli(args);
      expect(result.code).toBe(0);
      expect(result.stdout).toContain('Usage: mcp-gateway');
    },
  );

  it('exits 2 on an unknown command or a bad flag', async () => {
    const unknown = await runCli(['launch']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown command 'launch'");
    const badPort = await runCli(['serve', '--port', 'http']);
    expect(badPort.code).toBe(2);
    expect(badPort.stderr).toContain('must be a whole number from 0 to 65535');
  });

  it.each([
    [['serve', '--host', ''], 'must not be empty'],
    [['serve', '--host', ' '], 'must not be empty'],
    [['serve', '--port', ''], 'must be a whole number from 0 to 65535'],
    [['serve', '--workers', ''], 'must be a whole number from 1 to 128, or auto'],
    [['token', '--roles', ''], 'must not be empty'],
    [['token', '--scopes', ''], 'must not be empty'],
    [['token', '--name', ''], 'must not be empty'],
    [['token', '--ttl', ''], 'must be a duration'],
  ])('refuses an empty flag value rather than taking it as unset: %j, exit 2', async (args, message) => {
    const result = await runCli(args, { DATA_DIR: dataDir, AUTH_MODE: 'dev' });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(message);
  });

  it('stops on bad configuration with one line per key, never the secret value, exit 2', async () => {
    const result = await runCli(['serve'], {
      PORT: 'abc',
      DATABASE_URL: 'mysql://root:hunter2-secret@db/prod',
      LOG_LEVEL: 'loud',
    });
    expect(result.code).toBe(2);
    expect(result.stderr.split('\n')).toEqual([
      'mcp-gateway: invalid configuration',
      '  PORT: must be a whole number from 0 to 65535',
      '  DATABASE_URL: must be a postgresql:// URL',
      '  LOG_LEVEL: must be one of: fatal, error, warn, info, debug, trace, silent',
      '',
    ]);
    expect(result.stderr + result.stdout).not.toContain('hunter2');
  });

  it('exits 1 with a clear message when a dependency is down at start', async () => {
    const result = await runCli(['serve', '--port', '0'], {
      DATA_DIR: dataDir,
      DATABASE_URL: POSTGRES_URL,
      REDIS_URL: 'redis://127.0.0.1:1',
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /^mcp-gateway: could not start: Redis at redis:\/\/127\.0\.0\.1:1 did not answer: connect ECONNREFUSED 127\.0\.0\.1:1\n/,
    );
    expect(result.stdout).not.toContain('retrying');
  });

  it("exits 1 when Redis has no database of the URL's number, rather than serve on db 0", async () => {
    const url = new URL(REDIS_URL);
    url.pathname = '/99';
    const serve = new ServeProcess(['--port', '0', '--host', '127.0.0.1'], {
      DATA_DIR: dataDir,
      DATABASE_URL: POSTGRES_URL,
      REDIS_URL: url.toString(),
    });
    const served = await serve.ready().then(
      () => true,
      () => false,
    );
    if (served) serve.signal('SIGTERM');
    expect(served).toBe(false);
    expect(await serve.exited).toBe(1);
    expect(serve.stderr).toBe(
      `mcp-gateway: could not start: Redis at ${url.protocol}//${url.host} refused the connection: ERR DB index is out of range\n`,
    );
    expect(serve.stdout).not.toContain('retrying');
  });

  it('exits 1 when the port is taken, closing what it opened', async () => {
    const squatter = net.createServer();
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    const { port } = squatter.address() as net.AddressInfo;
    try {
      const result = await runCli(['serve', '--host', '127.0.0.1', '--port', String(port)], {
        DATABASE_URL: POSTGRES_URL,
        REDIS_URL,
      });
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/^mcp-gateway: could not start: .*EADDRINUSE/);
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
  });

  it('exits 1 naming PostgreSQL when the database is unreachable', async () => {
    const result = await runCli(['migrate'], { DATABASE_URL: 'postgresql://postgres:pw-secret@127.0.0.1:1/test' });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      'mcp-gateway: migration failed: PostgreSQL at postgresql://127.0.0.1:1/test did not answer',
    );
    expect(result.stderr).not.toContain('pw-secret');
  });

  describe('migrate', () => {
    let scratch: Awaited<ReturnType<typeof createScratchDatabase>>;

    beforeAll(async () => {
      scratch = await createScratchDatabase();
    });

    afterAll(async () => {
      await scratch.drop();
    });

    it('refuses to serve --no-migrate on a database that lacks migrations, naming them, exit 1', async () => {
      const serve = new ServeProcess(['--port', '0', '--host', '127.0.0.1', '--no-migrate'], {
        DATABASE_URL: scratch.url,
      });
      // Without the check it would serve (and answer 500): stop it then, so the test fails instead of hanging.
      const served = serve.ready().then(
        () => true,
        () => false,
      );
      if (await Promise.race([served, serve.exited.then(() => false)])) serve.signal('SIGKILL');
      const result = { code: await serve.exited, stderr: serve.stderr };
      expect(result.code).toBe(1);
      expect(result.stderr).toBe(
        `mcp-gateway: could not start: the database at ${displayed(scratch.url)} lacks ${COMMITTED.length} ` +
          `migration(s) of this release: ${COMMITTED.join(', ')}. Run \`mcp-gateway migrate\` ` +
          '(serve --no-migrate applies none)\n',
      );
      // The schema is left alone.
      expect(await tableExists(scratch.url, '_prisma_migrations')).toBe(false);
    });

    it('applies pending migrations once, and then has nothing to do', async () => {
      const first = await runCli(['migrate'], { DATABASE_URL: scratch.url });
      expect(first.stderr).toBe('');
      expect(first.code).toBe(0);
      expect(first.stdout).toMatch(/^applied \d+ migration\(s\) to postgresql:\/\/127\.0\.0\.1:5432\/gw_test_/);
      const second = await runCli(['migrate'], { DATABASE_URL: scratch.url });
      expect(second.code).toBe(0);
      expect(second.stdout).toMatch(/^no pending migrations/);
      const client = new Client({ connectionString: scratch.url });
      await client.connect();
      try {
        const rows = await client.query<{ migration_name: string; finished_at: Date | null }>(
          'SELECT migration_name, finished_at FROM _prisma_migrations',
        );
        expect(rows.rows.length).toBeGreaterThan(0);
        expect(rows.rows.every((row) => row.finished_at !== null)).toBe(true);
        expect(new Set(rows.rows.map((row) => row.migration_name)).size).toBe(rows.rows.length);
      } finally {
        await client.end();
      }
    });

    it('serves --no-migrate on a migrated database, and on one a newer release migrated further', async () => {
      const serve = new ServeProcess(['--port', '0', '--host', '127.0.0.1', '--no-migrate'], {
        DATABASE_URL: scratch.url,
      });
      const url = await serve.ready();
      await request(url).get('/health/ready').expect(200);
      serve.signal('SIGTERM');
      expect(await serve.exited).toBe(0);
      expect(serve.logLines().some((line) => line.msg === 'database schema is up to date')).toBe(true);

      // A rolling upgrade: the migrate Job of the next release ran, and a replica of this one (re)starts.
      const newer = '29990101000000_next_release';
      const client = new Client({ connectionString: scratch.url });
      await client.connect();
      try {
        await client.query(
          `INSERT INTO _prisma_migrations (id, checksum, migration_name, finished_at, applied_steps_count)
           VALUES (gen_random_uuid()::text, 'x', $1, now(), 1)`,
          [newer],
        );
        const again = new ServeProcess(['--port', '0', '--host', '127.0.0.1', '--no-migrate'], {
          DATABASE_URL: scratch.url,
        });
        await request(await again.ready())
          .get('/health/ready')
          .expect(200);
        again.signal('SIGTERM');
        expect(await again.exited).toBe(0);
        expect(again.logLines().find((line) => line.msg === 'the database has migrations of a newer release')).toEqual(
          expect.objectContaining({ newer: [newer] }),
        );

        // A failed migration (recorded, never finished) stops the start as a pending one does.
        await client.query('UPDATE _prisma_migrations SET finished_at = NULL WHERE migration_name = $1', [
          COMMITTED.at(-1),
        ]);
        const failed = await runCli(['serve', '--port', '0', '--no-migrate'], { DATABASE_URL: scratch.url });
        expect(failed.code).toBe(1);
        expect(failed.stderr).toContain(
          `records as failed or in progress: ${COMMITTED.at(-1)}. Run \`mcp-gateway migrate\``,
        );
      } finally {
        await client.end();
      }
    });
  });

  it('fails migrate, exit 1, when its session dies waiting on the advisory lock, and a later migrate applies all', async () => {
    const fresh = await createScratchDatabase();
    // Another instance migrating: it holds the schema engine's lock.
    const holder = new Client({ connectionString: fresh.url });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1)', [PRISMA_MIGRATE_LOCK]);
      const migrating = runCli(['migrate'], { DATABASE_URL: fresh.url });
      const waiter = async (): Promise<number | undefined> => {
        const rows = await holder.query<{ pid: number }>(
          `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = $1 AND NOT granted`,
          [PRISMA_MIGRATE_LOCK],
        );
        return rows.rows[0]?.pid;
      };
      const pid = await eventually(async () => {
        const waiting = await waiter();
        if (waiting === undefined) throw new Error('migrate does not wait for the lock yet');
        return waiting;
      });
      // Its session ends (an administrator, a failover): the lock it waited for is no longer waited for.
      await holder.query('SELECT pg_terminate_backend($1)', [pid]);
      // Let go at once: a migrate that waited for the lock again on a new session would take it and succeed.
      await holder.query('SELECT pg_advisory_unlock($1)', [PRISMA_MIGRATE_LOCK]);
      const result = await migrating;
      expect(result.code).toBe(1);
      expect(result.stderr).toBe(
        `mcp-gateway: migration failed: Applying the migrations in ${MIGRATIONS_DIR} failed: ` +
          'FATAL: terminating connection due to administrator command\n',
      );
      const again = await runCli(['migrate'], { DATABASE_URL: fresh.url });
      expect(again).toMatchObject({ code: 0, stderr: '' });
      expect(again.stdout).toMatch(new RegExp(`^applied ${COMMITTED.length} migration\\(s\\)`));
    } finally {
      await holder.end();
      await fresh.drop();
    }
  });

  describe('a migration interrupted mid-way, and migrate --resolve-applied / --resolve-rolled-back', () => {
    const LAST = COMMITTED.at(-1)!;
    let fresh: Awaited<ReturnType<typeof createScratchDatabase>>;
    let client: Client;

    beforeAll(async () => {
      // These tests undo the last migration by hand (undoLast, lastApplied, and the lock its first statement waits on).
      if (!LAST.endsWith('_audit_partial_indexes')) throw new Error(`teach these tests to undo ${LAST}`);
      fresh = await createScratchDatabase();
      client = new Client({ connectionString: fresh.url });
      await client.connect();
    });

    afterAll(async () => {
      await client.end();
      await fresh.drop();
    });

    async function rows(): Promise<{ finished: boolean; rolledBack: boolean; checksum: string }[]> {
      const result = await client.query<{ finished: boolean; rolledBack: boolean; checksum: string }>(
        `SELECT finished_at IS NOT NULL AS finished, rolled_back_at IS NOT NULL AS "rolledBack", checksum
           FROM _prisma_migrations WHERE migration_name = $1 ORDER BY started_at`,
        [LAST],
      );
      return result.rows;
    }

    /** Whether the last migration's change (the partial (decision, at) index) is in the schema. */
    async function lastApplied(): Promise<boolean> {
      const result = await client.query(
        "SELECT 1 FROM pg_indexes WHERE indexname = 'audit_records_decision_at_idx' AND indexdef LIKE '%WHERE%'",
      );
      return result.rows.length === 1;
    }

    /** Puts back what the last migration replaces (the full (decision, at) and (outcome, at) indexes). */
    async function undoLast(): Promise<void> {
      await client.query('DROP INDEX audit_records_decision_at_idx, audit_records_outcome_at_idx');
      await client.query('CREATE INDEX audit_records_decision_at_idx ON audit_records (decision, at)');
      await client.query('CREATE INDEX audit_records_outcome_at_idx ON audit_records (outcome, at)');
    }

    /** Undoes the last migration, then has `run` apply it and `interrupt` it mid-way (by default, ends its session). */
    async function interruptLast(
      run: () => Promise<unknown>,
      interrupt = async (backend: number) => {
        await client.query('SELECT pg_terminate_backend($1)', [backend]);
      },
    ): Promise<unknown> {
      await undoLast();
      await client.query('DELETE FROM _prisma_migrations WHERE migration_name = $1', [LAST]);
      const holder = new Client({ connectionString: fresh.url });
      await holder.connect();
      try {
        // Its first DROP INDEX waits for this lock: the migration is in the middle of its script.
        await holder.query('BEGIN');
        await holder.query('LOCK TABLE audit_records IN ACCESS SHARE MODE');
        const outcome = run();
        const pid = await eventually(async () => {
          const waiting = await client.query<{ pid: number }>(
            "SELECT pid FROM pg_locks WHERE locktype = 'relation' AND relation = 'audit_records'::regclass AND NOT granted",
          );
          expect(waiting.rows).toHaveLength(1);
          return waiting.rows[0]!.pid;
        });
        await interrupt(pid);
        await holder.query('ROLLBACK');
        return await outcome;
      } finally {
        await holder.end();
      }
    }

    it('refuses to resolve a migration that is pending, exit 1', async () => {
      const result = await runCli(['migrate', '--resolve-applied', LAST], { DATABASE_URL: fresh.url });
      expect(result).toMatchObject({
        code: 1,
        stderr: `mcp-gateway: resolving the migration failed: migration ${LAST} is not recorded as failed (it is pending): nothing to resolve\n`,
      });
      expect(await tableExists(fresh.url, '_prisma_migrations')).toBe(false);
      expect((await runCli(['migrate'], { DATABASE_URL: fresh.url })).code).toBe(0);
    });

    it('migrate whose session dies mid-migration fails, and the next migrate rolls it back and applies it', async () => {
      const failed = (await interruptLast(() => runCli(['migrate'], { DATABASE_URL: fresh.url }))) as CliResult;
      expect(failed).toMatchObject({
        code: 1,
        stderr:
          `mcp-gateway: migration failed: Migration ${LAST} failed: Error querying the database: ` +
          'FATAL: terminating connection due to administrator command\n',
      });
      expect(await rows()).toEqual([{ finished: false, rolledBack: false, checksum: expect.any(String) }]);
      expect(await lastApplied()).toBe(false);

      const again = await runCli(['migrate'], { DATABASE_URL: fresh.url });
      expect(again).toMatchObject({ code: 0, stderr: '' });
      expect(again.stdout).toBe(
        `rolled back ${LAST}: an interrupted run left it unfinished, none of it applied; applying it again\n` +
          `applied 1 migration(s) to ${displayed(fresh.url)}:\n  ${LAST}\n`,
      );
      expect(await rows()).toEqual([
        expect.objectContaining({ finished: false, rolledBack: true }),
        expect.objectContaining({ finished: true, rolledBack: false }),
      ]);
      expect(await lastApplied()).toBe(true);
    });

    it('serve whose migrations were interrupted rolls the migration back and applies it at start, in one log line', async () => {
      const failed = (await interruptLast(async () => {
        const serve = new ServeProcess(['--port', '0', '--host', '127.0.0.1'], { DATABASE_URL: fresh.url });
        return { code: await serve.exited, stderr: serve.stderr };
      })) as { code: number; stderr: string };
      expect(failed.code).toBe(1);
      expect(failed.stderr).toContain(`could not start: Migration ${LAST} failed`);

      const serve = new ServeProcess(['--port', '0', '--host', '127.0.0.1'], { DATABASE_URL: fresh.url });
      try {
        await request(await serve.ready())
          .get('/health/ready')
          .expect(200);
        expect(serve.logLines().filter((line) => 'rolledBack' in line)).toEqual([
          expect.objectContaining({
            level: 40,
            rolledBack: [LAST],
            msg: 'an interrupted run had left these migrations unfinished, none of them applied: recorded as rolled back, applied again',
          }),
        ]);
        expect(await lastApplied()).toBe(true);
      } finally {
        serve.signal('SIGTERM');
        await serve.exited;
      }
    });

    it('serve killed mid-migration leaves the migration recorded as what it is: the next migrate goes on', async () => {
      let serve: ServeProcess | undefined;
      let backend: number | undefined;
      await interruptLast(
        async () => {
          serve = new ServeProcess(['--port', '0', '--host', '127.0.0.1'], { DATABASE_URL: fresh.url });
          return serve.exited;
        },
        async (pid) => {
          backend = pid;
          serve!.signal('SIGKILL');
          await serve!.exited;
        },
      );
      // Its session goes on once the lock is free, alone: it commits (or fails to) without its client.
      await eventually(async () => {
        const left = await client.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [backend]);
        expect(left.rows).toEqual([]);
      });
      // Committed, it was recorded finished in the same transaction; rolled back, it is applied again.
      const next = await runCli(['migrate'], { DATABASE_URL: fresh.url });
      expect(next).toMatchObject({ code: 0, stderr: '' });
      expect(await lastApplied()).toBe(true);
      expect((await rows()).filter((row) => !row.rolledBack)).toEqual([expect.objectContaining({ finished: true })]);
    });

    it('refuses a failure it cannot prove applied nothing, naming the commands; --resolve-applied resolves it', async () => {
      // An earlier release's record of a migration that committed and was never recorded finished.
      await client.query('DELETE FROM _prisma_migrations WHERE migration_name = $1 AND rolled_back_at IS NOT NULL', [
        LAST,
      ]);
      await client.query('UPDATE _prisma_migrations SET finished_at = NULL, logs = NULL WHERE migration_name = $1', [
        LAST,
      ]);
      const refused = await runCli(['migrate'], { DATABASE_URL: fresh.url });
      expect(refused).toMatchObject({
        code: 1,
        stderr:
          `mcp-gateway: migration failed: migration ${LAST} was started and never finished, and whether any of it ` +
          `was applied is not known: check the database, then run \`mcp-gateway migrate --resolve-applied ${LAST}\` ` +
          `if all of it is applied, or \`mcp-gateway migrate --resolve-rolled-back ${LAST}\` if none of it is\n`,
      });

      const resolved = await runCli(['migrate', '--resolve-applied', LAST], { DATABASE_URL: fresh.url });
      expect(resolved).toMatchObject({
        code: 0,
        stderr: '',
        stdout: `recorded migration ${LAST} as applied in ${displayed(fresh.url)}\n`,
      });
      const checksum = createHash('sha256')
        .update(readFileSync(path.join(MIGRATIONS_DIR, LAST, 'migration.sql')))
        .digest('hex');
      expect(await rows()).toEqual([
        { finished: false, rolledBack: true, checksum },
        { finished: true, rolledBack: false, checksum },
      ]);
      expect(await runCli(['migrate'], { DATABASE_URL: fresh.url })).toMatchObject({
        code: 0,
        stdout: expect.stringMatching(/^no pending migrations/),
      });
      // Not failed any more: nothing to resolve, either way.
      for (const flag of ['--resolve-applied', '--resolve-rolled-back']) {
        expect(await runCli(['migrate', flag, LAST], { DATABASE_URL: fresh.url })).toMatchObject({
          code: 1,
          stderr: `mcp-gateway: resolving the migration failed: migration ${LAST} is recorded as applied, not failed: nothing to resolve\n`,
        });
      }
    });

    it('--resolve-rolled-back records a failed migration rolled back, and the next migrate applies it', async () => {
      // The operator found none of it applied.
      await client.query('DELETE FROM _prisma_migrations WHERE migration_name = $1', [LAST]);
      await undoLast();
      await client.query(
        `INSERT INTO _prisma_migrations (id, checksum, migration_name) VALUES (gen_random_uuid()::text, 'x', $1)`,
        [LAST],
      );
      // Not while another run holds the migrations' lock: it may be applying that migration.
      const holder = new Client({ connectionString: fresh.url });
      await holder.connect();
      try {
        await holder.query('SELECT pg_advisory_lock($1)', [PRISMA_MIGRATE_LOCK]);
        expect(await runCli(['migrate', '--resolve-rolled-back', LAST], { DATABASE_URL: fresh.url })).toMatchObject({
          code: 1,
          stderr:
            "mcp-gateway: resolving the migration failed: another run of migrate holds the migrations' lock " +
            `(it may be applying ${LAST}): try again once it is over\n`,
        });
      } finally {
        await holder.end();
      }
      expect(await rows()).toEqual([{ finished: false, rolledBack: false, checksum: 'x' }]);

      const resolved = await runCli(['migrate', '--resolve-rolled-back', LAST], { DATABASE_URL: fresh.url });
      expect(resolved).toMatchObject({
        code: 0,
        stdout: `recorded migration ${LAST} as rolled back in ${displayed(fresh.url)}: the next migrate applies it again\n`,
      });
      const applied = await runCli(['migrate'], { DATABASE_URL: fresh.url });
      expect(applied).toMatchObject({
        code: 0,
        stdout: `applied 1 migration(s) to ${displayed(fresh.url)}:\n  ${LAST}\n`,
      });
      expect(await lastApplied()).toBe(true);
    });

    it.each([
      [
        ['--resolve-applied', '20990101000000_not_ours'],
        'error: 20990101000000_not_ours is not a migration of this release',
      ],
      [['--resolve-rolled-back', '../../etc/passwd'], "option '--resolve-rolled-back <migration>' must be the name"],
      [['--resolve-applied', `${LAST}\u001b[2J`], "option '--resolve-applied <migration>' must be the name"],
      [['--resolve-applied', `${LAST}'; DROP TABLE servers; --`], "option '--resolve-applied <migration>' must be"],
      [['--resolve-applied', ''], "option '--resolve-applied <migration>' must be the name"],
      [['--resolve-applied', 'x'.repeat(256)], "option '--resolve-applied <migration>' must be the name"],
      [['--resolve-applied', LAST, '--resolve-rolled-back', LAST], 'cannot be used with option'],
      [['--resolve-applied'], "option '--resolve-applied <migration>' argument missing"],
    ])('refuses migrate %j, exit 2, recording nothing and quoting no malformed name', async (args, message) => {
      const before = await client.query('SELECT * FROM _prisma_migrations ORDER BY id');
      const result = await runCli(['migrate', ...args], { DATABASE_URL: fresh.url });
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(message);
      expect(result.stderr).not.toContain('\u001b');
      expect(result.stderr).not.toContain('DROP TABLE');
      expect(result.stderr).not.toContain('passwd');
      expect(result.stdout).toBe('');
      expect((await client.query('SELECT * FROM _prisma_migrations ORDER BY id')).rows).toEqual(before.rows);
    });
  });

  it('applies migrations once when two migrate processes race on a fresh database (advisory lock)', async () => {
    const fresh = await createScratchDatabase();
    try {
      const results = await Promise.all([
        runCli(['migrate'], { DATABASE_URL: fresh.url }),
        runCli(['migrate'], { DATABASE_URL: fresh.url }),
      ]);
      expect(results.map((result) => [result.code, result.stderr])).toEqual([
        [0, ''],
        [0, ''],
      ]);
      // One applied them all while the other waited for the lock, then found nothing to do.
      const outputs = results.map((result) => result.stdout.split(' ')[0]).sort();
      expect(outputs).toEqual(['applied', 'no']);
      const committed = readdirSync(MIGRATIONS_DIR, { withFileTypes: true })
        .filter((entry) => entry.isDirectory())
        .map((entry) => entry.name)
        .sort();
      const client = new Client({ connectionString: fresh.url });
      await client.connect();
      try {
        const rows = await client.query<{ migration_name: string }>(
          'SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NOT NULL ORDER BY migration_name',
        );
        expect(rows.rows.map((row) => row.migration_name)).toEqual(committed);
        const all = await client.query<{ count: string }>('SELECT count(*) FROM _prisma_migrations');
        expect(Number(all.rows[0]!.count)).toBe(committed.length);
      } finally {
        await client.end();
      }
    } finally {
      await fresh.drop();
    }
  });

  it('serves on embedded defaults, keeps data across restarts and exits 0 on SIGTERM', async () => {
    const first = new ServeProcess(['--port', '0', '--host', '127.0.0.1'], { DATA_DIR: dataDir });
    const url = await first.ready();
    const ready = await request(url).get('/health/ready').expect(200);
    expect(ready.body.checks.database.kind).toBe('embedded');
    expect(first.logLines().some((line) => String(line.msg).includes('REDIS_URL is not set'))).toBe(true);

    // A second process on the same embedded database would corrupt it: it is refused.
    const rival = await runCli(['serve', '--port', '0'], { DATA_DIR: dataDir });
    expect(rival.code).toBe(1);
    expect(rival.stderr).toMatch(/is in use by another process \(pid \d+\)/);
    await request(url).get('/health/ready').expect(200);

    first.signal('SIGTERM');
    expect(await first.exited).toBe(0);
    expect(first.logLines().map((line) => line.msg)).toEqual(expect.arrayContaining(['signal received', 'stopped']));

    // The second start finds the schema already applied in the same directory.
    const second = new ServeProcess(['--port', '0', '--host', '127.0.0.1'], { DATA_DIR: dataDir });
    const again = await second.ready();
    await request(again).get('/health/ready').expect(200);
    expect(second.logLines().some((line) => line.msg === 'database schema is up to date')).toBe(true);
    second.signal('SIGINT');
    expect(await second.exited).toBe(0);
  });

  it('spools the queued audit records when a second signal cuts the drain short, exit 1', async () => {
    const ownDir = mkdtempSync(path.join(tmpdir(), 'mcp-gateway-cli-forced-'));
    // Nothing is written before the signals: no flush tick, no full batch. The drain waits for the held request.
    const serve = new ServeProcess(['--port', '0', '--host', '127.0.0.1'], {
      DATA_DIR: ownDir,
      AUTH_MODE: 'dev',
      AUDIT_FLUSH_INTERVAL_MS: '60000',
      AUDIT_BATCH_SIZE: '10000',
      SHUTDOWN_GRACE_MS: '600000',
    });
    const held = new net.Socket();
    try {
      const url = await serve.ready();
      const requestIds = await refusedRequests(url, 'forced');
      // A request whose body never comes: "100 Continue" says the gateway is answering it, so draining waits.
      const { port } = new URL(url);
      await new Promise<void>((resolve, reject) => {
        held.once('error', reject);
        held.on('data', (chunk: Buffer) => {
          if (chunk.toString().startsWith('HTTP/1.1 100')) resolve();
        });
        held.connect(Number(port), '127.0.0.1', () =>
          held.write(
            'POST /api/v1/servers HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' +
              'Content-Length: 100\r\nExpect: 100-continue\r\n\r\n',
          ),
        );
      });
      serve.signal('SIGTERM');
      await waitUntil(
        () => serve.logLines().some((line) => line.msg === 'shutting down: draining requests'),
        'the gateway drains',
      );
      serve.signal('SIGTERM');
      expect(await serve.exited).toBe(1);

      expect(spooledRequestIds(ownDir)).toEqual(requestIds);
    } finally {
      held.destroy();
      serve.signal('SIGKILL');
      await serve.exited;
      rmSync(ownDir, { recursive: true, force: true });
    }
  });

  it('exits 1 by itself when still draining after SHUTDOWN_GRACE_MS and AUDIT_WRITE_TIMEOUT_MS, its queued audit records spooled', async () => {
    const database = await createScratchDatabase();
    const { host, port } = hostPortOf(database.url);
    const stalling = new StallableProxy(host, port);
    await stalling.start();
    const ownDir = mkdtempSync(path.join(tmpdir(), 'mcp-gateway-cli-overdue-'));
    // Nothing is written before the signal (no flush tick, no full batch): the drain's last write meets the stall.
    // A statement left unanswered keeps its connection for DATABASE_QUERY_TIMEOUT_MS (and 1 s), and closing the
    // pool waits for it: the drain hangs for ten minutes, as on a PostgreSQL that stopped answering.
    const serve = new ServeProcess(['--port', '0', '--host', '127.0.0.1', '--no-migrate'], {
      DATA_DIR: ownDir,
      AUTH_MODE: 'dev',
      DATABASE_URL: withHostPort(database.url, stalling.port),
      DATABASE_QUERY_TIMEOUT_MS: '600000',
      AUDIT_FLUSH_INTERVAL_MS: '60000',
      AUDIT_BATCH_SIZE: '10000',
      SHUTDOWN_GRACE_MS: '0',
      AUDIT_WRITE_TIMEOUT_MS: '100',
    });
    try {
      expect((await runCli(['migrate'], { DATABASE_URL: database.url })).code).toBe(0);
      const url = await serve.ready();
      const requestIds = await refusedRequests(url, 'overdue');
      stalling.stall();
      serve.signal('SIGTERM');
      expect(await serve.exited).toBe(1);

      const lines = serve.logLines();
      expect(lines.find((line) => String(line.msg).startsWith('still draining after'))).toMatchObject({
        level: 40,
        boundMs: 100,
      });
      expect(lines.some((line) => String(line.msg).startsWith('second signal'))).toBe(false);
      expect(lines.some((line) => line.msg === 'stopped')).toBe(false);
      expect(serve.stderr).toContain(
        'mcp-gateway: shutdown failed: still draining after SHUTDOWN_GRACE_MS plus AUDIT_WRITE_TIMEOUT_MS (100 ms): ' +
          'exiting without draining\n',
      );
      // The insert may have reached PostgreSQL (only its answer is held): a gateway replaying the spool stores
      // none twice. What matters here is that every record is in the spool.
      expect(spooledRequestIds(ownDir)).toEqual(requestIds);
    } finally {
      serve.signal('SIGKILL');
      await serve.exited;
      stalling.resume();
      await stalling.stop();
      await database.drop();
      rmSync(ownDir, { recursive: true, force: true });
    }
  });

  it('leaves MCP_GATEWAY_URL to the servers commands: serve starts with a malformed one, servers list exits 2 naming it', async () => {
    const serve = new ServeProcess(['--port', '0', '--host', '127.0.0.1'], {
      DATABASE_URL: POSTGRES_URL,
      MCP_GATEWAY_URL: 'garbage',
      SHUTDOWN_GRACE_MS: '2000',
    });
    try {
      const url = await serve.ready();
      await request(url).get('/health/ready').expect(200);
      const listed = await runCli(['servers', 'list'], { MCP_GATEWAY_URL: 'garbage' });
      expect(listed).toMatchObject({
        code: 2,
        stderr:
          'mcp-gateway: invalid configuration\n  MCP_GATEWAY_URL: must be an http(s) URL without a user name or password\n',
      });
      serve.signal('SIGTERM');
      expect(await serve.exited).toBe(0);
    } finally {
      serve.signal('SIGKILL');
      await serve.exited;
    }
  });

  it('serves on PostgreSQL and Redis when configured, flags over environment', async () => {
    const serve = new ServeProcess(['--port', '0', '--host', '127.0.0.1'], {
      PORT: '1',
      DATABASE_URL: POSTGRES_URL,
      REDIS_URL,
      SHUTDOWN_GRACE_MS: '2000',
    });
    const url = await serve.ready();
    expect(new URL(url).port).not.toBe('1');
    const ready = await request(url).get('/health/ready').expect(200);
    expect(ready.body.checks).toMatchObject({ database: { kind: 'postgres' }, redis: { kind: 'redis' } });
    serve.signal('SIGTERM');
    expect(await serve.exited).toBe(0);
  });
});

/** A database URL as the gateway shows it: without credentials or parameters. */
/** 25 MCP requests refused for want of a token, each audited: their request ids, in order. */
async function refusedRequests(url: string, prefix: string): Promise<string[]> {
  const requestIds = Array.from({ length: 25 }, (_, i) => `${prefix}-${i}-${Date.now()}`);
  for (const [i, requestId] of requestIds.entries()) {
    await request(url)
      .post('/mcp')
      .set('x-request-id', requestId)
      .send({ jsonrpc: '2.0', id: i, method: 'tools/list' })
      .expect(401);
  }
  return requestIds;
}

/** The request ids of the audit records spooled under `dataDir`. */
function spooledRequestIds(dataDir: string): string[] {
  const spoolDir = path.join(dataDir, 'audit-spool');
  return readdirSync(spoolDir)
    .filter((name) => name.endsWith('.ndjson'))
    .flatMap((name) => readFileSync(path.join(spoolDir, name), 'utf8').trim().split('\n'))
    .map((line) => (JSON.parse(line) as { requestId: string }).requestId);
}

function displayed(url: string): string {
  const { protocol, host, pathname } = new URL(url);
  return `${protocol}//${host}${pathname}`;
}

async function tableExists(url: string, table: string): Promise<boolean> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    const result = await client.query<{ exists: boolean }>('SELECT to_regclass($1) IS NOT NULL AS exists', [table]);
    return result.rows[0]?.exists ?? false;
  } finally {
    await client.end();
  }
}
