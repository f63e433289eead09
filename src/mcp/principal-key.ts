import type { Principal } from '../auth/principal';

/** Who owns a session: the user (`tid:oid`), or the application itself for app-only callers (`tid:clientId`). */
export function principalKeyOf(principal: Principal): string {
  return principal.appOnly ? `${principal.tid}:app:${principal.clientId}` : `${principal.tid}:${principal.oid}`;
}
