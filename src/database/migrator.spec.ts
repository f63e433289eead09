import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PrismaPg } from '@prisma/adapter-pg';
import { Client, Pool } from 'pg';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import { eventually, sleep } from '../../test/support/eventually';
import { createScratchDatabase } from '../../test/support/services';
import { createLogger } from '../logging/logger';
import { ANSWER_GRACE_MS, openDatabase } from './database';
import { applyMigrations, createMigration, type SqlMigrationAwareDriverAdapterFactory } from './migrator';
import { PGLITE_EXTENSIONS } from './pglite';

const ROOT = path.resolve(__dirname, '..', '..');
const MIGRATIONS_DIR = path.join(ROOT, 'prisma', 'migrations');
const SCHEMA_PATH = path.join(ROOT, 'prisma', 'schema.prisma');
const COMMITTED = fs
  .readdirSync(MIGRATIONS_DIR, { withFileTypes: true })
  .filter((entry) => entry.isDirectory())
  .map((entry) => entry.name)
  .sort();

interface MigrationRow {
  migration_name: string;
  checksum: string;
  finished_at: Date | null;
  rolled_back_at: Date | null;
  applied_steps_count: number;
}

/** One database under test, behind the adapter the app would use. */
interface Target {
  factory(): SqlMigrationAwareDriverAdapterFactory;
  query<T>(sql: string): Promise<T[]>;
}

const FUNCTION_MIGRATION = '29990101000000_function';
/** Semicolons inside a dollar-quoted body: the script must reach the database whole. */
const FUNCTION_SQL = `CREATE FUNCTION touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END;
$$;
`;
const BROKEN_MIGRATION = '29990102000000_broken';

let tmp: string;
/** The committed migrations plus FUNCTION_MIGRATION. */
let withFunctionDir: string;
/** withFunctionDir plus a migration with bad SQL after a good statement. */
let brokenDir: string;

function copyMigrations(to: string, extra: Record<string, string>): string {
  fs.cpSync(MIGRATIONS_DIR, to, { recursive: true });
  for (const [name, sql] of Object.entries(extra)) {
    fs.mkdirSync(path.join(to, name));
    fs.writeFileSync(path.join(to, name, 'migration.sql'), sql);
  }
  return to;
}

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'migrator-spec-'));
  withFunctionDir = copyMigrations(path.join(tmp, 'with-function'), { [FUNCTION_MIGRATION]: FUNCTION_SQL });
  brokenDir = copyMigrations(path.join(tmp, 'broken'), {
    [FUNCTION_MIGRATION]: FUNCTION_SQL,
    [BROKEN_MIGRATION]: 'CREATE TABLE half_done (id int);\nCREATE TABLE oops (;\n',
  });
});

afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

it('starts with an initial migration, produced by createMigration', () => {
  expect(COMMITTED[0]).toMatch(/^\d{14}_init$/);
  for (const migration of COMMITTED) expect(migration).toMatch(/^\d{14}_[a-z0-9_]+$/);
  expect(fs.readFileSync(path.join(MIGRATIONS_DIR, 'migration_lock.toml'), 'utf8')).toContain(
    'provider = "postgresql"',
  );
});

/** The same behaviour is expected from both databases the gateway supports. */
function describeApplying(name: string, open: () => Promise<Target & { close(): Promise<void> }>) {
  describe(`applyMigrations on ${name}`, () => {
    let target: Target & { close(): Promise<void> };

    beforeAll(async () => {
      target = await open();
    });

    afterAll(async () => {
      await target?.close();
    });

    it('applies the committed migrations once, then nothing', async () => {
      await expect(applyMigrations(target.factory(), MIGRATIONS_DIR)).resolves.toEqual({
        applied: COMMITTED,
        rolledBack: [],
      });
      await expect(applyMigrations(target.factory(), MIGRATIONS_DIR)).resolves.toEqual({ applied: [], rolledBack: [] });

      const tables = await target.query<{ tablename: string }>(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename",
      );
      expect(tables.map((row) => row.tablename)).toEqual(
        expect.arrayContaining(['_prisma_migrations', 'servers', 'server_versions']),
      );
    });

    it('records them in _prisma_migrations as the Prisma CLI does', async () => {
      const rows = await target.query<MigrationRow>(
        'SELECT migration_name, checksum, finished_at, rolled_back_at, applied_steps_count FROM _prisma_migrations ORDER BY migration_name',
      );
      expect(rows).toEqual(
        COMMITTED.map((migration) => ({
          migration_name: migration,
          // The CLI's checksum: SHA-256 of migration.sql, hex.
          checksum: createHash('sha256')
            .update(fs.readFileSync(path.join(MIGRATIONS_DIR, migration, 'migration.sql')))
            .digest('hex'),
          finished_at: expect.any(Date),
          rolled_back_at: null,
          applied_steps_count: 1,
        })),
      );
    });

    it('creates pg_trgm, its trigram indexes and the byte-order search index', async () => {
      const extensions = await target.query<{ extname: string }>(
        "SELECT extname FROM pg_extension WHERE extname = 'pg_trgm'",
      );
      expect(extensions).toEqual([{ extname: 'pg_trgm' }]);
      const indexes = await target.query<{ indexname: string; indexdef: string }>(
        "SELECT indexname, indexdef FROM pg_indexes WHERE indexname LIKE '%trgm_idx' OR indexname LIKE '%search_order_idx' ORDER BY indexname",
      );
      expect(indexes.map((row) => row.indexname)).toEqual([
        'server_items_search_order_idx',
        'server_items_search_text_trgm_idx',
        'servers_description_trgm_idx',
        'servers_name_trgm_idx',
        'servers_title_trgm_idx',
      ]);
      const order = indexes.find((row) => row.indexname === 'server_items_search_order_idx');
      expect(order?.indexdef).toContain('(kind, gateway_name COLLATE "C", server_id, name COLLATE "C")');
      // The operator class answers an ILIKE substring test (the planner is kept off a sequential scan).
      await target.query('SET enable_seqscan = off');
      try {
        const plan = await target.query<{ 'QUERY PLAN': string }>(
          "EXPLAIN SELECT id FROM servers WHERE name ILIKE '%weather%'",
        );
        expect(plan.map((row) => row['QUERY PLAN']).join('\n')).toContain('servers_name_trgm_idx');
      } finally {
        await target.query('RESET enable_seqscan');
      }
    });

    it("indexes the audit trail's decisions and outcomes but the common ones, and a rarer one's list walks its index", async () => {
      const indexes = await target.query<{ indexname: string; indexdef: string }>(
        "SELECT indexname, indexdef FROM pg_indexes WHERE indexname IN ('audit_records_decision_at_idx', 'audit_records_outcome_at_idx') ORDER BY indexname",
      );
      expect(indexes.map((row) => row.indexdef)).toEqual([
        expect.stringMatching(/\(decision, at\) WHERE \(decision <> 'allowed'::text\)$/),
        expect.stringMatching(/\(outcome, at\) WHERE \(outcome <> 'ok'::text\)$/),
      ]);
      await target.query('SET enable_seqscan = off');
      try {
        for (const [where, index] of [
          ["decision = 'denied'", 'audit_records_decision_at_idx'],
          ["outcome = 'timeout'", 'audit_records_outcome_at_idx'],
        ]) {
          const plan = await target.query<{ 'QUERY PLAN': string }>(
            `EXPLAIN SELECT id FROM audit_records WHERE ${where} ORDER BY at DESC LIMIT 50`,
          );
          expect(plan.map((row) => row['QUERY PLAN']).join('\n')).toContain(index);
        }
      } finally {
        await target.query('RESET enable_seqscan');
      }
    });

    it('generates server_items.search_text: name, title and description, lower-cased, newline-separated', async () => {
      const [server] = await target.query<{ id: string }>(
        `INSERT INTO servers (id, name, slug, url, updated_at)
         VALUES (gen_random_uuid(), 'io.test/generated', 'generated', 'http://127.0.0.1:9/', now()) RETURNING id`,
      );
      await target.query(
        `INSERT INTO server_items (server_id, kind, name, gateway_name, title, description, definition, fingerprint, position)
         VALUES ('${server?.id}', 'tool', 'Get_Ticket', 'generated__Get_Ticket', 'ÜBER', NULL, '{}', 'fp', 0)`,
      );
      await expect(
        target.query("SELECT search_text FROM server_items WHERE gateway_name = 'generated__Get_Ticket'"),
      ).resolves.toEqual([{ search_text: expect.stringMatching(/^get_ticket\n(über|ÜBER)\n$/) }]);
      await target.query(`UPDATE server_items SET description = 'A Ticket' WHERE server_id = '${server?.id}'`);
      await expect(
        target.query("SELECT search_text FROM server_items WHERE gateway_name = 'generated__Get_Ticket'"),
      ).resolves.toEqual([{ search_text: expect.stringMatching(/^get_ticket\n(über|ÜBER)\na ticket$/) }]);
      await target.query(`DELETE FROM servers WHERE id = '${server?.id}'`);
      // Its operator class answers the search's `LIKE lower('%q%')`.
      await target.query('SET enable_seqscan = off');
      try {
        const plan = await target.query<{ 'QUERY PLAN': string }>(
          "EXPLAIN SELECT name FROM server_items WHERE search_text LIKE lower('%Weather%')",
        );
        expect(plan.map((row) => row['QUERY PLAN']).join('\n')).toContain('server_items_search_text_trgm_idx');
      } finally {
        await target.query('RESET enable_seqscan');
      }
    });

    it('sends each script whole (semicolons inside a function body)', async () => {
      await expect(applyMigrations(target.factory(), withFunctionDir)).resolves.toEqual({
        applied: [FUNCTION_MIGRATION],
        rolledBack: [],
      });
      expect(await target.query("SELECT 1 FROM pg_proc WHERE proname = 'touch_updated_at'")).toHaveLength(1);
    });

    it('rejects a migration with bad SQL, naming it and the database error, and applies none of it', async () => {
      await expect(applyMigrations(target.factory(), brokenDir)).rejects.toThrow(
        new RegExp(`^Migration ${BROKEN_MIGRATION} failed: .*syntax error`),
      );

      const rows = await target.query<MigrationRow>(
        `SELECT migration_name, finished_at, rolled_back_at FROM _prisma_migrations WHERE migration_name = '${BROKEN_MIGRATION}'`,
      );
      // Failed, as `migrate deploy` records it.
      expect(rows).toEqual([{ migration_name: BROKEN_MIGRATION, finished_at: null, rolled_back_at: null }]);
      expect(await target.query("SELECT 1 FROM pg_tables WHERE tablename = 'half_done'")).toEqual([]);

      // It ran in one transaction, so none of it was applied: a later run records it rolled back and tries again.
      await expect(applyMigrations(target.factory(), brokenDir)).rejects.toThrow(
        new RegExp(`^Migration ${BROKEN_MIGRATION} failed: .*syntax error`),
      );
      const again = await target.query<MigrationRow>(
        `SELECT finished_at, rolled_back_at FROM _prisma_migrations WHERE migration_name = '${BROKEN_MIGRATION}' ORDER BY started_at`,
      );
      expect(again).toEqual([
        { finished_at: null, rolled_back_at: expect.any(Date) },
        { finished_at: null, rolled_back_at: null },
      ]);
    });

    it('leaves a failed migration that controls its own transactions to the operator, naming the commands', async () => {
      const dir = copyMigrations(path.join(tmp, `own-transactions-${name.replace(/\W/g, '')}`), {
        [FUNCTION_MIGRATION]: FUNCTION_SQL,
        // Parsed whole before it runs: the error must be one of running, after the COMMIT.
        [BROKEN_MIGRATION]: 'CREATE TABLE committed_half (id int);\nCOMMIT;\nCREATE TABLE committed_half (id int);\n',
      });
      await target.query(`DELETE FROM _prisma_migrations WHERE migration_name = '${BROKEN_MIGRATION}'`);
      await expect(applyMigrations(target.factory(), dir)).rejects.toThrow(/already exists/);
      // Its first half committed: a retry would apply it twice.
      expect(await target.query("SELECT 1 FROM pg_tables WHERE tablename = 'committed_half'")).toHaveLength(1);

      await expect(applyMigrations(target.factory(), dir)).rejects.toThrow(
        `migration ${BROKEN_MIGRATION} was started and never finished, and whether any of it was applied is not ` +
          `known: check the database, then run \`mcp-gateway migrate --resolve-applied ${BROKEN_MIGRATION}\` if all ` +
          `of it is applied, or \`mcp-gateway migrate --resolve-rolled-back ${BROKEN_MIGRATION}\` if none of it is`,
      );
      const rows = await target.query<MigrationRow>(
        `SELECT finished_at, rolled_back_at FROM _prisma_migrations WHERE migration_name = '${BROKEN_MIGRATION}'`,
      );
      expect(rows).toEqual([{ finished_at: null, rolled_back_at: null }]);
    });
  });
}

describeApplying('PostgreSQL', async () => {
  const database = await createScratchDatabase();
  const client = new Client({ connectionString: database.url });
  await client.connect();
  return {
    factory: () => new PrismaPg({ connectionString: database.url }),
    query: async <T>(sql: string) => (await client.query(sql)).rows as T[],
    close: async () => {
      await client.end();
      await database.drop();
    },
  };
});

describeApplying('embedded PGlite (file-backed)', async () => {
  const pglite = await PGlite.create(path.join(tmp, 'pglite'), { extensions: PGLITE_EXTENSIONS });
  return {
    factory: () => new PrismaPGlite(pglite),
    query: async <T>(sql: string) => (await pglite.query<T>(sql)).rows,
    close: () => pglite.close(),
  };
});

describe('applyMigrations on PostgreSQL through pools shared with the app', () => {
  let database: Awaited<ReturnType<typeof createScratchDatabase>>;
  let pools: Pool[];

  beforeAll(async () => {
    database = await createScratchDatabase();
    // One pool per "process", left open as the app leaves its own.
    pools = [1, 2, 3].map(() => new Pool({ connectionString: database.url }));
    // As the app's pool does (src/database/database.ts): an idle connection ended by the server is no crash.
    for (const pool of pools) pool.on('error', () => undefined);
  });

  afterAll(async () => {
    await Promise.all(pools.map((pool) => pool.end()));
    await database.drop();
  });

  it('applies each migration exactly once when three processes start together', async () => {
    // The engine serializes them with a PostgreSQL advisory lock.
    const results = await Promise.all(pools.map((pool) => applyMigrations(new PrismaPg(pool), MIGRATIONS_DIR)));

    expect(results.flatMap((result) => result.applied).sort()).toEqual(COMMITTED);
    const { rows } = await pools[0]!.query<{ migration_name: string }>(
      'SELECT migration_name FROM _prisma_migrations ORDER BY migration_name',
    );
    expect(rows.map((row) => row.migration_name)).toEqual(COMMITTED);
  });

  it('answers an up-to-date database without waiting for the lock another instance holds', async () => {
    // The engine's own lock: the engine would wait for it.
    const holder = await pools[2]!.connect();
    try {
      await holder.query('SELECT pg_advisory_lock(72707369)');
      await expect(applyMigrations(new PrismaPg(pools[0]!), MIGRATIONS_DIR)).resolves.toEqual({
        applied: [],
        rolledBack: [],
      });
    } finally {
      await holder.query('SELECT pg_advisory_unlock(72707369)');
      holder.release();
    }
  });

  it('leaves the database to the engine when a recorded checksum differs from the file', async () => {
    const [first] = COMMITTED;
    await pools[0]!.query(`UPDATE _prisma_migrations SET checksum = 'edited' WHERE migration_name = $1`, [first]);
    const holder = await pools[2]!.connect();
    try {
      await holder.query('SELECT pg_advisory_lock(72707369)');
      let released = false;
      const outcome = applyMigrations(new PrismaPg(pools[0]!), MIGRATIONS_DIR).then((result) => ({ result, released }));
      await new Promise((resolve) => setTimeout(resolve, 500));
      released = true;
      await holder.query('SELECT pg_advisory_unlock(72707369)');
      // The engine waited for the lock: it was not skipped.
      await expect(outcome).resolves.toEqual({ result: { applied: [], rolledBack: [] }, released: true });
    } finally {
      await holder.query('SELECT pg_advisory_unlock_all()');
      holder.release();
      await pools[0]!.query(
        `UPDATE _prisma_migrations SET checksum = encode(sha256(convert_to($2, 'UTF8')), 'hex') WHERE migration_name = $1`,
        [first, fs.readFileSync(path.join(MIGRATIONS_DIR, first!, 'migration.sql'), 'utf8')],
      );
    }
  });

  it('waits for the lock past the bound on statements of the pool it is given (DATABASE_QUERY_TIMEOUT_MS)', async () => {
    const queryTimeoutMs = 100;
    const bounded = await openDatabase(
      { kind: 'postgres', url: database.url, poolSize: 2, queryTimeoutMs },
      createLogger({ logLevel: 'silent' }),
    );
    const [first] = COMMITTED;
    await pools[0]!.query(`UPDATE _prisma_migrations SET checksum = 'edited' WHERE migration_name = $1`, [first]);
    const holder = await pools[2]!.connect();
    try {
      await holder.query('SELECT pg_advisory_lock(72707369)');
      const outcome = applyMigrations(bounded.adapterFactory, MIGRATIONS_DIR);
      await eventually(async () => {
        const { rows } = await pools[1]!.query(
          `SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database
            WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = current_database()`,
        );
        expect(rows).toHaveLength(1);
      });
      // Both halves of the bound (the server's statement_timeout, the client's wait for an answer) run out meanwhile.
      await sleep(queryTimeoutMs + ANSWER_GRACE_MS + 500);
      await holder.query('SELECT pg_advisory_unlock(72707369)');
      await expect(outcome).resolves.toEqual({ applied: [], rolledBack: [] });
    } finally {
      await holder.query('SELECT pg_advisory_unlock_all()');
      holder.release();
      await pools[0]!.query(
        `UPDATE _prisma_migrations SET checksum = encode(sha256(convert_to($2, 'UTF8')), 'hex') WHERE migration_name = $1`,
        [first, fs.readFileSync(path.join(MIGRATIONS_DIR, first!, 'migration.sql'), 'utf8')],
      );
      await bounded.close();
    }
  });

  it('leaves no advisory lock held, and the pools usable', async () => {
    await applyMigrations(new PrismaPg(pools[0]!), MIGRATIONS_DIR);

    // Only this scratch database: other suites running alongside take their own.
    const { rows } = await pools[1]!.query(
      `SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database
        WHERE l.locktype = 'advisory' AND d.datname = current_database()`,
    );
    expect(rows).toEqual([]);
    await expect(pools[0]!.query('SELECT count(*) FROM servers')).resolves.toBeDefined();
  });
});

describe('a migration whose PostgreSQL session dies mid-way', () => {
  const INTERRUPTED = '29990103000000_interrupted';
  /** An advisory lock the test holds: the migration waits for it between its two statements. */
  const GATE = 4_172_001;
  let database: Awaited<ReturnType<typeof createScratchDatabase>>;
  let pool: Pool;
  let gate: Client;
  let dir: string;

  beforeAll(async () => {
    database = await createScratchDatabase();
    pool = new Pool({ connectionString: database.url });
    pool.on('error', () => undefined);
    gate = new Client({ connectionString: database.url });
    await gate.connect();
    dir = copyMigrations(path.join(tmp, 'interrupted'), {
      [INTERRUPTED]: `CREATE TABLE interrupted_first (id int);\nSELECT pg_advisory_xact_lock(${GATE});\nCREATE TABLE interrupted_second (id int);\n`,
    });
  });

  afterAll(async () => {
    await gate.end();
    await pool.end();
    await database.drop();
  });

  async function tables(): Promise<string[]> {
    const { rows } = await gate.query<{ tablename: string }>(
      "SELECT tablename FROM pg_tables WHERE tablename LIKE 'interrupted_%' ORDER BY tablename",
    );
    return rows.map((row) => row.tablename);
  }

  it('is recorded unfinished with none of it applied, and the next run records it rolled back and applies it', async () => {
    await gate.query('SELECT pg_advisory_lock($1)', [GATE]);
    const first = applyMigrations(new PrismaPg(pool), dir).then(
      () => 'applied',
      (error: Error) => error.message,
    );
    const pid = await eventually(async () => {
      const { rows } = await gate.query<{ pid: number }>(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = $1 AND NOT granted",
        [GATE],
      );
      expect(rows).toHaveLength(1);
      return rows[0]!.pid;
    });
    // A killed pod, a dropped connection, a restarted PostgreSQL: the session ends in the middle of the script.
    await gate.query('SELECT pg_terminate_backend($1)', [pid]);
    expect(await first).toBe(
      `Migration ${INTERRUPTED} failed: Error querying the database: FATAL: terminating connection due to administrator command`,
    );
    const { rows: failed } = await gate.query<MigrationRow>(
      'SELECT finished_at, rolled_back_at, applied_steps_count FROM _prisma_migrations WHERE migration_name = $1',
      [INTERRUPTED],
    );
    expect(failed).toEqual([{ finished_at: null, rolled_back_at: null, applied_steps_count: 0 }]);
    // One transaction: its first statement was rolled back with it.
    expect(await tables()).toEqual([]);

    await gate.query('SELECT pg_advisory_unlock($1)', [GATE]);
    await expect(applyMigrations(new PrismaPg(pool), dir)).resolves.toEqual({
      applied: [INTERRUPTED],
      rolledBack: [INTERRUPTED],
    });
    const { rows } = await gate.query<MigrationRow & { logs: string | null }>(
      'SELECT finished_at, rolled_back_at, applied_steps_count, logs FROM _prisma_migrations WHERE migration_name = $1 ORDER BY started_at',
      [INTERRUPTED],
    );
    expect(rows).toEqual([
      expect.objectContaining({ finished_at: null, rolled_back_at: expect.any(Date) }),
      { finished_at: expect.any(Date), rolled_back_at: null, applied_steps_count: 1, logs: null },
    ]);
    expect(await tables()).toEqual(['interrupted_first', 'interrupted_second']);
    await expect(applyMigrations(new PrismaPg(pool), dir)).resolves.toEqual({ applied: [], rolledBack: [] });
  });
});

describe('createMigration', () => {
  // An in-memory development database holding the committed migrations, as
  // `npm run migrate:create` uses.
  let dev: PGlite;
  let migrationsDir: string;

  beforeAll(async () => {
    dev = await PGlite.create({ extensions: PGLITE_EXTENSIONS });
    await applyMigrations(new PrismaPGlite(dev), MIGRATIONS_DIR);
  });

  beforeEach(() => {
    migrationsDir = fs.mkdtempSync(path.join(tmp, 'migrations-'));
    fs.cpSync(MIGRATIONS_DIR, migrationsDir, { recursive: true });
  });

  afterAll(async () => {
    await dev?.close();
  });

  it('returns null and writes nothing when the schema matches the migrations', async () => {
    await expect(
      createMigration({
        name: 'nothing',
        schemaPath: SCHEMA_PATH,
        migrationsDir,
        adapterFactory: new PrismaPGlite(dev),
      }),
    ).resolves.toBeNull();
    expect(fs.readdirSync(migrationsDir).sort()).toEqual([...COMMITTED, 'migration_lock.toml'].sort());
  });

  it('writes the SQL that brings the migrations to a changed schema, and a missing lock file', async () => {
    fs.rmSync(path.join(migrationsDir, 'migration_lock.toml'));
    const schemaPath = path.join(tmp, 'changed.prisma');
    fs.writeFileSync(
      schemaPath,
      `${fs.readFileSync(SCHEMA_PATH, 'utf8')}\nmodel Probe {\n  id Int @id\n\n  @@map("probes")\n}\n`,
    );

    const created = await createMigration({
      name: 'add_probes',
      schemaPath,
      migrationsDir,
      adapterFactory: new PrismaPGlite(dev),
    });

    expect(created).toMatch(/^\d{14}_add_probes$/);
    const sql = fs.readFileSync(path.join(migrationsDir, created!, 'migration.sql'), 'utf8');
    expect(sql).toContain('CREATE TABLE "probes"');
    expect(sql).not.toContain('"servers"');
    // The audit trail's partial indexes, which the schema leaves out, are neither created again nor dropped.
    expect(sql).not.toContain('audit_records');
    expect(fs.readFileSync(path.join(migrationsDir, 'migration_lock.toml'), 'utf8')).toBe(
      fs.readFileSync(path.join(MIGRATIONS_DIR, 'migration_lock.toml'), 'utf8'),
    );
  });
});
