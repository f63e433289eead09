import { STATUS_CODES } from 'node:http';
import { type ArgumentsHost, Catch, type ExceptionFilter, Injectable } from '@nestjs/common';
import type { Request, Response } from 'express';
import { PinoLogger } from 'nestjs-pino';
import { ProblemDetailsFilter } from '../common/problem-details.filter';
import type { RegistryErrorBody } from './official-registry.types';

/**
 * Errors of the official registry routes in the spec's shape (`{ error }`,
 * `application/json`) instead of our problem+json. What an error means (its
 * status, its field errors, the logged id of a 500) is decided by the global
 * filter, so both answer the same way.
 */
@Catch()
@Injectable()
export class RegistryFacadeErrorFilter implements ExceptionFilter {
  constructor(private readonly logger: PinoLogger) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const request = http.getRequest<Request>();
    const response = http.getResponse<Response>();
    const problem = new ProblemDetailsFilter(this.logger.logger).toProblem(exception, request);
    if (response.headersSent) {
      response.destroy();
      return;
    }
    const fieldErrors = problem.errors ?? [];
    const detail = fieldErrors.length
      ? fieldErrors.map((error) => `${error.field}: ${error.message}`).join('; ')
      : problem.detail;
    const body: RegistryErrorBody = {
      error: detail,
      title: STATUS_CODES[problem.status] ?? 'Error',
      status: problem.status,
      detail,
      ...(fieldErrors.length
        ? { errors: fieldErrors.map((error) => ({ location: `query.${error.field}`, message: error.message })) }
        : {}),
      ...(problem.errorId ? { errorId: problem.errorId } : {}),
    };
    response.status(problem.status).json(body);
  }
}
