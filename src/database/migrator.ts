/**
 * Prisma migrations without Prisma's native CLI.
 *
 * Prisma 7's CLI downloads a native schema engine on every command, which is
 * impossible offline. `@prisma/schema-engine-wasm` is the same engine compiled
 * to WebAssembly; driven through a driver adapter it applies and authors
 * migrations exactly like `prisma migrate deploy` / `prisma migrate dev
 * --create-only` (same SQL, same `_prisma_migrations` bookkeeping, same
 * PostgreSQL advisory lock around `applyMigrations`).
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import type { PGlite } from '@electric-sql/pglite';
import { PrismaPg } from '@prisma/adapter-pg';
import {
  bindMigrationAwareSqlAdapterFactory,
  type SqlDriverAdapter,
  type SqlMigrationAwareDriverAdapterFactory,
} from '@prisma/driver-adapter-utils';
import type { MigrationList, SchemaEngine, SchemaFilter } from '@prisma/schema-engine-wasm';
// The package's JS glue only (ESM; Node >= 20.19 loads it through require,
// Jest through its transform). Its entry point would import the .wasm file as
// an ES module, which Node 20 cannot do: we instantiate the bytes ourselves.
import * as glue from '@prisma/schema-engine-wasm/schema_engine_bg';
import { Pool } from 'pg';
import type { Logger } from 'pino';
import { PACKAGE_ROOT } from '../version';
import { withoutStatementBound } from './database';

export type { SqlMigrationAwareDriverAdapterFactory } from '@prisma/driver-adapter-utils';

/** The committed migrations, in the package (under `src/..` or `dist/..` alike). */
export const MIGRATIONS_DIR = path.join(PACKAGE_ROOT, 'prisma', 'migrations');

export interface ApplyMigrationsResult {
  /** Names of the migrations this call applied, oldest first; empty when the database was up to date. */
  applied: string[];
  /**
   * Migrations an earlier run had started and not finished (its session died, or the migration failed) whose
   * transaction demonstrably committed nothing: recorded as rolled back before `applied` was applied, oldest first.
   */
  rolledBack: string[];
}

export interface CreateMigrationOptions {
  /** Migration name, e.g. `add_users`; the engine prefixes a timestamp. */
  name: string;
  /** Path to schema.prisma: the desired end state. */
  schemaPath: string;
  /** Directory holding `<timestamp>_<name>/migration.sql` and `migration_lock.toml`. */
  migrationsDir: string;
  /** The development database (`prisma migrate dev` checks it for drift first). */
  adapterFactory: SqlMigrationAwareDriverAdapterFactory;
}

const LOCKFILE = 'migration_lock.toml';
const MIGRATION_FILE = 'migration.sql';
const NO_FILTERS: SchemaFilter = { externalTables: [], externalEnums: [] };

/**
 * `prisma migrate deploy`: applies the migrations of `migrationsDir` that the
 * database has not recorded in `_prisma_migrations`. Idempotent, and safe to
 * run from several processes at once (the engine holds a PostgreSQL advisory
 * lock while applying; a waiter waits as long as the lock is held: the engine's
 * 10 s timeout never ends the wait, seen with the lock held for 30 s). A
 * database that already records every migration is answered without the
 * engine or its lock (`recordsAllApplied`).
 *
 * A failed migration rejects with an error naming it and quoting the database
 * error, and the engine records it as started and not finished. Each script
 * runs in one transaction that also records it finished (`oneTransaction`), so
 * such a record proves that nothing of it was applied: the next run records it
 * rolled back and applies it again (`rolledBack`). A migration recorded
 * unfinished otherwise (by an earlier release, by the Prisma CLI, or one that
 * controls its own transactions) cannot be known applied or not: later runs
 * refuse to apply anything, naming it, until it is resolved
 * (`resolveFailedMigration`, as `prisma migrate resolve`).
 */
export async function applyMigrations(
  adapterFactory: SqlMigrationAwareDriverAdapterFactory,
  migrationsDir: string,
): Promise<ApplyMigrationsResult> {
  const migrationsList = await readMigrations(migrationsDir);
  if (await recordsAllApplied(adapterFactory, migrationsList)) return { applied: [], rolledBack: [] };
  const rolledBack: string[] = [];
  try {
    const { appliedMigrationNames } = await withEngine(
      adapterFactory,
      undefined,
      (engine) => engine.applyMigrations({ migrationsList, filters: NO_FILTERS }),
      rolledBack,
    );
    return { applied: appliedMigrationNames, rolledBack };
  } catch (error) {
    throw new Error(describeApplyError(error, migrationsDir), { cause: error });
  }
}

/** What `serve` logs of the migrations it applied at start (the primary of `--workers N` too). */
export function logMigrations(logger: Logger, { applied, rolledBack }: ApplyMigrationsResult): void {
  if (rolledBack.length) {
    logger.warn(
      { rolledBack },
      'an interrupted run had left these migrations unfinished, none of them applied: recorded as rolled back, applied again',
    );
  }
  logger.info({ applied }, applied.length ? 'migrations applied' : 'database schema is up to date');
}

/**
 * `prisma migrate dev --create-only`: writes the SQL that takes the schema the
 * committed migrations produce to the one in `schemaPath`, as
 * `<migrationsDir>/<timestamp>_<name>/migration.sql` (plus `migration_lock.toml`
 * when absent). The migrations are replayed into a fresh in-memory PGlite
 * (the shadow database), so authoring needs no database server.
 *
 * Returns the new directory's name, or null when the schema already matches.
 */
export async function createMigration(opts: CreateMigrationOptions): Promise<string | null> {
  const schema = { files: [{ path: opts.schemaPath, content: await readFile(opts.schemaPath, 'utf8') }] };
  const migrationsList = await readMigrations(opts.migrationsDir);

  // Every shadow connection must start from an empty database: the engine
  // replays the whole history into it.
  const shadows: PGlite[] = [];
  const withShadow: SqlMigrationAwareDriverAdapterFactory = {
    adapterName: opts.adapterFactory.adapterName,
    provider: opts.adapterFactory.provider,
    connect: () => opts.adapterFactory.connect(),
    connectToShadowDb: async () => {
      const { PGlite, PrismaPGlite, PGLITE_EXTENSIONS } = await import('./pglite.js');
      const shadow = new PGlite({ extensions: PGLITE_EXTENSIONS }); // in memory
      shadows.push(shadow);
      return new PrismaPGlite(shadow).connect();
    },
  };
  try {
    const created = await withEngine(withShadow, schema, async (engine) => {
      // As in `prisma migrate dev`: refuse when the development database has
      // drifted from the history. This also replays the history into a shadow
      // database, and createMigration diffs against that cached result (it
      // cannot reach a shadow database on its own).
      const { action } = await engine.devDiagnostic({ migrationsList, filters: NO_FILTERS });
      if (action.tag === 'reset') throw new Error(`the development database must be reset: ${action.reason}`);
      return engine.createMigration({
        draft: false, // no change, no migration (a draft would be an empty one)
        migrationName: opts.name,
        migrationsList,
        schema,
        filters: NO_FILTERS,
      });
    });
    if (created.migrationScript === null) return null;

    const dir = path.join(opts.migrationsDir, created.generatedMigrationName);
    if (existsSync(dir)) throw new Error(`the migration directory ${dir} already exists`);
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, `migration.${created.extension}`), created.migrationScript, 'utf8');
    if (migrationsList.lockfile.content === null) {
      await writeFile(path.join(opts.migrationsDir, LOCKFILE), lockfileContent(created.connectorType), 'utf8');
    }
    return created.generatedMigrationName;
  } catch (error) {
    throw new Error(`Creating migration "${opts.name}" failed: ${messageOf(error)}`, { cause: error });
  } finally {
    await Promise.all(shadows.map((shadow) => shadow.close()));
  }
}

/**
 * Whether `_prisma_migrations` already records every migration of the list as applied, with the checksum of its
 * file as it is now, and holds no failed one: what a restart finds. Then the engine would apply nothing, and it is
 * not loaded: its compiled wasm would otherwise stay in the process for its life (10-18 MB of RSS, measured).
 * Anything else, a database without the table included, is left to the engine, which applies, waits for another
 * instance's lock, or reports (P3009 for a failed migration) as `prisma migrate deploy` does.
 */
async function recordsAllApplied(
  adapterFactory: SqlMigrationAwareDriverAdapterFactory,
  migrationsList: MigrationList,
): Promise<boolean> {
  const wanted = new Map<string, string>();
  for (const { path: name, migrationFile } of migrationsList.migrationDirectories) {
    if (migrationFile.content.tag !== 'ok') return false;
    wanted.set(name, createHash('sha256').update(migrationFile.content.value).digest('hex'));
  }
  const recorded = await recordedMigrations(adapterFactory);
  if ('failed' in recorded) return false;
  for (const { name, checksum, finished } of recorded) {
    if (!finished) return false; // failed, or being applied by another instance right now
    if (wanted.get(name) === checksum) wanted.delete(name);
  }
  return wanted.size === 0;
}

interface RecordedMigration {
  name: string;
  checksum: unknown;
  finished: boolean;
}

/**
 * The migrations `_prisma_migrations` records (rolled back ones aside), or the error its query failed with (no such
 * table, in a database never migrated); failing to connect rejects.
 */
async function recordedMigrations(
  adapterFactory: SqlMigrationAwareDriverAdapterFactory,
): Promise<RecordedMigration[] | { failed: unknown }> {
  const adapter = await adapterFactory.connect();
  try {
    const { rows } = await adapter.queryRaw({
      sql: 'SELECT migration_name, checksum, finished_at IS NOT NULL FROM _prisma_migrations WHERE rolled_back_at IS NULL',
      args: [],
      argTypes: [],
    });
    return rows.map(([name, checksum, finished]) => ({ name: name as string, checksum, finished: finished === true }));
  } catch (error) {
    return { failed: error };
  } finally {
    await adapter.dispose(); // PrismaPg: detaches from the caller's pool, which stays open
  }
}

export interface MigrationStatus {
  /** Committed migrations the database does not record, oldest first. */
  pending: string[];
  /** Migrations the database records as started and not finished: failed, or being applied right now. */
  unfinished: string[];
  /** Migrations the database records as applied that `migrationsDir` does not hold: a newer release applied them. */
  unknown: string[];
}

/**
 * Compares the migrations of `migrationsDir` with those `_prisma_migrations` records, in one query and without
 * the engine: what `serve --no-migrate` checks before serving. A database without the table has every migration
 * pending. Only names count: a checksum that differs from the file is `migrate`'s to report, as it does.
 */
export async function migrationStatus(
  adapterFactory: SqlMigrationAwareDriverAdapterFactory,
  migrationsDir: string,
): Promise<MigrationStatus> {
  const committed = (await readMigrations(migrationsDir)).migrationDirectories.map(({ path: name }) => name);
  let recorded = await recordedMigrations(adapterFactory);
  if ('failed' in recorded) {
    // 42P01: no such table, a database never migrated. Anything else (the database is down) is an error.
    if ((recorded.failed as { cause?: { originalCode?: string } }).cause?.originalCode !== '42P01') {
      throw recorded.failed;
    }
    recorded = [];
  }
  const applied = new Set<string>();
  const started = new Set<string>();
  for (const { name, finished } of recorded) (finished ? applied : started).add(name);
  const known = new Set(committed);
  return {
    pending: committed.filter((name) => !applied.has(name) && !started.has(name)),
    unfinished: [...started].filter((name) => !applied.has(name)).sort(),
    unknown: [...applied].filter((name) => !known.has(name)).sort(),
  };
}

/** The names of the committed migrations in `migrationsDir`, oldest first. */
export async function migrationNames(migrationsDir: string): Promise<string[]> {
  return (await readMigrations(migrationsDir)).migrationDirectories.map(({ path: name }) => name);
}

/** How `resolveFailedMigration` records a failed migration: all of it applied, or none of it. */
export type Resolution = 'applied' | 'rolled-back';

/**
 * `prisma migrate resolve --applied | --rolled-back <name>`, for a migration `_prisma_migrations` records as started
 * and not finished: what the operator found in the database after a run that `applyMigrations` could not prove
 * committed nothing. `rolled-back` records it rolled back (the next run applies it again); `applied` does that and
 * records it applied anew, with the checksum of its file, as the Prisma CLI does. One statement, so half of it is
 * never recorded. Refused (rejects, recording nothing) for a migration `migrationsDir` does not hold, one not
 * recorded as failed (pending, or applied), and while another run holds the migrations' lock (it may be applying
 * that very migration).
 */
export async function resolveFailedMigration(
  adapterFactory: SqlMigrationAwareDriverAdapterFactory,
  migrationsDir: string,
  name: string,
  resolution: Resolution,
): Promise<void> {
  const { migrationDirectories } = await readMigrations(migrationsDir);
  const file = migrationDirectories.find((migration) => migration.path === name)?.migrationFile.content;
  if (!file) throw new Error(`${name} is not a migration of this release (${migrationsDir})`);
  if (file.tag !== 'ok') throw new Error(`the migration file of ${name} cannot be read: ${file.value}`);
  const adapter = await adapterFactory.connect();
  try {
    const query = async (sql: string, args: string[] = []) =>
      (await adapter.queryRaw({ sql, args, argTypes: args.map(() => STRING) })).rows;
    const [[locked] = []] = await query(
      `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = 0 AND objid = ${MIGRATE_LOCK}
                         AND objsubid = 1 AND granted
                         AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))`,
    );
    if (locked === true) {
      throw new Error(
        `another run of migrate holds the migrations' lock (it may be applying ${name}): try again once it is over`,
      );
    }
    const [[table] = []] = await query(`SELECT to_regclass('"_prisma_migrations"') IS NOT NULL`);
    const recorded =
      table === true
        ? await query(
            `SELECT "finished_at" IS NOT NULL FROM "_prisma_migrations" WHERE "migration_name" = $1 AND "rolled_back_at" IS NULL`,
            [name],
          )
        : [];
    if (recorded.some(([finished]) => finished === true)) {
      throw new Error(`migration ${name} is recorded as applied, not failed: nothing to resolve`);
    }
    if (recorded.length === 0)
      throw new Error(`migration ${name} is not recorded as failed (it is pending): nothing to resolve`);

    const rollBack = `UPDATE "_prisma_migrations" SET "rolled_back_at" = now()
                       WHERE "migration_name" = $1 AND "finished_at" IS NULL AND "rolled_back_at" IS NULL
                   RETURNING 1`;
    const resolved =
      resolution === 'rolled-back'
        ? await query(rollBack, [name])
        : await query(
            `WITH failed AS (${rollBack})
             INSERT INTO "_prisma_migrations" ("id", "checksum", "finished_at", "migration_name", "started_at", "applied_steps_count")
             SELECT gen_random_uuid()::text, $2, now(), $1, now(), 1 WHERE EXISTS (SELECT 1 FROM failed)
             RETURNING 1`,
            [name, createHash('sha256').update(file.value).digest('hex')],
          );
    if (resolved.length === 0) throw new Error(`migration ${name} was resolved by another run meanwhile: nothing done`);
  } finally {
    await adapter.dispose();
  }
}

/** Same text as the Prisma CLI writes. */
function lockfileContent(provider: string): string {
  return [
    '# Please do not edit this file manually',
    '# It should be added in your version-control system (e.g., Git)',
    `provider = "${provider}"`,
    '',
  ].join('\n');
}

/** Reads the migrations directory the way the Prisma CLI does (a missing directory is an empty history). */
async function readMigrations(baseDir: string): Promise<MigrationList> {
  const lockfileContent = await readFile(path.join(baseDir, LOCKFILE), 'utf8').catch(() => null);
  const entries = await readdir(baseDir, { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw error;
  });
  const dirs = entries
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort((a, b) => a.localeCompare(b));
  const migrationDirectories = await Promise.all(
    dirs.map(async (name) => ({
      path: name,
      migrationFile: {
        path: MIGRATION_FILE,
        // An unreadable file is reported by the engine, against its migration.
        content: await readFile(path.join(baseDir, name, MIGRATION_FILE), 'utf8').then(
          (value) => ({ tag: 'ok' as const, value }),
          (error: Error) => ({ tag: 'error' as const, value: error.message }),
        ),
      },
    })),
  );
  return {
    baseDir,
    lockfile: { path: LOCKFILE, content: lockfileContent },
    shadowDbInitScript: '',
    migrationDirectories,
  };
}

// ---------------------------------------------------------------------------
// Engine lifecycle

type Schemas = { files: { path: string; content: string }[] };

/** Engines currently running a command; timers are only swept when none is. */
let running = 0;

/**
 * Runs one command on a fresh engine, then releases everything it opened:
 * the engine's wasm memory (`free()`), its connections (it never disposes its
 * main one), and its leftover timers.
 */
async function withEngine<T>(
  adapterFactory: SqlMigrationAwareDriverAdapterFactory,
  schema: Schemas | undefined,
  command: (engine: SchemaEngine) => Promise<T>,
  rolledBack: string[] = [],
): Promise<T> {
  const Engine = await loadEngineClass();
  const tracked = trackAdapters(adapterFactory, rolledBack);
  running++;
  let engine: SchemaEngine | undefined;
  try {
    engine = await Engine.new(
      // `datamodels` must be undefined or non-empty.
      { datamodels: schema?.files.map((file): [string, string] => [file.path, file.content]) },
      () => {}, // engine log lines (JSON); nothing we need
      bindMigrationAwareSqlAdapterFactory(tracked.factory),
    );
    return await command(engine);
  } catch (error) {
    throw engineError(error);
  } finally {
    engine?.free();
    await tracked.disposeAll();
    if (--running === 0) clearEngineTimers();
  }
}

// ---------------------------------------------------------------------------
// Connections handed to the engine
//
// The engine was written against its native connections; the two adapters the
// gateway uses each need a correction (every one is covered by the spec):
//
// - @prisma/adapter-pg sends each query to whichever pooled connection is free
//   and runs scripts by splitting them on ";". The engine, though, takes a
//   session-level `pg_advisory_lock` and never releases it (the native engine's
//   connection dies with its process): over the caller's shared pool the lock
//   would stay held by some pooled connection, and every other instance's
//   migrations would time out. A split script also breaks `$$` bodies and,
//   failing halfway, leaves its first statements applied. So the engine gets a
//   session of its own: a one-connection pool with the caller's settings
//   but for the bound on each statement (the lock is waited for as long as
//   another instance migrates), scripts sent whole (one implicit
//   transaction, as the native engine does), closed afterwards, which
//   releases the lock.
// - pglite-prisma-adapter (0.7.2, the latest) starts `executeScript` without
//   awaiting it: a failing migration becomes an unhandled rejection while the
//   engine records it as applied. Scripts are awaited instead. (PGlite is one
//   session shared with the app; its advisory lock is re-entrant there and
//   only guards against other processes, which cannot open the directory.)

/**
 * Wraps a factory to prepare the connections the engine opens, and to close them afterwards. Migrations the main
 * connection finds to have committed nothing are added to `rolledBack` (`oneTransaction`).
 */
function trackAdapters(factory: SqlMigrationAwareDriverAdapterFactory, rolledBack: string[]) {
  const opened: SqlDriverAdapter[] = [];
  const prepare = async (adapter: SqlDriverAdapter, main: boolean) => {
    const own = (await ownPostgresSession(adapter)) ?? awaitPgliteScripts(adapter);
    const ready = main ? oneTransaction(own, rolledBack) : own;
    opened.push(ready);
    // The engine disposes some connections itself (shadow databases); a
    // second dispose must be a no-op (PrismaPg's would end its pool twice).
    const dispose = ready.dispose.bind(ready);
    let disposed: Promise<void> | undefined;
    ready.dispose = () => (disposed ??= dispose());
    return ready;
  };
  return {
    factory: {
      adapterName: factory.adapterName,
      provider: factory.provider,
      connect: () => factory.connect().then((adapter) => prepare(adapter, true)),
      connectToShadowDb: () => factory.connectToShadowDb().then((adapter) => prepare(adapter, false)),
    } satisfies SqlMigrationAwareDriverAdapterFactory,
    disposeAll: () => Promise.allSettled(opened.splice(0).map((adapter) => adapter.dispose())),
  };
}

/** For a PrismaPg connection: the same database through a private one-connection pool (see above). */
async function ownPostgresSession(adapter: SqlDriverAdapter): Promise<SqlDriverAdapter | undefined> {
  const driver = (adapter as { underlyingDriver?: () => unknown }).underlyingDriver?.();
  if (adapter.adapterName !== '@prisma/adapter-pg' || !(driver instanceof Pool)) return undefined;
  const schema = adapter.getConnectionInfo?.().schemaName;
  await adapter.dispose(); // detaches from the caller's pool (or ends the one PrismaPg made for it)

  // A migration may rewrite a large table, and the lock is waited for: no bound on a statement here.
  const session = new Pool({ ...withoutStatementBound(driver.options), max: 1 });
  // An idle connection the server ends (a restart, a terminated backend) must not be an unhandled 'error' event,
  // which ends the process: the engine's next query on it fails, and the migration reports that.
  session.on('error', () => undefined);
  const own = await new PrismaPg(session, { disposeExternalPool: true, ...(schema ? { schema } : {}) }).connect();
  // A query without parameters uses the simple protocol: the whole script in one go.
  return runScriptsWith(own, (script) => session.query(script));
}

function awaitPgliteScripts(adapter: SqlDriverAdapter): SqlDriverAdapter {
  const client = (adapter as { client?: { exec?: (script: string) => Promise<unknown> } }).client;
  const exec = client?.exec?.bind(client);
  if (adapter.adapterName !== 'pglite-prisma-adapter' || !exec) return adapter;
  return runScriptsWith(adapter, exec);
}

/**
 * Replaces `executeScript`, raising errors through the adapter's own
 * `onError` (both adapters have one) so the engine gets the database error
 * code and message, as from their other methods.
 */
function runScriptsWith(adapter: SqlDriverAdapter, run: (script: string) => Promise<unknown>): SqlDriverAdapter {
  const { onError } = adapter as { onError?: (error: unknown) => never };
  adapter.executeScript = async (script) => {
    try {
      await run(script);
    } catch (error) {
      if (typeof onError === 'function') onError.call(adapter, error);
      throw error;
    }
  };
  return adapter;
}

// ---------------------------------------------------------------------------
// One transaction per migration, finish record included
//
// For each migration the engine records it started (an INSERT into _prisma_migrations, committed on its own), runs
// its script, then records it finished (two UPDATEs, each committed on its own); on a failure it writes the error
// into `logs` instead. A script sent whole runs in one implicit transaction, so a session that dies in the middle
// (a killed pod, a dropped connection, a restarted PostgreSQL) applies none of it, but the record stays started and
// unfinished, exactly as a migration that failed. And a session that dies between the script's commit and the
// engine's UPDATEs leaves the same record over a migration that was applied. Neither can be told from the other,
// so the engine (and `prisma migrate deploy`) refuses every later run (P3009).
//
// Here the script's transaction also records the migration finished, so a committed script is always recorded
// finished, and a migration recorded unfinished committed nothing. The record is marked (`logs` starts with
// ONE_TRANSACTION, written before the script and kept in the engine's failure text) so that only records this
// proof holds for are rolled back by the next run, once it holds the engine's advisory lock (then no other run
// of the migrations is in progress: the session that ran the script held that lock, and its transaction ended
// with it). A script that controls its own transactions (COMMIT, ROLLBACK, ...) may commit part of itself: it is
// neither marked nor finished in its transaction, and a failure of it is left for the operator to resolve.

/** What `logs` starts with while a migration runs in one transaction that also records it finished. */
export const ONE_TRANSACTION = 'mcp-gateway: run in one transaction that records it finished\n';

/** The advisory lock the schema engine takes around `applyMigrations` (`SELECT pg_advisory_lock(72707369)`). */
export const MIGRATE_LOCK = 72707369;

const STARTED = /^INSERT INTO "_prisma_migrations" \("id","checksum","started_at","migration_name"\)/;
const FAILED = /^UPDATE "_prisma_migrations" SET "logs" = \$1 WHERE "id" = \$2$/;
const LOCKED = new RegExp(`^SELECT pg_advisory_lock\\(${MIGRATE_LOCK}\\)$`);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/**
 * Words that end or start a transaction, anywhere in a script (comments and function bodies included: a false
 * match only leaves a failure of that migration to the operator, as before).
 */
const TRANSACTION_CONTROL =
  /\b(?:(?:BEGIN|COMMIT|ROLLBACK|ABORT|SAVEPOINT|START\s+TRANSACTION|PREPARE\s+TRANSACTION)\b|END(?:\s+(?:TRANSACTION|WORK))?\s*(?:;|$))/i;

function oneTransaction(adapter: SqlDriverAdapter, rolledBack: string[]): SqlDriverAdapter {
  const queryRaw = adapter.queryRaw.bind(adapter);
  const executeRaw = adapter.executeRaw.bind(adapter);
  const executeScript = adapter.executeScript.bind(adapter);
  /** The migration the engine recorded started last, and whether its script runs marked. */
  let current: { id: string; marked: boolean } | undefined;

  adapter.queryRaw = async (query) => {
    if (STARTED.test(query.sql)) {
      const result = await queryRaw(query);
      const id = String(query.args[0]);
      current = { id, marked: false };
      return result;
    }
    if (current?.marked && FAILED.test(query.sql) && query.args[1] === current.id) {
      return queryRaw({ ...query, args: [`${ONE_TRANSACTION}${String(query.args[0])}`, ...query.args.slice(1)] });
    }
    return queryRaw(query);
  };
  adapter.executeRaw = async (query) => {
    const result = await executeRaw(query);
    if (LOCKED.test(query.sql.trim())) rolledBack.push(...(await rollBackUncommitted(queryRaw)));
    return result;
  };
  adapter.executeScript = async (script) => {
    const migration = current;
    current = undefined;
    if (!migration || !UUID.test(migration.id) || TRANSACTION_CONTROL.test(script)) return executeScript(script);
    await queryRaw({
      sql: 'UPDATE "_prisma_migrations" SET "logs" = $1 WHERE "id" = $2',
      args: [ONE_TRANSACTION, migration.id],
      argTypes: [STRING, STRING],
    });
    migration.marked = true;
    current = migration;
    // A line comment may end the script: the finish record starts on a line of its own. The engine records it
    // finished again right after (its own timestamp), as it would have.
    await executeScript(
      `${script}\n;\nUPDATE "_prisma_migrations" SET "finished_at" = now(), "logs" = NULL WHERE "id" = '${migration.id}';\n`,
    );
  };
  return adapter;
}

const STRING = { scalarType: 'string', arity: 'scalar' } as const;

/**
 * Records as rolled back every migration recorded unfinished under ONE_TRANSACTION: its transaction ended without
 * committing. Called holding the engine's advisory lock. Resolves with their names, oldest first.
 */
async function rollBackUncommitted(queryRaw: SqlDriverAdapter['queryRaw']): Promise<string[]> {
  const { rows: table } = await queryRaw({
    sql: `SELECT to_regclass('"_prisma_migrations"') IS NOT NULL`,
    args: [],
    argTypes: [],
  });
  if (table[0]?.[0] !== true) return [];
  const { rows } = await queryRaw({
    sql: `UPDATE "_prisma_migrations" SET "rolled_back_at" = now()
           WHERE "finished_at" IS NULL AND "rolled_back_at" IS NULL AND starts_with("logs", $1)
       RETURNING "migration_name", "started_at"`,
    args: [ONE_TRANSACTION],
    argTypes: [STRING],
  });
  return rows
    .map(([name, startedAt]) => ({ name: String(name), startedAt: String(startedAt) }))
    .sort((a, b) => a.startedAt.localeCompare(b.startedAt) || a.name.localeCompare(b.name))
    .map(({ name }) => name);
}

/** What the glue calls on a Rust panic, before the wasm traps (`RuntimeError: unreachable`). */
interface PanicRegistry {
  message?: string;
  set_message(message: string): void;
}
const panicHost = globalThis as typeof globalThis & { PRISMA_WASM_PANIC_REGISTRY?: PanicRegistry };

function engineError(error: unknown): unknown {
  const panic = panicHost.PRISMA_WASM_PANIC_REGISTRY?.message;
  if (error instanceof WebAssembly.RuntimeError && panic) {
    return new Error(`the schema engine panicked: ${panic}`, { cause: error });
  }
  return error;
}

/**
 * The engine reports a failing script as "external connector error", the
 * database error, then a span trace holding the migration's name; say it
 * plainly. Other errors (e.g. P3009: a failed migration blocks the history)
 * already name the migration.
 */
function describeApplyError(error: unknown, migrationsDir: string): string {
  const text = messageOf(error);
  // P3009, a record no run of this release can prove committed nothing (see `oneTransaction`).
  const unresolved = /found failed migrations[^]*?The `([^`]+)` migration started at/.exec(text)?.[1];
  if (unresolved) {
    return (
      `migration ${unresolved} was started and never finished, and whether any of it was applied is not known: ` +
      `check the database, then run \`mcp-gateway migrate --resolve-applied ${unresolved}\` if all of it is ` +
      `applied, or \`mcp-gateway migrate --resolve-rolled-back ${unresolved}\` if none of it is`
    );
  }
  const migration = /migration_name="([^"]+)"/.exec(text)?.[1];
  const summary = (text.split(/\n\s+0: /)[0] ?? text).replace(/^external connector error\n/, '').trim();
  if (migration && !summary.includes(migration)) return `Migration ${migration} failed: ${summary}`;
  return `Applying the migrations in ${migrationsDir} failed: ${summary}`;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

// ---------------------------------------------------------------------------
// Loading the wasm

// Neither lib "es2023" nor @types/node 20 declares WebAssembly: the part used here.
type WasmModule = { readonly __brand: 'WebAssembly.Module' };
declare const WebAssembly: {
  compile(bytes: Uint8Array): Promise<WasmModule>;
  instantiate(
    module: WasmModule,
    imports: Record<string, Record<string, unknown>>,
  ): Promise<{ exports: Record<string, unknown> }>;
  Module: { imports(module: WasmModule): { module: string; name: string }[] };
  RuntimeError: new () => Error;
};

/**
 * Timers the engine started and that have not fired. After `applyMigrations`
 * the engine leaves a 10 s timer behind (the unused timeout it raced the
 * advisory lock against). They are unref'd, so they never keep a process
 * alive, and cleared once no engine is running, so nothing lingers (in Jest
 * either). Clearing one only drops its small wasm-side callback unfreed.
 */
const engineTimers = new Set<NodeJS.Timeout>();

function clearEngineTimers(): void {
  for (const timer of engineTimers) clearTimeout(timer);
  engineTimers.clear();
}

let engineClass: Promise<typeof glue.SchemaEngine> | undefined;

/**
 * Instantiates the wasm once per process (the glue holds module-level state:
 * a second instance under the same glue would corrupt it). Each command then
 * gets its own cheap `SchemaEngine`.
 */
function loadEngineClass(): Promise<typeof glue.SchemaEngine> {
  engineClass ??= instantiate().catch((error: unknown) => {
    engineClass = undefined;
    throw error;
  });
  return engineClass;
}

async function instantiate(): Promise<typeof glue.SchemaEngine> {
  panicHost.PRISMA_WASM_PANIC_REGISTRY ??= {
    set_message(message: string) {
      this.message = message;
    },
  };
  // The package's "exports" hide the .wasm file; it sits next to the glue.
  const gluePath = require.resolve('@prisma/schema-engine-wasm/schema_engine_bg');
  const module = await WebAssembly.compile(await readFile(path.join(path.dirname(gluePath), 'schema_engine_bg.wasm')));

  // The wasm imports the glue's exports as "./schema_engine_bg.js". Override
  // its setTimeout import to track and unref the timers it creates.
  const imports: Record<string, unknown> = { ...glue };
  for (const { module: from, name } of WebAssembly.Module.imports(module)) {
    if (from === './schema_engine_bg.js' && name.startsWith('__wbg_setTimeout_')) {
      imports[name] = (callback: () => void, ms: number) => {
        const timer = setTimeout(() => {
          engineTimers.delete(timer);
          callback();
        }, ms >>> 0);
        timer.unref();
        engineTimers.add(timer);
        return timer;
      };
    }
  }
  const instance = await WebAssembly.instantiate(module, { './schema_engine_bg.js': imports });
  glue.__wbg_set_wasm(instance.exports);
  (instance.exports.__wbindgen_start as () => void)();
  return glue.SchemaEngine;
}
