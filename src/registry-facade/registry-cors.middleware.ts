import { Injectable, type NestMiddleware } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';

/** A list of RFC 9110 tokens, as `Access-Control-Request-Headers` carries. */
const HEADER_LIST = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+(?:[ \t]*,[ \t]*[!#$%&'*+.^_`|~0-9A-Za-z-]+)*$/;
const MAX_HEADER_LIST = 1000;
const PREFLIGHT_MAX_AGE_SECONDS = 86_400;

/**
 * CORS for the official registry read API only: browser-based registry
 * clients may read it from any origin. Nothing is sent with credentials and
 * nothing but GET is offered, so `*` exposes no more than a plain GET does.
 * A preflight is answered here, before routing.
 */
@Injectable()
export class RegistryCorsMiddleware implements NestMiddleware {
  use(req: Request, res: Response, next: NextFunction): void {
    res.setHeader('Access-Control-Allow-Origin', '*');
    if (req.method !== 'OPTIONS') {
      next();
      return;
    }
    res.setHeader('Access-Control-Allow-Methods', 'GET, HEAD, OPTIONS');
    const requested = req.headers['access-control-request-headers'];
    if (typeof requested === 'string' && requested.length <= MAX_HEADER_LIST && HEADER_LIST.test(requested)) {
      res.setHeader('Access-Control-Allow-Headers', requested);
    }
    res.setHeader('Vary', 'Access-Control-Request-Headers');
    res.setHeader('Access-Control-Max-Age', String(PREFLIGHT_MAX_AGE_SECONDS));
    res.setHeader('Allow', 'GET, HEAD, OPTIONS');
    res.status(204).end();
  }
}
