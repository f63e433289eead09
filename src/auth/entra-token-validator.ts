import { jwtVerify } from 'jose';
import type { AuthConfig } from '../config/config';
import { TokenRejection } from './auth-errors';
import { GUID, principalFromClaims } from './claims';
import type { VerifiedToken } from './principal';
import { type SigningKeyCache, UnknownSigningKey } from './signing-key-cache';
import { decodeUnverified, rejectionOf, requireRs256, type TokenValidator } from './token-verifier';

/** Issuer of v1.0 access tokens, whatever the authority host. */
export const V1_ISSUER_HOST = 'https://sts.windows.net';

/**
 * Microsoft's access-token rules: RS256 with a key from the token's tenant's
 * JWKS, `iss` exactly that tenant's issuer, `tid` allowed, `aud` ours, `exp`
 * and `nbf` within the clock tolerance, `scp` or `roles` present.
 */
export class EntraTokenValidator implements TokenValidator {
  readonly mode = 'entra';
  readonly unavailableReason?: string;
  private readonly allowedTenants: Set<string>;

  constructor(
    private readonly auth: AuthConfig,
    private readonly keys: SigningKeyCache,
  ) {
    this.allowedTenants = new Set(auth.allowedTenants.map((tid) => tid.toLowerCase()));
    if (!auth.tenantId || !auth.clientId) {
      this.unavailableReason =
        'Entra ID is not configured on this gateway (AZURE_TENANT_ID and AZURE_CLIENT_ID are required with AUTH_MODE=entra)';
    }
  }

  get signingKeys(): SigningKeyCache {
    return this.keys;
  }

  async validate(token: string): Promise<VerifiedToken> {
    const { header, payload } = decodeUnverified(token);
    const kid = requireRs256(header);
    // Tenant and issuer are checked before any key is fetched: keys are only ever fetched for allowed tenants.
    const tid = typeof payload.tid === 'string' ? payload.tid : undefined;
    if (!tid || !GUID.test(tid)) throw new TokenRejection('invalid_token', 'the token has no valid tid claim');
    if (!this.allowedTenants.has(tid.toLowerCase())) {
      throw new TokenRejection('invalid_token', 'the token tenant is not allowed', `tenant ${tid} not allowed`);
    }
    const { issuer, keysUrl } = this.issuerOf(tid, payload.iss);
    let key;
    try {
      key = await this.keys.keyFor(keysUrl, kid);
    } catch (error) {
      if (error instanceof UnknownSigningKey) {
        throw new TokenRejection('invalid_token', 'the token signing key is not known', `kid ${kid} not in ${keysUrl}`);
      }
      throw error;
    }
    let verified;
    try {
      verified = await jwtVerify(token, key, {
        algorithms: ['RS256'],
        issuer,
        audience: this.auth.audiences,
        clockTolerance: Math.round(this.auth.clockToleranceMs / 1000),
        requiredClaims: ['exp'],
      });
    } catch (error) {
      throw rejectionOf(error);
    }
    const principal = principalFromClaims(verified.payload);
    return { principal, expiresAt: verified.payload.exp as number, token };
  }

  private issuerOf(tid: string, iss: unknown): { issuer: string; keysUrl: string } {
    const host = this.auth.authorityHost;
    const v2 = `${host}/${tid}/v2.0`;
    if (iss === v2) return { issuer: v2, keysUrl: `${host}/${tid}/discovery/v2.0/keys` };
    const v1 = `${V1_ISSUER_HOST}/${tid}/`;
    if (this.auth.acceptV1Tokens && iss === v1) return { issuer: v1, keysUrl: `${host}/${tid}/discovery/keys` };
    const named = typeof iss === 'string' ? this.issuerTenant(iss) : undefined;
    if (named !== undefined && named.toLowerCase() !== tid.toLowerCase()) {
      throw new TokenRejection(
        'invalid_token',
        'the token issuer does not match its tenant',
        `iss ${String(iss)}, tid ${tid}`,
      );
    }
    throw new TokenRejection('invalid_token', 'the token issuer is not accepted', `iss ${String(iss)}`);
  }

  /** The tenant an issuer of an accepted shape names, if any. */
  private issuerTenant(iss: string): string | undefined {
    const host = this.auth.authorityHost;
    for (const [prefix, suffix] of [
      [`${host}/`, '/v2.0'],
      [`${V1_ISSUER_HOST}/`, '/'],
    ] as const) {
      if (iss.startsWith(prefix) && iss.endsWith(suffix)) {
        const tenant = iss.slice(prefix.length, iss.length - suffix.length);
        if (GUID.test(tenant)) return tenant;
      }
    }
    return undefined;
  }
}
