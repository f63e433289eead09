import type { Request } from 'express';
import { createLogger } from '../logging/logger';
import { ProblemDetailsFilter } from './problem-details.filter';

/** A Prisma known-request error as the client throws it, recognised by shape. */
function prismaError(code: string): Error {
  const error = new Error(`prisma ${code}`);
  error.name = 'PrismaClientKnownRequestError';
  Object.assign(error, { code });
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

  it('keeps any other Prisma error an opaque 500 with an error id', () => {
    const problem = filter.toProblem(prismaError('P2010'), request);
    expect(problem).toMatchObject({ status: 500, code: 'server_error', detail: 'an internal error occurred' });
    expect(problem).toHaveProperty('errorId');
  });
});
