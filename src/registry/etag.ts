import { createHash } from 'node:crypto';

/** Strong ETag of one revision of one server. */
export function etagOf(id: string, revision: number): string {
  const digest = createHash('sha256').update(`${id}:${revision}`).digest('base64url').slice(0, 22);
  return `"${digest}"`;
}

/** `If-Match` (RFC 9110 13.1.1): absent, `*`, or a list holding the current tag under strong comparison. */
export function ifMatchHolds(header: string | undefined, etag: string): boolean {
  if (header === undefined) return true;
  const tags = parseTagList(header);
  return tags.includes('*') || tags.includes(etag);
}

/** `If-None-Match` (RFC 9110 13.1.2) on a read: true when the client's copy is current (weak comparison). */
export function ifNoneMatchHits(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  const tags = parseTagList(header).map((tag) => tag.replace(/^W\//, ''));
  return tags.includes('*') || tags.includes(etag);
}

function parseTagList(header: string): string[] {
  return header
    .split(',')
    .map((tag) => tag.trim())
    .filter(Boolean);
}
