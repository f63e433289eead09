import { DriverAdapterError } from '@prisma/driver-adapter-utils';
import { databaseFailureReason, databaseProblemOf, isDataRefusal } from './database-errors';

/** A failed `$queryRaw` as Prisma throws it over a driver adapter: its message as Prisma words it, several lines. */
function queryError(cause: Record<string, unknown>, lastLine = 'Raw query failed. Code: `N/A`.'): Error {
  const error = new Error(`\nInvalid \`prisma.$queryRaw()\` invocation:\n\n\n${lastLine}`);
  error.name = 'PrismaClientKnownRequestError';
  Object.assign(error, { code: 'P2010', meta: { driverAdapterError: { name: 'DriverAdapterError', cause } } });
  return error;
}

describe('databaseFailureReason', () => {
  it.each([
    [
      { kind: 'DatabaseNotReachable', host: 'db.internal', port: 5432 },
      'the database server at db.internal:5432 cannot be reached',
    ],
    [{ kind: 'ConnectionClosed' }, 'the database server closed the connection'],
    [
      { kind: 'AuthenticationFailed', user: 'gateway' },
      "the database server refused DATABASE_URL's user name or password",
    ],
    [{ kind: 'DatabaseDoesNotExist', db: 'gateway' }, "DATABASE_URL's database does not exist"],
    [
      { kind: 'postgres', code: '57P03', severity: 'FATAL', message: 'the database system is starting up' },
      'the database server answered 57P03: the database system is starting up',
    ],
  ])('words what the driver adapter read in %j as one line', (cause, reason) => {
    expect(databaseFailureReason(queryError(cause))).toBe(reason);
  });

  it('keeps the last line of anything else, without the credentials of a URL in it', () => {
    const error = queryError(
      { kind: 'GenericJs', id: 1 },
      'could not open postgresql://gateway:s3cret@db.internal:5432/gateway',
    );
    expect(databaseFailureReason(error)).toBe('could not open postgresql://db.internal:5432/gateway');
    expect(databaseFailureReason(new Error('no answer within 2000 ms'))).toBe('no answer within 2000 ms');
  });
});

describe('databaseProblemOf', () => {
  it.each(['DatabaseNotReachable', 'ConnectionClosed'])(
    'reads a raw query failed because the database is away (P2010, %s) as the outage it is',
    (kind) => {
      expect(databaseProblemOf(queryError({ kind }))).toEqual({
        code: 'service_unavailable',
        detail: 'the database does not answer; try again shortly',
      });
    },
  );

  it('leaves a raw query PostgreSQL refused (P2010, a syntax error) an internal fault', () => {
    expect(databaseProblemOf(queryError({ kind: 'postgres', code: '42601', message: 'syntax error' }))).toBeUndefined();
  });
});

describe('isDataRefusal', () => {
  it('is a data exception or a constraint violation PostgreSQL answered with', () => {
    // As @prisma/adapter-pg reports an error PostgreSQL answered with.
    const answered = (originalCode: string) =>
      new DriverAdapterError({
        kind: 'postgres',
        code: originalCode,
        severity: 'ERROR',
        message: 'refused',
        detail: undefined,
        column: undefined,
        hint: undefined,
        originalCode,
      });
    for (const state of ['22P02', '22001', '22008', '22P05', '23502', '23505', '23514']) {
      expect(isDataRefusal(answered(state))).toBe(true);
    }
    // Busy, shutting down, read-only after a failover, a table a migration adds, no permission: they may pass.
    for (const state of ['53300', '57P01', '25006', '42P01', '42501', '40001', '57014']) {
      expect(isDataRefusal(answered(state))).toBe(false);
    }
  });

  it('is never the database away or slow', () => {
    expect(isDataRefusal(new DriverAdapterError({ kind: 'DatabaseNotReachable', host: '127.0.0.1', port: 5432 }))).toBe(
      false,
    );
    expect(isDataRefusal(new DriverAdapterError({ kind: 'ConnectionClosed' }))).toBe(false);
    expect(isDataRefusal(new Error('audit insert took longer than 10000 ms'))).toBe(false);
    expect(isDataRefusal(Object.assign(new Error('Connection terminated unexpectedly'), { code: '22P02' }))).toBe(
      false,
    );
    expect(isDataRefusal(undefined)).toBe(false);
  });
});
