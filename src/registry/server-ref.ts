import { SERVER_NAME, SERVER_SLUG } from './server.schema';

/** How a path names a server: by id, slug, or (URL-encoded) name. */
export type ServerRef = { kind: 'id'; id: string } | { kind: 'slug'; slug: string } | { kind: 'name'; name: string };

/** The `{ref}` path parameter of every route about one server (registry, discovery, upstream health), for OpenAPI. */
export const SERVER_REF_PARAM = {
  name: 'ref',
  description: 'Server id (uuid), slug, or URL-encoded name (`com.example%2Fweather`)',
} as const;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/**
 * SERVER_NAME (server.json's pattern) with each side of the slash starting
 * with a letter or digit, so `../..` and `./x` are not names.
 */
export const REGISTERED_NAME = /^[a-zA-Z0-9][a-zA-Z0-9.-]*\/[a-zA-Z0-9][a-zA-Z0-9._-]*$/;

export function isServerName(text: string): boolean {
  return text.length >= 3 && text.length <= 200 && REGISTERED_NAME.test(text) && SERVER_NAME.test(text);
}

/** Undefined when the text cannot name a server at all. */
export function parseServerRef(ref: string): ServerRef | undefined {
  if (UUID.test(ref)) return { kind: 'id', id: ref.toLowerCase() };
  if (SERVER_SLUG.test(ref)) return { kind: 'slug', slug: ref };
  if (isServerName(ref)) return { kind: 'name', name: ref };
  return undefined;
}
