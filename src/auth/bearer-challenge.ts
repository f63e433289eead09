import type { ServerResponse } from 'node:http';
import { sendText } from '../common/send-text';
import type { BearerErrorCode } from './auth-errors';

/** RFC 6750 §2.1: `Bearer` and a b64token (scheme case-insensitive). */
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

/** The token of a well-formed `Authorization: Bearer <token>` header, else undefined. */
export function bearerTokenOf(header: string): string | undefined {
  return BEARER.exec(header)?.[1];
}

export interface Challenge {
  /** Absent when the request carried no credentials (RFC 6750 §3.1). */
  error?: BearerErrorCode;
  description?: string;
  resourceMetadata: string;
  scopes: string[];
  /** Entra ID conditional access: the claims (JSON) a new token must carry; sent base64-encoded. */
  claims?: string;
}

/** `WWW-Authenticate: Bearer error="…", error_description="…", resource_metadata="…", scope="…"`. */
export function bearerChallenge(challenge: Challenge): string {
  const params: [string, string][] = [];
  if (challenge.error) params.push(['error', challenge.error]);
  if (challenge.error && challenge.description) params.push(['error_description', challenge.description]);
  params.push(['resource_metadata', challenge.resourceMetadata]);
  if (challenge.scopes.length) params.push(['scope', challenge.scopes.join(' ')]);
  if (challenge.claims) params.push(['claims', Buffer.from(challenge.claims, 'utf8').toString('base64')]);
  return `Bearer ${params.map(([name, value]) => `${name}="${quoted(value)}"`).join(', ')}`;
}

/**
 * Whether `header` uses the Bearer scheme at all (RFC 6750 §3: a request made with another scheme carries no bearer
 * credentials, and its refusal no error code).
 */
export function usesBearerScheme(header: string): boolean {
  return /^bearer(?: |$)/i.test(header);
}

/** A 400 (`invalid_request`), 401 or 403 with its challenge and a short OAuth-style JSON body (RFC 6750 §3.1). */
export function sendChallenge(res: ServerResponse, status: 400 | 401 | 403, challenge: Challenge): void {
  res.setHeader('www-authenticate', bearerChallenge(challenge));
  res.setHeader('cache-control', 'no-store');
  sendText(
    res,
    status,
    'application/json',
    JSON.stringify({
      error: challenge.error ?? 'unauthorized',
      error_description: challenge.description ?? 'an access token is required',
    }),
  );
}

/** RFC 6750 allows %x20-21 / %x23-5B / %x5D-7E in these values: anything else is replaced, quotes and backslashes too. */
function quoted(value: string): string {
  return value.replace(/[^\x20\x21\x23-\x5b\x5d-\x7e]/g, '?');
}
