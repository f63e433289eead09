import type { IncomingMessage } from 'node:http';

/** The URL as the client sent it: Express rewrites `url` inside mounted middleware, never `originalUrl`. */
export function originalUrlOf(req: IncomingMessage): string {
  return (req as { originalUrl?: string }).originalUrl ?? req.url ?? '/';
}

/** The path as the client sent it, without the query. */
export function requestPathOf(req: IncomingMessage): string {
  const url = originalUrlOf(req);
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}

/**
 * Whether a path under the MCP prefix (what follows it, e.g. `/github/tools/search`) is the REST bridge's
 * (its tool calls, its tool list, its OpenAPI document) rather than an MCP endpoint's.
 */
export function isRestBridgePath(pathUnderPrefix: string): boolean {
  return /\/tools(\/|$)|\/openapi\.json$/.test(pathUnderPrefix);
}

/** Whether a path is `prefix` itself or a path below it. */
export function isUnder(prefix: string): (path: string) => boolean {
  return (path) => path === prefix || path.startsWith(`${prefix}/`);
}
