import type { ArgumentsHost } from '@nestjs/common';
import { NotFoundException } from '@nestjs/common';
import type { PinoLogger } from 'nestjs-pino';
import { DomainError } from '../common/domain-error';
import { RegistryFacadeErrorFilter } from './registry-facade-error.filter';

function run(exception: unknown) {
  const error = jest.fn();
  const logger = { logger: { error } } as unknown as PinoLogger;
  const sent: { status?: number; body?: unknown } = {};
  const response = {
    headersSent: false,
    status(code: number) {
      sent.status = code;
      return this;
    },
    json(body: unknown) {
      sent.body = body;
      return this;
    },
  };
  const request = { originalUrl: '/api/v1/registry/v0.1/servers?limit=0', id: 'req-1' };
  const host = {
    switchToHttp: () => ({ getRequest: () => request, getResponse: () => response }),
  } as unknown as ArgumentsHost;
  new RegistryFacadeErrorFilter(logger).catch(exception, host);
  return { ...sent, error };
}

describe('RegistryFacadeErrorFilter', () => {
  it('answers a not-found in the spec shape', () => {
    expect(run(new DomainError('not_found', 'Server not found'))).toMatchObject({
      status: 404,
      body: { error: 'Server not found', title: 'Not Found', status: 404, detail: 'Server not found' },
    });
  });

  it('names the invalid query parameters', () => {
    const { status, body } = run(
      new DomainError('validation_error', 'the request is not valid', [{ field: 'limit', message: 'too big' }]),
    );
    expect(status).toBe(400);
    expect(body).toEqual({
      error: 'limit: too big',
      title: 'Bad Request',
      status: 400,
      detail: 'limit: too big',
      errors: [{ location: 'query.limit', message: 'too big' }],
    });
  });

  it('keeps framework 4xx as they are', () => {
    expect(run(new NotFoundException()).status).toBe(404);
  });

  it('answers an unexpected fault with an opaque 500 whose id is in the log', () => {
    const { status, body, error } = run(new Error('connection refused to 10.0.0.7'));
    expect(status).toBe(500);
    expect(body).toEqual({
      error: 'an internal error occurred',
      title: 'Internal Server Error',
      status: 500,
      detail: 'an internal error occurred',
      errorId: expect.stringMatching(/^[0-9a-f-]{36}$/),
    });
    expect(JSON.stringify(body)).not.toContain('10.0.0.7');
    expect(error).toHaveBeenCalledWith(
      expect.objectContaining({ errorId: (body as { errorId: string }).errorId }),
      'unhandled error',
    );
  });
});
