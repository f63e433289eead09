import { randomUUID } from 'node:crypto';

/** Where an internal fault is logged: a pino logger, or Nest's `PinoLogger` around one. */
export interface ErrorLogger {
  error(fields: object, message: string): void;
}

/**
 * Logs an internal fault (the error under pino's `err`, beside the request's id and any `fields`) under a new error
 * id, and returns that id: all an answer may say of the fault, and all an operator given the answer needs to find
 * the line.
 */
export function logInternalError(
  logger: ErrorLogger,
  error: unknown,
  reqId: unknown,
  message: string,
  fields?: Record<string, unknown>,
): string {
  const errorId = randomUUID();
  logger.error({ ...fields, err: error, errorId, reqId }, message);
  return errorId;
}
