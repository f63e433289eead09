import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { ProblemDetails } from '../common/problem-details.filter';
import { sendText } from '../common/send-text';
import type { RegistryErrorBody } from './official-registry.types';

/**
 * Errors of the official registry routes in the spec's shape (`{ error }`, `application/json`) instead of our
 * problem+json. The global filter (src/common/problem-details.filter.ts) answers with this every error under the
 * facade's prefix, the router's (an unknown path, a wrong method, a path that is not valid percent-encoding) as
 * well as the routes': what an error means (its status, its field errors, the logged id of a 500) is decided
 * there, so both shapes say the same.
 */
export function registryErrorBody(problem: ProblemDetails): RegistryErrorBody {
  const fieldErrors = problem.errors ?? [];
  const detail = fieldErrors.length
    ? fieldErrors.map((error) => `${error.field}: ${error.message}`).join('; ')
    : problem.detail;
  return {
    error: detail,
    title: STATUS_CODES[problem.status] ?? 'Error',
    status: problem.status,
    detail,
    ...(fieldErrors.length
      ? { errors: fieldErrors.map((error) => ({ location: `query.${error.field}`, message: error.message })) }
      : {}),
    ...(problem.errorId ? { errorId: problem.errorId } : {}),
  };
}

/** Answers `problem` as the official registry would. */
export function sendRegistryError(problem: ProblemDetails, response: ServerResponse): void {
  sendText(response, problem.status, 'application/json', JSON.stringify(registryErrorBody(problem)));
}
