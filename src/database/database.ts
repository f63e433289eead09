import * as fs from 'node:fs';
import type { PGlite as EmbeddedDatabase } from '@electric-sql/pglite';
import { PrismaPg } from '@prisma/adapter-pg';
import type { SqlMigrationAwareDriverAdapterFactory } from '@prisma/driver-adapter-utils';
import { Client, type ClientBase, type ClientConfig, DatabaseError, Pool, type PoolConfig } from 'pg';
import type { Logger } from 'pino';
import { type DatabaseConfig, describeDatabase } from '../config/config';
import { lockDirectory } from './directory-lock';

const CONNECT_TIMEOUT_MS = 5_000;

/**
 * How much longer than the server's `statement_timeout` the pool waits for a statement's answer before it gives up
 * on the connection: time for the server's own cancellation to come back, which leaves the connection usable.
 */
export const ANSWER_GRACE_MS = 1_000;

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
    Client: SelfEndingClient,
    ...statementBound(config.queryTimeoutMs),
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

/** What `statementBound` adds to the pool's options. */
interface StatementBound {
  query_timeout: number;
  /** pg-pool awaits it before it hands a new connection out (@types/pg declares it as returning void). */
  onConnect: (client: ClientBase) => Promise<unknown>;
}

/**
 * A bound on every statement of the pool, so that a database that stops answering (a hung network path, a statement
 * waiting on a lock) costs a request `timeoutMs` and a 503 instead of holding it, and its connection, until TCP
 * gives up. Two halves, as neither holds alone:
 *
 * - the server cancels a statement running longer (`statement_timeout`): a lock wait or a slow plan ends with an
 *   error (57014), the server stops the work and frees what it held, and the connection stays usable. Set after
 *   connecting rather than as a startup parameter, which PgBouncer refuses (`unsupported startup parameter`);
 * - the client gives up on a statement still unanswered `ANSWER_GRACE_MS` later (node-pg's `query_timeout`), which
 *   is what holds when the answer cannot come (the network path, or the server, hangs); the connection is then
 *   ended (`SelfEndingClient`), never handed out again.
 *
 * And between statements: the server ends a session left idle inside a transaction for as long
 * (`idle_in_transaction_session_timeout`), which frees the locks it holds: a handler that hung or a Prisma
 * interactive transaction abandoned mid-way (its process stalled, its network path gone quiet) held them until TCP
 * gave up, and every statement waiting for them failed in the meantime. No transaction of the gateway waits that
 * long between two statements (what it does between them is in-process work), and a lock held longer would fail
 * every statement waiting for it anyway. The pool drops the ended connection and opens another.
 */
function statementBound(timeoutMs: number): StatementBound {
  return {
    query_timeout: timeoutMs + ANSWER_GRACE_MS,
    onConnect: (client) =>
      client.query(`SET statement_timeout = ${timeoutMs}; SET idle_in_transaction_session_timeout = ${timeoutMs}`),
  };
}

/**
 * The pool's options without the bound of `statementBound`, for a session of its own that may legitimately wait
 * long: the migrator's (its advisory lock waits for another instance's migrations, and a migration may rewrite a
 * large table).
 */
export function withoutStatementBound(options: PoolConfig): PoolConfig {
  const { query_timeout: _answer, onConnect: _session, ...rest } = options;
  return rest;
}

/**
 * A pooled connection that hands pg one statement at a time, and that ends itself once a statement fails without
 * the server's error answer.
 *
 * One at a time: Prisma's query interpreter reads a row's relations at once (`Promise.all` over them), and inside a
 * transaction those statements go to its one connection (prisma/orm#29468, open at 7.10). pg 8 queues a statement
 * given to a connection still executing another, warning that the queue "will be removed in pg@9.0"; a server's
 * capabilities (its discovery, items and changes, read in one transaction) were read so. Here each statement waits
 * for the one before it to settle, so pg never has two, and its `query_timeout` counts from when it is sent.
 * A Submittable (pg-cursor, pg-query-stream: none in the gateway) is handed on at once.
 *
 * Ends itself: a connection whose statement failed without the server's answer (node-pg gave up waiting for it, the
 * socket broke) is in an unknown state: the server may still run the statement or answer it later, and a
 * transaction may be open on it. pg-pool ends a connection whose statement failed in `pool.query`
 * (Prisma's statements outside a transaction), but Prisma hands a transaction's connection back with `release()`
 * and no error once it has tried to roll back; the rollback, behind the statement without an answer, failed too,
 * and the connection went to the next request with its transaction still open.
 */
class SelfEndingClient extends Client {
  /** Settles once the statement last handed to this connection has: the next is handed to pg then. */
  private previous: Promise<unknown> = Promise.resolve();

  constructor(config?: ClientConfig) {
    super(config);
    const query = this.query.bind(this) as (...args: unknown[]) => unknown;
    this.query = ((...args: unknown[]) => {
      if (typeof (args[0] as { submit?: unknown } | null)?.submit === 'function') return query(...args);
      // pool.query passes a callback; Prisma's statements and the SET of statementBound take the promise.
      const callback = typeof args.at(-1) === 'function' ? (args.pop() as QueryCallback) : undefined;
      const result = this.previous.then(() => query(...args));
      this.previous = result.catch(() => undefined);
      if (callback) {
        result.then(
          (answer) => callback(null, answer),
          (error: Error) => callback(error),
        );
        return undefined;
      }
      result.catch((error: unknown) => {
        if (!(error instanceof DatabaseError)) this.end().catch(() => undefined);
      });
      return result;
    }) as Client['query'];
  }
}

type QueryCallback = (error: Error | null, answer?: unknown) => void;
