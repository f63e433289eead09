import type { IncomingMessage, ServerResponse } from 'node:http';
import { NotFoundException } from '@nestjs/common';
import type { Logger } from 'pino';
import { DomainError } from '../common/domain-error';
import { ProblemDetailsFilter } from '../common/problem-details.filter';
import { isUnder } from '../common/request-path';
import { sendRegistryError } from './registry-facade-error.filter';

function run(exception: unknown, url = '/api/v1/registry/v0.1/servers?limit=0') {
  const error = jest.fn();
  const logger = { error } as unknown as Logger;
  const sent: { status?: number; type?: string; body?: unknown } = {};
  const headers: Record<string, unknown> = {};
  const response = {
    headersSent: false,
    statusCode: 200,
    setHeader(name: string, value: unknown) {
      headers[name.toLowerCase()] = value;
    },
    end(text: string) {
      sent.status = response.statusCode;
      sent.type = String(headers['content-type']);
      sent.body = JSON.parse(text);
    },
  } as unknown as ServerResponse;
  const request = { originalUrl: url, id: 'req-1' } as unknown as IncomingMessage;
  const filter = new ProblemDetailsFilter(logger, [
    { covers: isUnder('/api/v1/registry/v0.1'), send: sendRegistryError },
  ]);
  filter.respond(exception, request, response);
  return { ...sent, error };
}

describe('sendRegistryError, as the global filter uses it under the facade prefix', () => {
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

  it('answers application/json under the prefix only, problem+json beside it', () => {
    const notFound = new DomainError('not_found', 'Server not found');
    expect(run(notFound, '/api/v1/registry/v0.1').type).toMatch(/^application\/json/);
    expect(run(notFound, '/api/v1/registry/v0.1/servers/x/versions').type).toMatch(/^application\/json/);
    expect(run(notFound, '/api/v1/registry/v0.10/servers')).toMatchObject({
      type: expect.stringMatching(/^application\/problem\+json/),
      body: { code: 'not_found' },
    });
    expect(run(notFound, '/api/v1/servers').type).toMatch(/^application\/problem\+json/);
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
