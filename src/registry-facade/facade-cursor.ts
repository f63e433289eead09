import { SERVER_NAME } from '../registry/server.schema';

/** A position in the list `GET /v0.1/servers` answers, which is ordered by (name, version). */
export interface ListPosition {
  name: string;
  version: string;
}

const BASE64URL = /^[A-Za-z0-9_-]{4,800}$/;
const MAX_NAME = 200;
const MAX_VERSION = 255;

/** Opaque to clients: base64url of `[name, version]` of the last entry of a page. */
export function encodeListCursor(position: ListPosition): string {
  return Buffer.from(JSON.stringify([position.name, position.version]), 'utf8').toString('base64url');
}

/** The position a cursor names, or undefined when it is not one this API issued. */
export function decodeListCursor(cursor: string): ListPosition | undefined {
  if (!BASE64URL.test(cursor)) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (!Array.isArray(parsed) || parsed.length !== 2) return undefined;
  const [name, version] = parsed as unknown[];
  if (typeof name !== 'string' || typeof version !== 'string') return undefined;
  if (name.length > MAX_NAME || !SERVER_NAME.test(name)) return undefined;
  if (version.length === 0 || version.length > MAX_VERSION || version.includes('\u0000')) return undefined;
  // Only the canonical encoding is accepted, so one position has one cursor.
  if (encodeListCursor({ name, version }) !== cursor) return undefined;
  return { name, version };
}
