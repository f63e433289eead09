import type { IncomingMessage, ServerResponse } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import type { GatewayMetrics } from './gateway-metrics';
import { requestPathOf } from '../common/request-path';
import { CellsByThreeKeys } from './hot-metrics';

/** Methods with a label of their own; Node's parser accepts a few dozen, the rest count as `other`. */
const KNOWN_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** The pattern of Nest's own not-found handler. */
const NEST_NOT_FOUND_ROUTE = '/{*path}';

/** A request no route answered (a 404, or one refused by a middleware outside the MCP prefix). */
export const UNMATCHED_ROUTE = 'unmatched';

/**
 * Counts and times every HTTP request by the route pattern that served it
 * (`/api/v1/servers/:ref`), never the raw path, so a client cannot mint
 * series. Requests answered before routing under the MCP prefix (a refused
 * token, a wrong Host, an unreadable body) count as `{prefix}/*`; the
 * documentation's static files as `/docs/*`; everything else unrouted as
 * `unmatched`.
 */
export function httpMetricsMiddleware(
  metrics: GatewayMetrics,
  mcpPrefix: string,
): (req: Request, res: Response, next: NextFunction) => void {
  const mcpWildcard = `${mcpPrefix}/*`;
  const mcpSlash = `${mcpPrefix}/`;
  const meter = httpRequestMeter(metrics);
  return (req, res, next) => {
    meter(req, res, () => routeOf(req, mcpPrefix, mcpSlash, mcpWildcard));
    next();
  };
}

/**
 * Counts and times one request once its response closes, under the route `routeOf` names then (the POST lane,
 * src/mcp/mcp-post-lane.ts, names its own).
 */
export function httpRequestMeter(
  metrics: GatewayMetrics,
): (req: IncomingMessage, res: ServerResponse, routeOf: () => string) => void {
  // By route, method and status: every label is from a bounded set, so this stays small.
  const cells = new CellsByThreeKeys((route: string, method: string, status: number) => {
    const labels = [method, route, statusOf(status)];
    return { requests: metrics.httpRequests.cell(labels), duration: metrics.httpDuration.cell(labels) };
  });
  return (req, res, routeOf) => {
    const start = performance.now();
    // `on`, not `once`: a response closes once, and `once` wraps every listener in two more objects.
    res.on('close', () => {
      const method = req.method !== undefined && KNOWN_METHODS.has(req.method) ? req.method : 'other';
      const { requests, duration } = cells.get(routeOf(), method, res.statusCode);
      requests.value++;
      duration.observe((performance.now() - start) / 1000);
    });
  };
}

function routeOf(req: Request, mcpPrefix: string, mcpSlash: string, mcpWildcard: string): string {
  const pattern = (req.route as { path?: unknown } | undefined)?.path;
  if (typeof pattern === 'string') {
    // Nest answers every unrouted request from a catch-all route of its own.
    if (pattern === NEST_NOT_FOUND_ROUTE) return UNMATCHED_ROUTE;
    const route = req.baseUrl + pattern;
    // The token check is mounted on the whole prefix (`/mcp{/*rest}`): what it refuses never reached a route.
    return route.startsWith(`${mcpPrefix}{`) ? mcpWildcard : route;
  }
  const path = requestPathOf(req);
  if (path === mcpPrefix || path.startsWith(mcpSlash)) return mcpWildcard;
  if (path === '/docs' || path.startsWith('/docs/') || path.startsWith('/docs-')) return '/docs/*';
  return UNMATCHED_ROUTE;
}

/** Status codes are three digits; anything else (never seen from Node) is not a label. */
function statusOf(code: number): string {
  return code >= 100 && code <= 599 ? String(code) : 'other';
}
