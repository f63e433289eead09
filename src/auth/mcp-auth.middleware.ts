import { Injectable, type NestMiddleware } from '@nestjs/common';
import { requestIdOf } from '../logging/logger';
import type { ServerResponse } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import { originalUrlOf, requestPathOf } from '../common/request-path';
import { sendText } from '../common/send-text';
import { urlParameterNames } from '../common/query-parameter';
import { InjectPinoLogger, PinoLogger } from 'nestjs-pino';
import { McpTraffic } from '../traffic/mcp-traffic';
import { AccessPolicy } from './access-policy';
import { type BearerErrorCode, TokenRejection, VerificationUnavailable } from './auth-errors';
import { bearerTokenOf, sendChallenge, usesBearerScheme } from './bearer-challenge';
import { type McpRequest, toAuthInfo, type VerifiedToken } from './principal';
import { ProtectedResource } from './protected-resource';
import { MAX_TOKEN_LENGTH, TokenVerifier } from './token-verifier';

/**
 * Guards everything under MCP_PREFIX, known routes or not: a valid Entra (or,
 * in dev mode, local) access token in the Authorization header, and the
 * required scopes for delegated tokens. What passes carries `req.principal`
 * and `req.auth` (the MCP SDK's AuthInfo).
 */
@Injectable()
export class McpAuthMiddleware implements NestMiddleware {
  constructor(
    private readonly verifier: TokenVerifier,
    private readonly resource: ProtectedResource,
    private readonly policy: AccessPolicy,
    private readonly traffic: McpTraffic,
    @InjectPinoLogger(McpAuthMiddleware.name) private readonly logger: PinoLogger,
  ) {}

  async use(req: Request, res: Response, next: NextFunction): Promise<void> {
    if (await this.admit(req, res)) next();
  }

  /**
   * True when the request may go on (principal attached); otherwise the refusal has been sent. Never throws nor
   * rejects. Also called by the POST lane. At once, not as a promise, unless a token has to be verified: a request
   * carrying the token its connection's last one did (most) is decided without a turn of the event loop.
   */
  admit(req: McpRequest, res: ServerResponse): boolean | Promise<boolean> {
    try {
      const admitted = this.authenticate(req, res);
      return admitted instanceof Promise ? admitted.catch((error: unknown) => this.failed(res, error)) : admitted;
    } catch (error) {
      return this.failed(res, error);
    }
  }

  /** Whatever went wrong, the request is refused and the process keeps serving. */
  private failed(res: ServerResponse, error: unknown): false {
    this.logger.error({ err: error }, 'authenticating an MCP request failed');
    if (!res.headersSent) unavailable(res, 'the access token could not be checked; try again', 30);
    return false;
  }

  private authenticate(req: McpRequest, res: ServerResponse): boolean | Promise<boolean> {
    // Without a tenant and an app registration no token can be checked, and only a change of configuration (and a
    // restart) helps: 503 without a Retry-After, which would promise a time at which the gateway serves again.
    const unconfigured = this.verifier.unavailableReason;
    if (unconfigured) {
      unavailable(res, unconfigured);
      return false;
    }
    // Every request from here on is audited, and while the audit trail cannot keep records none is served (until
    // replay or a writable spool takes them: a retry in 30 s may well be served).
    const halted = this.traffic.haltedReason;
    if (halted) {
      unavailable(res, halted, 30);
      return false;
    }
    const arrived = Date.now();
    const url = originalUrlOf(req);
    const queryAt = url.indexOf('?');
    // RFC 6750 §3.1: invalid_request is a 400, invalid_token a 401, insufficient_scope a 403; no error code, a 401.
    const refuse = (rejection?: Rejection): void => {
      const slug = this.resource.slugOfRequestPath(queryAt === -1 ? url : url.slice(0, queryAt));
      const error = rejection?.error;
      const status = error === 'invalid_request' ? 400 : error === 'insufficient_scope' ? 403 : 401;
      sendChallenge(res, status, {
        error: rejection?.error,
        description: rejection?.description,
        resourceMetadata: this.resource.metadataUrl(slug),
        scopes: this.resource.scopes,
      });
      this.recordRefusal(req, slug, arrived, rejection?.reason ?? rejection?.description ?? 'no access token');
    };

    if (urlParameterNames(url).includes('access_token')) {
      this.logger.info({ reason: 'token in query string' }, 'MCP request refused');
      refuse({
        error: 'invalid_request',
        description: 'access tokens are accepted in the Authorization header only',
      });
      return false;
    }
    const header = req.headers.authorization;
    if (header === undefined || header === '') {
      refuse();
      return false;
    }
    // The connection's previous request carried this header, and it was let in.
    const remembered = this.verifier.remembered(req.socket, header, arrived);
    if (remembered) return this.admitted(req, remembered);
    const token = header.length <= MAX_TOKEN_LENGTH + 16 ? bearerTokenOf(header) : undefined;
    if (!token) {
      if (!usesBearerScheme(header)) {
        // Another scheme (Basic, a bare token): no bearer credentials were sent, so the answer is that of none.
        this.logger.info({ reason: 'Authorization header of another scheme' }, 'MCP request refused');
        refuse({ reason: 'Authorization header of another scheme' });
        return false;
      }
      const tooLarge = header.length > MAX_TOKEN_LENGTH + 16;
      this.logger.info(
        { reason: tooLarge ? 'oversized Authorization header' : 'malformed Authorization header' },
        'MCP request refused',
      );
      refuse({
        error: 'invalid_request',
        description: tooLarge ? 'the access token is too large' : 'the Authorization header must be: Bearer <token>',
      });
      return false;
    }
    return this.verifyAndAdmit(req, res, header, token, refuse);
  }

  /** The rest of `authenticate` for a token not remembered on the connection: verified, then its scopes checked. */
  private async verifyAndAdmit(
    req: McpRequest,
    res: ServerResponse,
    header: string,
    token: string,
    refuse: (rejection?: Rejection) => void,
  ): Promise<boolean> {
    let verified;
    try {
      verified = await this.verifier.verify(token);
    } catch (error) {
      if (error instanceof TokenRejection) {
        this.logger.warn({ reason: error.reason }, 'access token refused');
        refuse({ error: error.error, description: error.description, reason: error.reason });
        return false;
      }
      if (error instanceof VerificationUnavailable) {
        this.logger.warn({ err: error }, 'access token could not be verified');
        unavailable(res, 'the access token could not be checked right now; try again', error.retryAfterSeconds);
        return false;
      }
      throw error;
    }

    const missing = this.policy.missingScopes(verified.principal);
    if (missing.length > 0) {
      this.logger.info(
        { reason: `missing scopes ${missing.join(' ')}`, oid: verified.principal.oid },
        'MCP request refused',
      );
      refuse({
        error: 'insufficient_scope',
        description: 'the token lacks a scope this gateway requires',
        reason: `missing scopes ${missing.join(' ')}`,
      });
      return false;
    }
    this.verifier.remember(req.socket, header, verified);
    return this.admitted(req, verified);
  }

  private admitted(req: McpRequest, verified: VerifiedToken): true {
    req.principal = verified.principal;
    req.auth = toAuthInfo(verified);
    return true;
  }

  /**
   * Token refusals are audited with their reason, the slug the path names and the request's JSON-RPC method and id
   * (read from the body, already parsed); the token itself never is.
   */
  private recordRefusal(req: McpRequest, slug: string | undefined, arrived: number, reason: string): void {
    const body = req.body as { method?: unknown; id?: unknown } | undefined;
    this.traffic.record({
      at: new Date(arrived),
      requestId: requestIdOf(req),
      surface: slug === undefined ? 'aggregate' : requestPathOf(req).includes('/tools') ? 'rest' : 'server',
      ...(req.ip ? { ip: req.ip } : {}),
      ...(slug === undefined ? {} : { pathSlug: slug }),
      method: methodOf(body),
      ...rpcIdOf(body),
      decision: 'unauthenticated',
      rule: reason,
      outcome: 'refused',
      latencyMs: Date.now() - arrived,
    });
  }
}

/** Why a request is refused, as its bearer challenge and its audit record say it. */
interface Rejection {
  error?: BearerErrorCode;
  description?: string;
  reason?: string;
}

/** The JSON-RPC method of a refused request, when its body was read and is a single request. */
function methodOf(body: { method?: unknown } | undefined): string {
  const method = body?.method;
  return typeof method === 'string' && method.length <= 100 ? method : 'http';
}

/** The JSON-RPC id of a refused request, when its body was read and is a single request with a valid one. */
function rpcIdOf(body: { id?: unknown } | undefined): { rpcId?: string | number } {
  const id = body?.id;
  return typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id)) ? { rpcId: id } : {};
}

/** 503 `temporarily_unavailable`, with a `Retry-After` when trying again after `retryAfterSeconds` may help. */
function unavailable(res: ServerResponse, description: string, retryAfterSeconds?: number): void {
  if (retryAfterSeconds !== undefined) res.setHeader('retry-after', String(retryAfterSeconds));
  res.setHeader('cache-control', 'no-store');
  sendText(
    res,
    503,
    'application/json',
    JSON.stringify({ error: 'temporarily_unavailable', error_description: description }),
  );
}
