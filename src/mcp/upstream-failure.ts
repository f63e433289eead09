import { type ErrorLogger, logInternalError } from '../common/internal-error';
import { classifyUpstreamError, type UpstreamErrorKind } from '../upstream/upstream-error';

/** What a client is told of a request an upstream failed: a JSON-RPC error's message and data. */
export interface UpstreamFailure {
  kind: UpstreamErrorKind;
  /** The error's message. */
  message: string;
  /** What the classification says the upstream did (the claims challenge is worded from it), for a classified one. */
  reason: string;
  data: { server: string; kind: UpstreamErrorKind; errorId?: string };
}

interface FailureLogger extends ErrorLogger {
  warn(fields: object, message: string): void;
}

/**
 * Logs a request an upstream failed, once, and says what its answer may tell the client. A classified failure says
 * what the upstream did (refused, timed out, answered 5xx...), which the client needs. An unclassified one may as
 * well be a fault of the gateway's own code, whose message is not the client's to read: it is logged as an internal
 * fault, with the request's id, and the answer carries that line's error id instead.
 */
export function upstreamFailureOf(
  logger: FailureLogger,
  slug: string,
  error: unknown,
  reqId: unknown,
): UpstreamFailure {
  const { kind, message } = classifyUpstreamError(error);
  if (kind === 'other') {
    const errorId = logInternalError(logger, error, reqId, 'relaying to an upstream failed', { server: slug });
    return { kind, message: 'Internal error', reason: 'internal error', data: { server: slug, kind, errorId } };
  }
  logger.warn({ server: slug, kind, reason: message }, 'upstream request failed');
  return { kind, message: `Upstream ${slug} failed: ${message}`, reason: message, data: { server: slug, kind } };
}
