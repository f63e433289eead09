import type { AuditPosition } from './audit.repository';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const BASE64URL = /^[A-Za-z0-9_-]{1,200}$/;
const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** Opaque to clients: base64url of `at|id` of the last record of a page (the list is newest first). */
export function encodeAuditCursor(position: AuditPosition): string {
  return Buffer.from(`${position.at.toISOString()}|${position.id}`, 'utf8').toString('base64url');
}

/** The position a cursor names, or undefined when it is not one this API issued. */
export function decodeAuditCursor(cursor: string): AuditPosition | undefined {
  if (!BASE64URL.test(cursor)) return undefined;
  const [time, id, ...rest] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  if (rest.length > 0 || !time || !id || !ISO_MS.test(time) || !UUID.test(id)) return undefined;
  const at = new Date(time);
  if (Number.isNaN(at.getTime()) || at.toISOString() !== time) return undefined;
  return { at, id };
}
