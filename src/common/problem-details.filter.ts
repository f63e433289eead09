import {
  type ArgumentsHost,
  Catch,
  type ExceptionFilter,
  HttpException,
  HttpStatus,
  NotFoundException,
} from '@nestjs/common';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ZodValidationException } from 'nestjs-zod';
import type { Logger } from 'pino';
import { databaseProblemOf } from './database-errors';
import { DomainError, type ErrorCode, type FieldError } from './domain-error';
import { logInternalError } from './internal-error';
import { requestPathOf } from './request-path';
import { fieldErrorsOf } from './request-validation.pipe';
import { sendText } from './send-text';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  instance?: string;
  errors?: FieldError[];
  errorId?: string;
}

const CODE_OF_STATUS: Partial<Record<number, ErrorCode>> = {
  400: 'validation_error',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'not_found',
  409: 'conflict',
  412: 'precondition_failed',
  413: 'validation_error',
  415: 'validation_error',
  429: 'rate_limited',
  502: 'upstream_error',
  504: 'upstream_timeout',
  503: 'service_unavailable',
};

/**
 * Paths whose errors are answered in a shape of their own, and how (the official registry API's `{ error }`, the MCP
 * endpoints' JSON-RPC errors).
 */
export interface ErrorShape {
  /** Whether a request path (without its query) is answered in this shape. */
  covers(path: string): boolean;
  send(problem: ProblemDetails, response: ServerResponse): void;
}

/**
 * Turns every error that reaches HTTP into RFC 9457 problem+json, or into the shape of the path's `ErrorShape`:
 * route errors, and the router's (no route, an undecodable path) too, which reach no controller's filters.
 */
@Catch()
export class ProblemDetailsFilter implements ExceptionFilter {
  constructor(
    private readonly logger: Logger,
    private readonly shapes: readonly ErrorShape[] = [],
  ) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    this.respond(exception, http.getRequest<IncomingMessage>(), http.getResponse<ServerResponse>());
  }

  /** The answer to a failed request; also used by the POST lane (src/mcp/mcp-post-lane.ts). */
  respond(exception: unknown, request: IncomingMessage, response: ServerResponse): void {
    const problem = this.toProblem(exception, request);
    if (response.headersSent) {
      response.destroy();
      return;
    }
    if (exception instanceof DomainError && exception.headers) {
      for (const [name, value] of Object.entries(exception.headers)) response.setHeader(name, value);
    }
    const path = requestPathOf(request);
    const shape = this.shapes.find((candidate) => candidate.covers(path));
    if (shape) shape.send(problem, response);
    else sendText(response, problem.status, PROBLEM_CONTENT_TYPE, JSON.stringify(problem));
  }

  toProblem(exception: unknown, request: IncomingMessage): ProblemDetails {
    const instance = requestPathOf(request);
    if (exception instanceof DomainError) {
      return problem(exception.code, exception.status, exception.detail, instance, exception.fieldErrors);
    }
    if (exception instanceof ZodValidationException) {
      const errors = fieldErrorsOf(exception.getZodError(), 'body');
      return problem('validation_error', 400, 'the request is not valid', instance, errors);
    }
    const prisma = databaseProblemOf(exception);
    if (prisma) return problem(prisma.code, DomainError.statusOf(prisma.code), prisma.detail, instance);
    const status = statusOf(exception);
    if (status !== undefined && status < 500) {
      const code = CODE_OF_STATUS[status] ?? 'validation_error';
      const detail = isNoRoute(exception, request) ? NO_ROUTE : clientMessageOf(exception, status);
      return problem(code, status, detail, instance);
    }
    const errorId = logInternalError(this.logger, exception, request.id, 'unhandled error');
    const status5xx = status ?? 500;
    return {
      ...problem(CODE_OF_STATUS[status5xx] ?? 'server_error', status5xx, 'an internal error occurred', instance),
      errorId,
    };
  }
}

function problem(
  code: ErrorCode,
  status: number,
  detail: string,
  instance: string | undefined,
  errors?: FieldError[],
): ProblemDetails {
  return {
    type: `urn:mcp-gateway:problem:${code}`,
    title: (HttpStatus[status] ?? 'Error')
      .replace(/_/g, ' ')
      .toLowerCase()
      .replace(/^./, (c) => c.toUpperCase()),
    status,
    detail,
    code,
    ...(instance ? { instance } : {}),
    ...(errors?.length ? { errors } : {}),
  };
}

/** The detail of a 404 for a path no route takes, which says nothing of the path (the problem's `instance` does). */
const NO_ROUTE = 'no resource is served at this path';

/**
 * Whether `exception` is Nest's answer to a request no route takes (`Cannot GET /path…`): its message quotes the
 * whole request target, text of the client's choosing at any length, which the facade's `{ error }` (with no
 * `instance`) would carry back as it is.
 */
function isNoRoute(exception: unknown, request: IncomingMessage): boolean {
  return (
    exception instanceof NotFoundException &&
    exception.message === `Cannot ${request.method} ${(request as { originalUrl?: string }).originalUrl ?? request.url}`
  );
}

/** Status of an HttpException or of an error raised by Express middleware that sets `status`. */
function statusOf(exception: unknown): number | undefined {
  if (exception instanceof HttpException) return exception.getStatus();
  if (typeof exception === 'object' && exception !== null) {
    const status =
      (exception as { status?: unknown; statusCode?: unknown }).status ??
      (exception as { statusCode?: unknown }).statusCode;
    if (typeof status === 'number' && status >= 400 && status <= 599) return status;
  }
  return undefined;
}

function clientMessageOf(exception: unknown, status: number): string {
  if (exception instanceof HttpException) {
    const body = exception.getResponse();
    if (typeof body === 'string') return body;
    const message = (body as { message?: unknown }).message;
    if (typeof message === 'string') return message;
    if (Array.isArray(message)) return message.join('; ');
  }
  return (HttpStatus[status] ?? 'error').replace(/_/g, ' ').toLowerCase();
}
