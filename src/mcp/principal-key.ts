import type { Principal } from '../auth/principal';

/**
 * Each principal's key, made once: a verified token's principal is one frozen object for as long as its token is
 * cached (src/auth/token-verifier.ts), and every relayed call asks for its key (its session's owner).
 */
const KEYS = new WeakMap<Principal, string>();

/** Who owns a session: the user (`tid:oid`), or the application itself for app-only callers (`tid:clientId`). */
export function principalKeyOf(principal: Principal): string {
  let key = KEYS.get(principal);
  if (key === undefined) {
    key = principal.appOnly ? `${principal.tid}:app:${principal.clientId}` : `${principal.tid}:${principal.oid}`;
    KEYS.set(principal, key);
  }
  return key;
}
