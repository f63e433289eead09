import { ITEM_KINDS, type ItemKind } from './fingerprint';
import type { SearchPosition } from './discovery.repository';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
/** Long enough for a resource URI of a few kilobytes, short enough for a query string. */
export const MAX_CURSOR_LENGTH = 12_000;

/** Opaque to clients: base64url of the JSON array `[gatewayName, serverId, kind, name]`. */
export function encodeSearchCursor(position: SearchPosition): string {
  const { gatewayName, serverId, kind, name } = position;
  return Buffer.from(JSON.stringify([gatewayName, serverId, kind, name]), 'utf8').toString('base64url');
}

/** The position a cursor names, or undefined when it is not one this API issued. */
export function decodeSearchCursor(cursor: string): SearchPosition | undefined {
  if (cursor.length > MAX_CURSOR_LENGTH || !BASE64URL.test(cursor)) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (!Array.isArray(parsed) || parsed.length !== 4 || !parsed.every((part) => typeof part === 'string')) {
    return undefined;
  }
  const [gatewayName, serverId, kind, name] = parsed as [string, string, string, string];
  // PostgreSQL text cannot hold NUL, so no stored row has one; passing it on would fail the query.
  if ([gatewayName, name].some((part) => part.length === 0 || part.includes('\u0000'))) return undefined;
  if (!UUID.test(serverId) || !(ITEM_KINDS as readonly string[]).includes(kind)) return undefined;
  return { gatewayName, serverId, kind: kind as ItemKind, name };
}
