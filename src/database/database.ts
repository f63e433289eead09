import * as fs from 'node:fs';
import type { PGlite as EmbeddedDatabase } from '@electric-sql/pglite';
import { PrismaPg } from '@prisma/adapter-pg';
import type { SqlMigrationAwareDriverAdapterFactory } from '@prisma/driver-adapter-utils';
import { Pool } from 'pg';
import type { Logger } from 'pino';
import { type DatabaseConfig, describeDatabase } from '../config/config';
import { lockDirectory } from './directory-lock';

const CONNECT_TIMEOUT_MS = 5_000;

/** The database connection the process owns: one pool (or one embedded PGlite), opened once. */
export interface DatabaseConnection {
  readonly kind: DatabaseConfig['kind'];
  /** Where the data lives, without credentials. */
  readonly description: string;
  /** Shared by the Prisma client and the migrator, so the process has one pool. */
  readonly adapterFactory: SqlMigrationAwareDriverAdapterFactory;
  close(): Promise<void>;
}

export interface OpenOptions {
  /**
   * Called when another process has taken over the embedded database's lock, after the fatal log line naming it:
   * must end this process at once, without touching the database (no drain, no close). By default it exits 1.
   */
  onLockLost?: (owner: string) => void;
}

export async function openDatabase(
  config: DatabaseConfig,
  logger: Logger,
  options: OpenOptions = {},
): Promise<DatabaseConnection> {
  const description = describeDatabase(config);
  if (config.kind === 'embedded') {
    // Loaded here: a gateway on PostgreSQL never needs the embedded database's code.
    const { PGlite, PrismaPGlite, PGLITE_EXTENSIONS } = await import('./pglite.js');
    fs.mkdirSync(config.directory, { recursive: true });
    const releaseLock = lockDirectory(config.directory, logger, options.onLockLost ?? (() => process.exit(1)));
    let pglite: EmbeddedDatabase;
    try {
      pglite = await PGlite.create(config.directory, { extensions: PGLITE_EXTENSIONS });
    } catch (error) {
      releaseLock();
      throw error;
    }
    return {
      kind: 'embedded',
      description,
      adapterFactory: new PrismaPGlite(pglite),
      close: async () => {
        try {
          await pglite.close();
        } finally {
          releaseLock();
        }
      },
    };
  }
  const pool = new Pool({
    connectionString: config.url,
    max: config.poolSize,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
  });
  // An idle client losing its server emits here; without a listener the process would crash.
  pool.on('error', (error) => logger.warn({ err: error }, 'PostgreSQL connection lost'));
  try {
    await pool.query('SELECT 1');
  } catch (error) {
    await pool.end();
    throw new Error(`PostgreSQL at ${description} did not answer: ${(error as Error).message}`);
  }
  return {
    kind: 'postgres',
    description,
    adapterFactory: new PrismaPg(pool),
    close: () => pool.end(),
  };
}
