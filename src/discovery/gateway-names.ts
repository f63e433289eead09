import { createHash } from 'node:crypto';
import { SERVER_SLUG } from '../registry/server.schema';

/**
 * How the aggregate MCP endpoint names what it re-exposes. Pure functions; the
 * MCP endpoint, discovery and search all use these so a name means one thing.
 *
 * Tools and prompts: `{slug}__{name}`. Model providers accept only
 * `^[a-zA-Z0-9_-]{1,64}$`, so a name that has any other character, or that
 * makes the whole longer than 64, becomes `{slug}__{sanitised prefix}_{hash}`:
 * other characters turned into `_`, the prefix cut to fit, and `hash` the first
 * 8 hex digits of sha256 over the original name (so `a.b` and `a/b` differ).
 * Slugs never contain `_`, so the first `__` always ends the slug and names of
 * different servers never collide. Within one server an upstream could still
 * name a tool exactly like another tool's hashed form; `findNameCollisions`
 * detects that (a 32-bit hash makes it deliberate rather than accidental).
 *
 * Resources and resource templates: `mcpgw://{slug}/{original}`, the original
 * URI (or RFC 6570 template) appended verbatim. Verbatim rather than
 * percent-encoded so that a template stays a template: a client expanding
 * `mcpgw://{slug}/file:///{path}` gets exactly `mcpgw://{slug}/` followed by what
 * the upstream's own expansion would be, and stripping the prefix gives it back.
 */

/** What a tool or prompt name exposed by the gateway always matches. */
export const GATEWAY_NAME = /^[a-zA-Z0-9_-]{1,64}$/;
export const GATEWAY_NAME_MAX = 64;
/** Between the server's slug and the upstream's name. */
export const NAME_SEPARATOR = '__';
/** Scheme of the gateway's resource URIs. */
export const GATEWAY_URI_SCHEME = 'mcpgw';

const SAFE_NAME = /^[a-zA-Z0-9_-]+$/;
const UNSAFE_CHARACTER = /[^a-zA-Z0-9_-]/gu;
const HASH_LENGTH = 8;
const URI_PREFIX = `${GATEWAY_URI_SCHEME}://`;

/** First 8 hex digits of sha256 over the text. */
export function shortHash(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex').slice(0, HASH_LENGTH);
}

/** The name the aggregate endpoint exposes for tool or prompt `name` of the server with `slug`. */
export function gatewayName(slug: string, name: string): string {
  assertSlug(slug);
  const prefix = `${slug}${NAME_SEPARATOR}`;
  if (SAFE_NAME.test(name) && prefix.length + name.length <= GATEWAY_NAME_MAX) return prefix + name;
  const suffix = `_${shortHash(name)}`;
  const room = GATEWAY_NAME_MAX - prefix.length - suffix.length;
  // The `u` flag makes one astral character one `_`, not two.
  const body = name.replace(UNSAFE_CHARACTER, '_').slice(0, room);
  return prefix + body + suffix;
}

/** The slug and the part after it, or undefined when the text is not a gateway name at all. */
export function splitGatewayName(text: string): { slug: string; rest: string } | undefined {
  if (!GATEWAY_NAME.test(text)) return undefined;
  const at = text.indexOf(NAME_SEPARATOR);
  if (at <= 0) return undefined;
  const slug = text.slice(0, at);
  const rest = text.slice(at + NAME_SEPARATOR.length);
  return SERVER_SLUG.test(slug) && rest.length > 0 ? { slug, rest } : undefined;
}

/** `mcpgw://{slug}/{uri}` for a resource URI or a resource template of the server with `slug`. */
export function gatewayResourceUri(slug: string, uri: string): string {
  assertSlug(slug);
  return `${URI_PREFIX}${slug}/${uri}`;
}

/** The server slug and original URI (or template) a gateway resource URI stands for. */
export function parseGatewayResourceUri(text: string): { slug: string; uri: string } | undefined {
  if (!text.startsWith(URI_PREFIX)) return undefined;
  const rest = text.slice(URI_PREFIX.length);
  const slash = rest.indexOf('/');
  if (slash <= 0) return undefined;
  const slug = rest.slice(0, slash);
  const uri = rest.slice(slash + 1);
  return SERVER_SLUG.test(slug) && uri.length > 0 ? { slug, uri } : undefined;
}

export interface NamedItem {
  kind: string;
  name: string;
  gatewayName: string;
}

export interface NameCollision {
  kind: string;
  gatewayName: string;
  /** The upstream names (or URIs) that all map to `gatewayName`, sorted. */
  names: string[];
}

/**
 * Gateway names of one server that more than one upstream item maps to.
 * The aggregate endpoint must not expose such a name: it would be ambiguous.
 */
export function findNameCollisions(items: readonly NamedItem[]): NameCollision[] {
  const groups = new Map<string, { kind: string; gatewayName: string; names: Set<string> }>();
  for (const item of items) {
    const key = `${item.kind}\u0000${item.gatewayName}`;
    const group = groups.get(key) ?? { kind: item.kind, gatewayName: item.gatewayName, names: new Set<string>() };
    group.names.add(item.name);
    groups.set(key, group);
  }
  return [...groups.values()]
    .filter((group) => group.names.size > 1)
    .map((group) => ({ kind: group.kind, gatewayName: group.gatewayName, names: [...group.names].sort() }))
    .sort((a, b) => compare(a.kind, b.kind) || compare(a.gatewayName, b.gatewayName));
}

function assertSlug(slug: string): void {
  if (!SERVER_SLUG.test(slug)) throw new Error(`not a server slug: ${JSON.stringify(slug)}`);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
