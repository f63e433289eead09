import { createServer, IncomingMessage, ServerResponse } from 'node:http';
import { HttpException, HttpStatus, type NestApplicationOptions } from '@nestjs/common';
import { ExpressAdapter } from '@nestjs/platform-express';
import type { Express, NextFunction, Request, RequestHandler, Response } from 'express';

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

  /** The methods of the routes whose path matches `path`, with HEAD beside GET (Express answers it) and OPTIONS. */
  private methodsAt(path: string): string[] {
    const router = (this.getInstance<Express>() as unknown as { router?: { stack?: RouterLayer[] } }).router;
    const methods = new Set<string>();
    for (const layer of router?.stack ?? []) {
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

/** What `methodsAt` reads of a layer of Express's router (`router` 2): a route's path matcher and its methods. */
interface RouterLayer {
  route?: { methods: Record<string, boolean | undefined> };
  match(path: string): unknown;
}
