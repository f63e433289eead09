/** A position in a list ordered by (time, id): what the registry's and the audit trail's cursors name. */
export interface TimeIdPosition {
  at: Date;
  id: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const BASE64URL = /^[A-Za-z0-9_-]{1,200}$/;
const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** Opaque to clients: base64url of `time|id`. */
export function encodeTimeIdCursor(position: TimeIdPosition): string {
  return Buffer.from(`${position.at.toISOString()}|${position.id}`, 'utf8').toString('base64url');
}

/** The position a cursor names, or undefined when it is not one this API issued. */
export function decodeTimeIdCursor(cursor: string): TimeIdPosition | undefined {
  if (!BASE64URL.test(cursor)) return undefined;
  const [time, id, ...rest] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  if (rest.length > 0 || !time || !id || !ISO_MS.test(time) || !UUID.test(id)) return undefined;
  const at = new Date(time);
  // Year 0 is a valid ISO 8601 year but no PostgreSQL one: the query would fail.
  if (Number.isNaN(at.getTime()) || at.toISOString() !== time || at.getUTCFullYear() < 1) return undefined;
  return { at, id };
}
