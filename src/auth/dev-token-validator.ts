import { jwtVerify } from 'jose';
import type { AuthConfig } from '../config/config';
import { TokenRejection } from './auth-errors';
import { principalFromClaims } from './claims';
import { DEV_AUDIENCE, DEV_ISSUER, type DevSigningKey } from './dev-signing-key';
import type { VerifiedToken } from './principal';
import { decodeUnverified, rejectionOf, requireRs256, type TokenValidator } from './token-verifier';

/** `AUTH_MODE=dev`: tokens signed by the local key in DATA_DIR (from `mcp-gateway token`), same claim rules. */
export class DevTokenValidator implements TokenValidator {
  readonly mode = 'dev';

  constructor(
    private readonly key: DevSigningKey,
    private readonly auth: Pick<AuthConfig, 'clockToleranceMs'>,
  ) {}

  async validate(token: string): Promise<VerifiedToken> {
    const { header } = decodeUnverified(token);
    const kid = requireRs256(header);
    if (kid !== this.key.kid) throw new TokenRejection('invalid_token', 'the token signing key is not known');
    let verified;
    try {
      verified = await jwtVerify(token, this.key.publicKey, {
        algorithms: ['RS256'],
        issuer: DEV_ISSUER,
        audience: DEV_AUDIENCE,
        clockTolerance: Math.round(this.auth.clockToleranceMs / 1000),
        requiredClaims: ['exp'],
      });
    } catch (error) {
      throw rejectionOf(error);
    }
    return { principal: principalFromClaims(verified.payload), expiresAt: verified.payload.exp as number, token };
  }
}
