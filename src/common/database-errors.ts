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
 * PostgreSQL refusing text it cannot store: NUL in text (22021) or in jsonb (22P05). Validation refuses such
 * text first; this keeps a field it missed a 400 rather than a 500. Prisma reports these under whichever
 * code fits the query (P2010 for raw SQL, P2039 for a model query), with the SQLSTATE in the adapter's cause.
 */
const UNSTORABLE_TEXT_STATES = new Set(['22021', '22P05']);
const UNSTORABLE_TEXT: DatabaseProblem = {
  code: 'validation_error',
  detail: 'the request holds text the database cannot store (a NUL character)',
};

/** The problem a Prisma error stands for, or undefined for one that is an internal fault. */
export function databaseProblemOf(error: unknown): DatabaseProblem | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const { name, code, meta } = error as { name?: unknown; code?: unknown; meta?: unknown };
  if (name !== 'PrismaClientKnownRequestError' || typeof code !== 'string') return undefined;
  const state = sqlStateOf(meta);
  if (state !== undefined && UNSTORABLE_TEXT_STATES.has(state)) return UNSTORABLE_TEXT;
  return PRISMA_CODES[code];
}

function sqlStateOf(meta: unknown): string | undefined {
  const cause = (meta as { driverAdapterError?: { cause?: { originalCode?: unknown; code?: unknown } } } | undefined)
    ?.driverAdapterError?.cause;
  const state = cause?.originalCode ?? cause?.code;
  return typeof state === 'string' ? state : undefined;
}
