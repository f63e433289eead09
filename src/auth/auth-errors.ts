/** RFC 6750 §3.1 error codes a `/mcp` refusal carries. */
export type BearerErrorCode = 'invalid_request' | 'invalid_token' | 'insufficient_scope' | 'insufficient_claims';

/**
 * A bearer credential the gateway refuses. `description` crosses the wire in
 * `WWW-Authenticate` (short, printable ASCII, nothing from the token); `reason`
 * is for the log only.
 */
export class TokenRejection extends Error {
  constructor(
    readonly error: Exclude<BearerErrorCode, 'insufficient_scope' | 'insufficient_claims'>,
    readonly description: string,
    readonly reason: string = description,
  ) {
    super(description);
    this.name = 'TokenRejection';
  }
}

/**
 * The gateway cannot verify tokens right now (signing keys unreachable): 503, not 401. `retryAfterSeconds` is how
 * long until it tries again (the `Retry-After` to send), whole seconds, at least 1.
 */
export class VerificationUnavailable extends Error {
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(message);
    this.name = 'VerificationUnavailable';
  }
}
