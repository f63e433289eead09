import { createServer, IncomingMessage, ServerResponse } from 'node:http';
import { BadRequestException, HttpException, HttpStatus, type NestApplicationOptions } from '@nestjs/common';
import { ExpressAdapter } from '@nestjs/platform-express';
import type { ErrorRequestHandler, Express, NextFunction, Request, RequestHandler, Response } from 'express';

/**
 * Nest's Express adapter, with an HTTP server whose requests and responses are born with the prototypes Express
 * would give them.
 *
 * Express 5 moves every request and response onto its app's prototypes as it arrives (`Object.setPrototypeOf` in
 * `app.handle`). V8 does not take that in its stride: in a bare Node server answering through such a change, about
 * a quarter of what each request allocates lived through two scavenges and went to the old generation, against
 * none without it (`--trace-gc-nvp`). In the gateway, 17 KB of every `/health/live` and 20 KB of every registry
 * list were promoted so (3,000 `/health/live` one after another took 1.6 s, now 0.9 s), and each full collection
 * that followed, marking everything the gateway holds, stalled the requests it fell on. Node 24's V8 does not do
 * this; there the change is only harmless.
 *
 * Here Express's app takes as its `request` and `response` the prototypes of the classes the server constructs,
 * chained in front of the ones Express made; `app.handle` then finds each request already where it would move it,
 * and changes nothing.
 */
export class GatewayExpressAdapter extends ExpressAdapter {
  constructor() {
    super();
    // Paths are matched as written, as RFC 3986 compares them. Express folds case by default, while the checks that
    // go by path (Host and Origin ahead of MCP_PREFIX, the POST lane, the metadata paths) compare it exactly: `/MCP`
    // was served as `/mcp` without the DNS-rebinding check. Set on the router itself, which Nest's adapter made
    // before the setting could be read; the setting says the same to anything that reads it later.
    const app = this.getInstance<Express>();
    app.set('case sensitive routing', true);
    (app.router as unknown as { caseSensitive: boolean }).caseSensitive = true;
  }

  /** Paths a request for which no route matched is answered 404 whatever its method (see `answerWrongMethods`). */
  private keepsNotFound?: (path: string) => boolean;

  /**
   * A request no route takes, to a path that routes take with other methods, is answered 405 with `Allow`
   * (RFC 9110), or 204 with `Allow` when it is OPTIONS, instead of 404; except on the paths `keepsNotFound` names.
   */
  answerWrongMethods(keepsNotFound: (path: string) => boolean): void {
    this.keepsNotFound = keepsNotFound;
  }

  override setNotFoundHandler(handler: RequestHandler, prefix?: string): unknown {
    const notFound = (req: Request, res: Response, next: NextFunction): void => {
      const allowed = this.keepsNotFound && !this.keepsNotFound(req.path) ? this.methodsAt(req.path) : [];
      if (allowed.length === 0) {
        void handler(req, res, next);
        return;
      }
      res.setHeader('Allow', allowed.join(', '));
      if (req.method === 'OPTIONS') {
        res.status(HttpStatus.NO_CONTENT).end();
        return;
      }
      // Through Nest's error handler to the exception filters, as the 404 it replaces.
      next(new HttpException(`${req.method} is not allowed here; allowed: ${allowed.join(', ')}`, 405));
    };
    return super.setNotFoundHandler(notFound, prefix);
  }

  /**
   * A path whose route parameter is not valid percent-encoding is answered 400 naming the parameter and the rule.
   * The router's own error quotes the raw segment (`Failed to decode param '%ZZ<script>…'`), and Nest answers it as
   * it is: text of the client's choosing, of any length, markup and control characters included, in the body.
   */
  override setErrorHandler(handler: ErrorRequestHandler, prefix?: string): unknown {
    const withoutEcho = (error: unknown, req: Request, res: Response, next: NextFunction): void => {
      void handler(isUndecodableParam(error) ? this.undecodablePathError(req.path) : error, req, res, next);
    };
    return super.setErrorHandler(withoutEcho, prefix);
  }

  private undecodablePathError(path: string): BadRequestException {
    const names = this.undecodableParamsOf(path);
    if (names.length === 0) return new BadRequestException('a path segment is not valid percent-encoding');
    return new BadRequestException(
      names.length === 1
        ? `path parameter ${names[0]} is not valid percent-encoding`
        : `path parameters ${names.join(', ')} are not valid percent-encoding`,
    );
  }

  /**
   * The names of the route parameters that take the segments of `path` that cannot be decoded, as the router
   * matches it: each such segment is replaced by a mark that decodes, and the first route to match names the
   * parameters holding a mark.
   */
  private undecodableParamsOf(path: string): string[] {
    const marked = path
      .split('/')
      .map((segment) => (decodes(segment) ? segment : UNDECODABLE_MARK))
      .join('/');
    for (const layer of this.routerLayers()) {
      if (!layer.route) continue;
      const matched = layer.match(marked);
      if (!matched) continue;
      return Object.entries(matched.params)
        .filter(([, value]) => typeof value === 'string' && value.includes(UNDECODABLE_MARK))
        .map(([name]) => name);
    }
    return [];
  }

  private routerLayers(): RouterLayer[] {
    return (this.getInstance<Express>() as unknown as { router?: { stack?: RouterLayer[] } }).router?.stack ?? [];
  }

  /** The methods of the routes whose path matches `path`, with HEAD beside GET (Express answers it) and OPTIONS. */
  private methodsAt(path: string): string[] {
    const methods = new Set<string>();
    for (const layer of this.routerLayers()) {
      if (!layer.route) continue;
      let matches: unknown;
      try {
        matches = layer.match(path);
      } catch {
        continue;
      }
      if (!matches) continue;
      for (const [method, handled] of Object.entries(layer.route.methods)) {
        if (handled && method !== '_all') methods.add(method.toUpperCase());
      }
    }
    if (methods.size === 0) return [];
    if (methods.has('GET')) methods.add('HEAD');
    methods.add('OPTIONS');
    return [...methods];
  }
  override initHttpServer(options: NestApplicationOptions): void {
    if (options.httpsOptions !== undefined || options.forceCloseConnections) {
      throw new Error('the gateway serves plain HTTP and closes its connections itself');
    }
    const app = this.getInstance<Express>();
    class ExpressRequest extends IncomingMessage {}
    class ExpressResponse extends ServerResponse {}
    Object.setPrototypeOf(ExpressRequest.prototype, app.request);
    Object.setPrototypeOf(ExpressResponse.prototype, app.response);
    app.request = ExpressRequest.prototype as unknown as Express['request'];
    app.response = ExpressResponse.prototype as unknown as Express['response'];
    this.setHttpServer(createServer({ IncomingMessage: ExpressRequest, ServerResponse: ExpressResponse }, app));
  }
}

/** What the adapter reads of a layer of Express's router (`router` 2): a route's path matcher and its methods. */
interface RouterLayer {
  route?: { methods: Record<string, boolean | undefined> };
  /** Throws the router's URIError when a parameter's segment cannot be decoded. */
  match(path: string): false | { params: Record<string, unknown> };
}

/** Stands in for an undecodable segment; `~` and letters decode as themselves. */
const UNDECODABLE_MARK = '~undecodable~';

/** The router's error for a parameter it cannot decode (`router` 2's `decodeParam`; Nest maps it to a 400). */
function isUndecodableParam(error: unknown): boolean {
  return error instanceof URIError && (error as { status?: unknown }).status === HttpStatus.BAD_REQUEST;
}

function decodes(segment: string): boolean {
  try {
    decodeURIComponent(segment);
    return true;
  } catch {
    return false;
  }
}
