import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';

/**
 * Logs an internal fault (the error under pino's `err`, beside the request's id) under a new error id, and returns
 * that id: all an answer may say of the fault, and all an operator given the answer needs to find the line.
 */
export function logInternalError(logger: Logger, error: unknown, reqId: unknown, message: string): string {
  const errorId = randomUUID();
  logger.error({ err: error, errorId, reqId }, message);
  return errorId;
}
