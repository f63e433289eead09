import type { JWTPayload } from 'jose';
import { TokenRejection } from './auth-errors';
import type { Principal } from './principal';

export const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The principal of a token whose signature and registered claims are already
 * verified. Refuses what is not an access token for a known caller.
 */
export function principalFromClaims(payload: JWTPayload): Principal {
  const tid = stringClaim(payload, 'tid');
  const oid = stringClaim(payload, 'oid');
  if (!tid || !GUID.test(tid)) throw new TokenRejection('invalid_token', 'the token has no valid tid claim');
  if (!oid) throw new TokenRejection('invalid_token', 'the token has no oid claim');
  const clientId = stringClaim(payload, 'azp') ?? stringClaim(payload, 'appid');
  if (!clientId) throw new TokenRejection('invalid_token', 'the token names no client (azp or appid)');

  const scp = payload.scp;
  if (scp !== undefined && typeof scp !== 'string') {
    throw new TokenRejection('invalid_token', 'the token has a malformed scp claim');
  }
  const scopes = (scp ?? '').split(' ').filter((scope) => scope.length > 0);
  const roles = stringList(payload, 'roles');
  if (roles === undefined) throw new TokenRejection('invalid_token', 'the token has a malformed roles claim');
  // ID tokens and tokens for other APIs' flows carry neither: they are not access tokens for us.
  if (scopes.length === 0 && roles.length === 0) {
    throw new TokenRejection('invalid_token', 'the token carries neither scp nor roles: not an access token');
  }
  const groups = payload.groups === undefined ? undefined : stringList(payload, 'groups');
  const name =
    stringClaim(payload, 'name') ??
    stringClaim(payload, 'preferred_username') ??
    stringClaim(payload, 'upn') ??
    stringClaim(payload, 'unique_name') ??
    stringClaim(payload, 'email');
  return {
    tid: tid.toLowerCase(),
    oid: oid.toLowerCase(),
    clientId,
    // Delegated Entra tokens always carry scp; `idtyp` (an optional claim) says so explicitly when configured.
    appOnly: payload.idtyp === 'app' || scopes.length === 0,
    scopes,
    roles,
    ...(groups ? { groups } : {}),
    ...(name ? { name } : {}),
  };
}

function stringClaim(payload: JWTPayload, claim: string): string | undefined {
  const value = payload[claim];
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

/** A string array claim; `[]` when absent, `undefined` when malformed. */
function stringList(payload: JWTPayload, claim: string): string[] | undefined {
  const value = payload[claim];
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((item): item is string => typeof item === 'string')) return undefined;
  return value;
}
