/** Stable codes of `/api/v1` errors; part of the public contract. */
export type ErrorCode =
  | 'validation_error'
  | 'not_found'
  | 'conflict'
  | 'precondition_failed'
  | 'unauthorized'
  | 'forbidden'
  | 'rate_limited'
  | 'upstream_error'
  | 'upstream_timeout'
  | 'service_unavailable'
  | 'server_error';

export interface FieldError {
  field: string;
  message: string;
}

const STATUS_OF: Record<ErrorCode, number> = {
  validation_error: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  precondition_failed: 412,
  rate_limited: 429,
  server_error: 500,
  upstream_error: 502,
  upstream_timeout: 504,
  service_unavailable: 503,
};

/** Every stable code, in the order of their statuses. */
export const ERROR_CODES = (Object.keys(STATUS_OF) as ErrorCode[]).sort((a, b) => STATUS_OF[a] - STATUS_OF[b]);

/**
 * An error a service throws on purpose. It crosses the wire as problem+json
 * with its code and detail; anything else thrown becomes an opaque 500.
 */
export class DomainError extends Error {
  readonly status: number;

  constructor(
    readonly code: ErrorCode,
    readonly detail: string,
    readonly fieldErrors?: FieldError[],
    /** Response headers the answer must carry (`Retry-After` on `rate_limited`). */
    readonly headers?: Record<string, string>,
  ) {
    super(detail);
    this.name = 'DomainError';
    this.status = STATUS_OF[code];
  }

  static statusOf(code: ErrorCode): number {
    return STATUS_OF[code];
  }
}
