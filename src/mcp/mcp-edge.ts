import type { IncomingMessage, ServerResponse } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import { LOOP_HEADER, LOOP_REFUSED, MAX_INCOMING_VIA, viaPseudonymOf } from '../upstream/gateway-via';
import { sendRpcError } from './http-replies';
import { ErrorCodes } from './jsonrpc';

export interface McpEdgeOptions {
  mcpPrefix: string;
  publicUrl: string;
  /** Extra host names (`Host`) and origins (`Origin`, as `scheme://host[:port]` or `*`) to accept. */
  allowedHosts: readonly string[];
  allowedOrigins: readonly string[];
}

/** This machine's names, as a URL's `hostname` gives them. */
const LOOPBACK_HOSTS: readonly string[] = ['localhost', '127.0.0.1', '[::1]'];

/** Whether `url` (an origin or any URL) names this machine; false for one that does not parse. */
export function namesLoopback(url: string): boolean {
  try {
    return LOOPBACK_HOSTS.includes(new URL(url).hostname);
  } catch {
    return false;
  }
}

const ALLOWED_HEADERS = 'authorization, content-type, accept, mcp-session-id, mcp-protocol-version, last-event-id';
const EXPOSED_HEADERS =
  'mcp-session-id, mcp-protocol-version, www-authenticate, retry-after, ratelimit, ratelimit-policy';

/**
 * The edge of MCP_PREFIX, ahead of authentication: loop protection (a request
 * this gateway sent an upstream must not come back in), DNS-rebinding
 * protection (`Host` and `Origin` must name this gateway) and CORS for browser
 * clients such as the MCP Inspector, whose preflights carry no token.
 */
export function mcpEdge(options: McpEdgeOptions): (req: Request, res: Response, next: NextFunction) => void {
  const prefix = options.mcpPrefix;
  const passes = mcpEdgeCheck(options);
  return (req, res, next) => {
    if (req.path !== prefix && !req.path.startsWith(`${prefix}/`)) return next();
    if (passes(req, res)) next();
  };
}

/**
 * The check itself, on Node's request (the POST lane calls it too): true when the request may go on; otherwise
 * it has been answered (a wrong Host or Origin, or a preflight).
 */
export function mcpEdgeCheck(options: McpEdgeOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  const publicUrl = new URL(options.publicUrl);
  const hosts = new Set([publicUrl.hostname, ...LOOPBACK_HOSTS, ...options.allowedHosts].map((h) => h.toLowerCase()));
  const anyOrigin = options.allowedOrigins.includes('*');
  const origins = new Set([publicUrl.origin, ...options.allowedOrigins].map((o) => o.toLowerCase()));

  const originAllowed = (origin: string): boolean => {
    return anyOrigin || origins.has(origin.toLowerCase()) || namesLoopback(origin);
  };
  const ownVia = viaPseudonymOf(options.publicUrl);

  return (req, res) => {
    // The gateway's own request, come back through an upstream URL that leads here: refused at its first turn.
    // Whoever sent it (this gateway, a replica, or a gateway it reached this one through) knows the refusal by its
    // header and answers its caller with an upstream error naming the server. The entry may be a client's too: a 4xx.
    const via = req.headers.via;
    if (via !== undefined && via.includes(ownVia)) {
      res.setHeader(LOOP_HEADER, ownVia);
      sendRpcError(
        res,
        LOOP_REFUSED,
        null,
        ErrorCodes.invalidRequest,
        `Loop Detected: this request has passed through this gateway before (its Via names ${ownVia}); an upstream URL leads back to it`,
      );
      return false;
    }
    // Each gateway appends its entry to what it received: a bound, so that no chain carries kilobytes onwards.
    if (via !== undefined && via.length > MAX_INCOMING_VIA) {
      sendRpcError(
        res,
        431,
        null,
        ErrorCodes.invalidRequest,
        `The Via header is ${via.length} characters long, more than the ${MAX_INCOMING_VIA} this gateway passes on`,
      );
      return false;
    }
    const host = hostnameOf(req.headers.host);
    if (!host || !hosts.has(host)) {
      sendRpcError(
        res,
        421,
        null,
        ErrorCodes.invalidRequest,
        `Host ${req.headers.host ?? '(none)'} is not served here`,
      );
      return false;
    }
    const origin = req.headers.origin;
    if (origin !== undefined) {
      if (!originAllowed(origin)) {
        sendRpcError(res, 403, null, ErrorCodes.invalidRequest, `Origin ${origin} is not allowed`);
        return false;
      }
      res.setHeader('access-control-allow-origin', origin);
      res.setHeader('vary', 'Origin');
      res.setHeader('access-control-expose-headers', EXPOSED_HEADERS);
    }
    if (req.method === 'OPTIONS') {
      res.setHeader('access-control-allow-methods', 'GET, POST, DELETE, OPTIONS');
      res.setHeader('access-control-allow-headers', ALLOWED_HEADERS);
      res.setHeader('access-control-max-age', '600');
      res.statusCode = 204;
      res.end();
      return false;
    }
    return true;
  };
}

/** The host name of a Host header, lowercased, without port; IPv6 literals keep their brackets. */
function hostnameOf(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const match = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::\d{1,5})?$/.exec(header.trim());
  return match?.[1]?.toLowerCase();
}
