import type { NextFunction, Request, Response } from 'express';
import { sendRpcError } from './http-replies';
import { ErrorCodes } from './jsonrpc';

export interface McpEdgeOptions {
  mcpPrefix: string;
  publicUrl: string;
  /** Extra host names (`Host`) and origins (`Origin`, as `scheme://host[:port]` or `*`) to accept. */
  allowedHosts: readonly string[];
  allowedOrigins: readonly string[];
}

const LOOPBACK_HOSTS = ['localhost', '127.0.0.1', '[::1]'];
const ALLOWED_HEADERS = 'authorization, content-type, accept, mcp-session-id, mcp-protocol-version, last-event-id';
const EXPOSED_HEADERS =
  'mcp-session-id, mcp-protocol-version, www-authenticate, retry-after, ratelimit, ratelimit-policy';

/**
 * The edge of MCP_PREFIX, ahead of authentication: DNS-rebinding protection
 * (`Host` and `Origin` must name this gateway) and CORS for browser clients
 * such as the MCP Inspector, whose preflights carry no token.
 */
export function mcpEdge(options: McpEdgeOptions): (req: Request, res: Response, next: NextFunction) => void {
  const publicUrl = new URL(options.publicUrl);
  const hosts = new Set([publicUrl.hostname, ...LOOPBACK_HOSTS, ...options.allowedHosts].map((h) => h.toLowerCase()));
  const anyOrigin = options.allowedOrigins.includes('*');
  const origins = new Set([publicUrl.origin, ...options.allowedOrigins].map((o) => o.toLowerCase()));
  const prefix = options.mcpPrefix;

  const originAllowed = (origin: string): boolean => {
    if (anyOrigin || origins.has(origin.toLowerCase())) return true;
    try {
      return LOOPBACK_HOSTS.includes(new URL(origin).hostname);
    } catch {
      return false;
    }
  };

  return (req, res, next) => {
    if (req.path !== prefix && !req.path.startsWith(`${prefix}/`)) return next();
    const host = hostnameOf(req.headers.host);
    if (!host || !hosts.has(host)) {
      return sendRpcError(
        res,
        421,
        null,
        ErrorCodes.invalidRequest,
        `Host ${req.headers.host ?? '(none)'} is not served here`,
      );
    }
    const origin = req.headers.origin;
    if (origin !== undefined) {
      if (!originAllowed(origin)) {
        return sendRpcError(res, 403, null, ErrorCodes.invalidRequest, `Origin ${origin} is not allowed`);
      }
      res.setHeader('access-control-allow-origin', origin);
      res.setHeader('vary', 'Origin');
      res.setHeader('access-control-expose-headers', EXPOSED_HEADERS);
    }
    if (req.method === 'OPTIONS') {
      res.setHeader('access-control-allow-methods', 'GET, POST, DELETE, OPTIONS');
      res.setHeader('access-control-allow-headers', ALLOWED_HEADERS);
      res.setHeader('access-control-max-age', '600');
      res.status(204).end();
      return;
    }
    next();
  };
}

/** The host name of a Host header, lowercased, without port; IPv6 literals keep their brackets. */
function hostnameOf(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const match = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::\d{1,5})?$/.exec(header.trim());
  return match?.[1]?.toLowerCase();
}
