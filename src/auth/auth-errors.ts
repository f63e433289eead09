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

/** The gateway cannot verify tokens right now (signing keys unreachable, Entra not configured): 503, not 401. */
export class VerificationUnavailable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VerificationUnavailable';
  }
}
