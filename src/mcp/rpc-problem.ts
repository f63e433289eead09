import type { ServerResponse } from 'node:http';
import type { ProblemDetails } from '../common/problem-details.filter';
import { sendRpcError } from './http-replies';
import { ErrorCodes, type RequestId } from './jsonrpc';

/**
 * Answers `problem` as a JSON-RPC error, the answer of the MCP endpoints (`/mcp`, `/mcp/{slug}`), however the
 * request reached the exception filter: through Express (a query string, a trailing slash, a compressed body, GET,
 * DELETE) or from the POST lane (src/mcp/mcp-post-lane.ts). What the error means (its HTTP status, the error id of
 * an internal fault, logged with the request's id) is decided by the filter, as for `/api/v1`: an internal fault is
 * `-32603 Internal error` carrying that error id and nothing else of it, another 5xx (a store or database that does
 * not answer) `-32603` saying so, a refusal `-32600`. The error answers the request's id when the body is one
 * request, `null` otherwise (a batch, a GET, a DELETE, a body not read).
 */
export function sendRpcProblem(problem: ProblemDetails, response: ServerResponse): void {
  const id = requestIdOf((response.req as { body?: unknown } | undefined)?.body);
  if (problem.errorId !== undefined) {
    return sendRpcError(response, problem.status, id, ErrorCodes.internalError, 'Internal error', {
      errorId: problem.errorId,
    });
  }
  const code = problem.status >= 500 ? ErrorCodes.internalError : ErrorCodes.invalidRequest;
  const data = problem.errors ? { errors: problem.errors } : undefined;
  sendRpcError(response, problem.status, id, code, `${problem.title}: ${problem.detail}`, data);
}

/** The id of a body that is one JSON-RPC request; null for anything else. */
export function requestIdOf(body: unknown): RequestId | null {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return null;
  const id = (body as { id?: unknown }).id;
  return typeof id === 'string' || typeof id === 'number' ? id : null;
}
