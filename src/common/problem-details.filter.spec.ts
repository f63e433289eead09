import type { Request } from 'express';
import { createLogger } from '../logging/logger';
import { ProblemDetailsFilter } from './problem-details.filter';

/** A Prisma known-request error as the client throws it, recognised by shape. */
function prismaError(code: string, sqlState?: string): Error {
  const error = new Error(`prisma ${code}`);
  error.name = 'PrismaClientKnownRequestError';
  const cause = { originalCode: sqlState, kind: 'postgres', code: sqlState, message: 'invalid byte sequence' };
  Object.assign(error, { code, meta: sqlState ? { driverAdapterError: { name: 'DriverAdapterError', cause } } : {} });
  return error;
}

describe('ProblemDetailsFilter and Prisma errors', () => {
  const filter = new ProblemDetailsFilter(createLogger({ logLevel: 'silent' }));
  const request = { originalUrl: '/api/v1/servers', id: 'r1' } as unknown as Request;

  it.each([
    ['P2002', 409, 'conflict'],
    ['P2025', 404, 'not_found'],
    ['P2003', 400, 'validation_error'],
    ['P2024', 503, 'service_unavailable'],
    ['P2028', 503, 'service_unavailable'],
  ])('maps %s to %i %s, saying nothing of the query', (code, status, problemCode) => {
    const problem = filter.toProblem(prismaError(code), request);
    expect(problem).toMatchObject({ status, code: problemCode, instance: '/api/v1/servers' });
    expect(problem.detail).not.toContain('prisma');
    expect(problem).not.toHaveProperty('errorId');
  });

  it.each([
    ['P2039', '22021'],
    ['P2010', '22021'],
    ['P2010', '22P05'],
  ])('maps %s with SQLSTATE %s (text the database cannot store) to 400', (code, sqlState) => {
    const problem = filter.toProblem(prismaError(code, sqlState), request);
    expect(problem).toMatchObject({ status: 400, code: 'validation_error' });
    expect(problem.detail).not.toMatch(/prisma|byte sequence/);
    expect(problem).not.toHaveProperty('errorId');
  });

  it.each(['P2010', 'P2039'])(
    'maps %s with SQLSTATE 57014 (a statement PostgreSQL cancelled past its time) to 503',
    (code) => {
      const problem = filter.toProblem(prismaError(code, '57014'), request);
      expect(problem).toMatchObject({
        status: 503,
        code: 'service_unavailable',
        detail: expect.stringMatching(/time/),
      });
      expect(problem).not.toHaveProperty('errorId');
    },
  );

  it.each([
    'Query read timeout',
    'timeout exceeded when trying to connect',
    'Connection terminated due to connection timeout',
  ])('maps the PostgreSQL driver giving up ("%s") to 503', (message) => {
    const problem = filter.toProblem(new Error(message), request);
    expect(problem).toMatchObject({ status: 503, code: 'service_unavailable', detail: expect.stringMatching(/time/) });
    expect(problem).not.toHaveProperty('errorId');
  });

  it('keeps another SQLSTATE under P2010 an opaque 500', () => {
    const problem = filter.toProblem(prismaError('P2010', '42P01'), request);
    expect(problem).toMatchObject({ status: 500, code: 'server_error' });
  });

  it('keeps any other Prisma error an opaque 500 with an error id', () => {
    const problem = filter.toProblem(prismaError('P2010'), request);
    expect(problem).toMatchObject({ status: 500, code: 'server_error', detail: 'an internal error occurred' });
    expect(problem).toHaveProperty('errorId');
  });
});
