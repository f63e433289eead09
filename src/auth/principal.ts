import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import type { IncomingMessage } from 'node:http';
import type { Request } from 'express';

/**
 * Who is calling `/mcp`, as established from a verified access token.
 * Decisions use `tid`, `oid`, `roles` and `scopes` only; `name` is for display.
 */
export interface Principal {
  /** Tenant GUID the token was issued in. */
  tid: string;
  /** Object id of the user, or of the calling app's service principal for app-only tokens. */
  oid: string;
  /** The client application that obtained the token (`azp`, or `appid` in v1 tokens). */
  clientId: string;
  /** True for a token an application obtained for itself (client credentials): no user, no `scp`. */
  appOnly: boolean;
  /** Delegated scopes (`scp`), short names; empty for app-only tokens. */
  scopes: string[];
  /** App roles (`roles`). */
  roles: string[];
  groups?: string[];
  /** `name`, else `preferred_username` / `upn` / `email`: display only, never used for a decision. */
  name?: string;
}

/** A verified access token: the principal, its expiry and the raw token (kept for on-behalf-of). */
export interface VerifiedToken {
  principal: Principal;
  /** `exp`, in seconds since the epoch. */
  expiresAt: number;
  token: string;
}

/** What the MCP SDK expects in `req.auth`; `extra.principal` carries ours to tool handlers (`extra.authInfo`). */
export interface GatewayAuthInfo extends AuthInfo {
  expiresAt: number;
  extra: { principal: Principal };
}

declare module 'express-serve-static-core' {
  interface Request {
    /** Set by the MCP_PREFIX guard on every request it lets through. */
    principal?: Principal;
    /** The same as the MCP SDK's `requireBearerAuth` sets; its transports hand it to handlers as `extra.authInfo`. */
    auth?: AuthInfo;
  }
}

/**
 * A request under MCP_PREFIX as the MCP code reads it: Express's, or Node's own on the POST lane
 * (src/mcp/mcp-post-lane.ts), which sets the same fields.
 */
export interface McpRequest extends IncomingMessage {
  /** The client's address (behind trusted proxies: TRUST_PROXY). */
  ip?: string;
  /** The parsed JSON body. */
  body?: unknown;
  principal?: Principal;
  auth?: AuthInfo;
}

/** A request under MCP_PREFIX after the guard let it through. */
export type AuthenticatedRequest = Request & { principal: Principal; auth: GatewayAuthInfo };

/** The principal of a request the guard let through; throws when called on a path the guard does not cover. */
export function principalOf(req: McpRequest): Principal {
  if (!req.principal) throw new Error('no principal on this request: it did not pass the MCP_PREFIX guard');
  return req.principal;
}

/** The caller's identity as the upstream token provider needs it: the principal and the token it presented. */
export interface UpstreamCaller {
  principal: Principal;
  token: string;
  /** `exp` of the token, seconds since the epoch. */
  expiresAt?: number;
  /** The `Via` the caller's request arrived with, which the gateway's requests on its behalf go on with. */
  via?: string;
}

/** The caller of a request the guard let through, for `UpstreamConnector.connect(..., { caller })`. */
export function callerOf(req: McpRequest): UpstreamCaller {
  const principal = principalOf(req);
  if (!req.auth) throw new Error('no auth info on this request: it did not pass the MCP_PREFIX guard');
  return { principal, token: req.auth.token, expiresAt: req.auth.expiresAt, via: req.headers.via };
}

export function toAuthInfo(verified: VerifiedToken): GatewayAuthInfo {
  return {
    token: verified.token,
    clientId: verified.principal.clientId,
    scopes: verified.principal.scopes,
    expiresAt: verified.expiresAt,
    extra: { principal: verified.principal },
  };
}
