import type { ErrorCode } from './domain-error';

/** What a database error means to a client, when it means something other than an internal fault. */
export interface DatabaseProblem {
  code: ErrorCode;
  detail: string;
}

const BUSY: DatabaseProblem = { code: 'service_unavailable', detail: 'the database is busy; try again shortly' };
const UNREACHABLE: DatabaseProblem = {
  code: 'service_unavailable',
  detail: 'the database does not answer; try again shortly',
};

const TIMED_OUT: DatabaseProblem = {
  code: 'service_unavailable',
  detail: 'the database did not answer in time; try again shortly',
};

// Prisma errors are recognised by shape so that nothing here depends on the generated client.
const PRISMA_CODES: Record<string, DatabaseProblem> = {
  P2002: { code: 'conflict', detail: 'a record with the same unique value already exists' },
  P2025: { code: 'not_found', detail: 'the record does not exist' },
  P2003: { code: 'validation_error', detail: 'a referenced record does not exist' },
  // The database is saturated (no pooled connection, or a transaction could not start in time): retry later.
  P2024: BUSY,
  P2028: BUSY,
  // The database is away (not reachable, timed out, or it closed the connection): an outage, which readiness
  // reports, not a fault of this request; a 500 and an error line with its stack for each request said otherwise.
  P1001: UNREACHABLE,
  P1002: UNREACHABLE,
  P1017: UNREACHABLE,
};

/**
 * The driver adapter's reading of an error that says the database is away, whatever Prisma code carries it: a model
 * query's is P1001 or P1017, a raw query's ($queryRaw) P2010 "Raw query failed", the same outage.
 */
const ADAPTER_OUTAGES = new Map<unknown, DatabaseProblem>([
  ['DatabaseNotReachable', UNREACHABLE],
  ['ConnectionClosed', UNREACHABLE],
]);

/**
 * PostgreSQL refusing text it cannot store: NUL in text (22021) or in jsonb (22P05). Validation refuses such
 * text first; this keeps a field it missed a 400 rather than a 500. Prisma reports these under whichever
 * code fits the query (P2010 for raw SQL, P2039 for a model query), with the SQLSTATE in the adapter's cause.
 */
const UNSTORABLE_TEXT_STATES = new Set(['22021', '22P05']);
const UNSTORABLE_TEXT: DatabaseProblem = {
  code: 'validation_error',
  detail: 'the request holds text the database cannot store (a NUL character)',
};

/** PostgreSQL cancelled a statement that ran past its `statement_timeout` (or that it was asked to cancel). */
const QUERY_CANCELED = '57014';

/**
 * The PostgreSQL driver's own time limits, which Prisma passes on as the driver raised them, without a code: by
 * their text. node-pg's `query_timeout` (no answer to a statement), pg-pool's connection timeout (no connection
 * free, or none made, in time) and node-pg's (a new connection's handshake not finished in time).
 * `test/database-timeout.e2e-spec.ts` says when a driver upgrade words them differently.
 */
const DRIVER_TIMEOUTS = new Set([
  'Query read timeout',
  'timeout exceeded when trying to connect',
  'Connection terminated due to connection timeout',
]);

/** The problem a Prisma (or driver) error stands for, or undefined for one that is an internal fault. */
export function databaseProblemOf(error: unknown): DatabaseProblem | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  if (error instanceof Error && DRIVER_TIMEOUTS.has(error.message)) return TIMED_OUT;
  const { name, code, meta } = error as { name?: unknown; code?: unknown; meta?: unknown };
  if (name !== 'PrismaClientKnownRequestError' || typeof code !== 'string') return undefined;
  const state = sqlStateOf(meta);
  if (state !== undefined && UNSTORABLE_TEXT_STATES.has(state)) return UNSTORABLE_TEXT;
  if (state === QUERY_CANCELED) return TIMED_OUT;
  return PRISMA_CODES[code] ?? ADAPTER_OUTAGES.get(adapterCauseOf(meta)?.kind);
}

/** Whether the error says the database did not answer in time: a statement cancelled, or no answer, no connection. */
export function isDatabaseTimeout(error: unknown): boolean {
  return databaseProblemOf(error) === TIMED_OUT;
}

/**
 * Whether the database refused a statement for the data it carried: PostgreSQL's data exceptions (class 22: a value
 * of the wrong type, out of range, too long) and integrity constraint violations (class 23), which sending the same
 * data again cannot change. Anything else (the database unreachable, slow, closing connections, busy, read-only,
 * without a table a migration adds) may pass, and is no refusal. Takes the driver adapter's error, as a statement sent
 * straight through it throws (`PrismaService.queryRows`), or Prisma's around it.
 */
export function isDataRefusal(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { name, cause, meta } = error as { name?: unknown; cause?: unknown; meta?: unknown };
  const state =
    name === 'DriverAdapterError'
      ? stateOf(cause as AdapterCause | undefined)
      : name === 'PrismaClientKnownRequestError'
        ? sqlStateOf(meta)
        : undefined;
  return state !== undefined && (state.startsWith('22') || state.startsWith('23'));
}

/** The SQLSTATE of the driver adapter's error that a Prisma error's `meta` carries. */
function sqlStateOf(meta: unknown): string | undefined {
  return stateOf(adapterCauseOf(meta));
}

/** The SQLSTATE in a driver adapter's reading of an error, when PostgreSQL answered with one. */
function stateOf(cause: AdapterCause | undefined): string | undefined {
  const state = cause?.originalCode ?? cause?.code;
  return typeof state === 'string' ? state : undefined;
}

/** What the driver adapter made of the driver's error (its `MappedError`), as far as this file reads it. */
interface AdapterCause {
  kind?: unknown;
  originalCode?: unknown;
  code?: unknown;
  message?: unknown;
  host?: unknown;
  port?: unknown;
  reason?: unknown;
}

function adapterCauseOf(meta: unknown): AdapterCause | undefined {
  return (meta as { driverAdapterError?: { cause?: AdapterCause } } | undefined)?.driverAdapterError?.cause;
}

/**
 * Why a query failed, in one line an operator can act on (readiness shows it): Prisma's message is several lines
 * naming the client's method, and says less than the driver adapter's reading of the error, which this words.
 * Nothing of DATABASE_URL but the server's host and port, which readiness shows anyway.
 */
export function databaseFailureReason(error: unknown): string {
  const cause =
    typeof error === 'object' && error !== null ? adapterCauseOf((error as { meta?: unknown }).meta) : undefined;
  switch (cause?.kind) {
    case 'DatabaseNotReachable': {
      const where = typeof cause.host === 'string' ? ` at ${cause.host}${portOf(cause.port)}` : '';
      return `the database server${where} cannot be reached`;
    }
    case 'ConnectionClosed':
      return 'the database server closed the connection';
    case 'SocketTimeout':
      return 'the database server did not answer in time';
    case 'TlsConnectionError':
      return `the TLS connection to the database server failed: ${oneLine(cause.reason)}`;
    case 'AuthenticationFailed':
      return "the database server refused DATABASE_URL's user name or password";
    case 'DatabaseAccessDenied':
      return "DATABASE_URL's user may not use its database";
    case 'DatabaseDoesNotExist':
      return "DATABASE_URL's database does not exist";
    case 'TooManyConnections':
      return 'the database server takes no more connections';
    case 'postgres':
      return `the database server answered ${String(cause.code)}: ${oneLine(cause.message)}`;
    default:
      return oneLine(error instanceof Error ? error.message : error);
  }
}

function portOf(port: unknown): string {
  return typeof port === 'number' || typeof port === 'string' ? `:${port}` : '';
}

const MAX_REASON_LENGTH = 300;

/**
 * The last line of a message that says something (Prisma puts what happened last), without the credentials of a URL
 * in it, and not endless.
 */
function oneLine(text: unknown): string {
  const lines = String(text)
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '');
  const line = (lines.at(-1) ?? 'no reason given').replace(/(\b[a-z][a-z0-9+.-]*:\/\/)[^/\s@]*@/gi, '$1');
  return line.length > MAX_REASON_LENGTH ? `${line.slice(0, MAX_REASON_LENGTH)}…` : line;
}
