import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import proxyAddr from 'proxy-addr';
import type { Logger } from 'pino';
import type { McpRequest } from '../auth/principal';
import { sendText } from '../common/send-text';
import { type AccessEntry, accessLogWriter, requestId } from '../logging/logger';
import { ErrorCodes, errorResponse } from './jsonrpc';

/** The steps a POST goes through before its handler, in this order; each answers the request itself when it stops it. */
export interface McpPostSteps {
  /** Counts and times the request under `route()`, read once the response has closed. */
  meter(req: IncomingMessage, res: ServerResponse, route: () => string): void;
  /** `Host` and `Origin` (src/mcp/mcp-edge.ts). */
  edge(req: IncomingMessage, res: ServerResponse): boolean;
  /** The per-IP limit (src/ratelimit/ip-rate-limit.middleware.ts). */
  ipLimit(req: McpRequest, res: ServerResponse): boolean;
  /** The access token (src/auth/mcp-auth.middleware.ts): at once when the connection's last request had it checked. */
  authenticate(req: McpRequest, res: ServerResponse): boolean | Promise<boolean>;
  /** The handlers Nest's routes call: `/mcp`, `/mcp/{slug}` and the REST bridge's `/mcp/{slug}/tools/{tool}`. */
  aggregate(req: McpRequest, res: ServerResponse): Promise<void>;
  relay(req: McpRequest, res: ServerResponse, slug: string): Promise<void>;
  rest(req: McpRequest, res: ServerResponse, slug: string, tool: string): Promise<void>;
  /** A REST bridge request refused as problem+json, as the Express pipeline's exception filter answers it. */
  problem(req: McpRequest, res: ServerResponse, status: number, detail: string): void;
  /**
   * A request whose handler threw, answered by the exception filter as it answers the routes Express serves, in the
   * shape of the path: the handler's refusals as such, anything else a 500 carrying the error id of its log line.
   */
  fault(req: McpRequest, res: ServerResponse, error: unknown): void;
}

/** What a POST is for: the aggregate endpoint, one server's, or one of its tools through the REST bridge. */
type Target = { kind: 'aggregate' } | { kind: 'server'; slug: string } | { kind: 'rest'; slug: string; tool: string };

export type ProxyTrust = (address: string, hop: number) => boolean;

export interface McpPostLaneOptions {
  mcpPrefix: string;
  maxBodyBytes: number;
  /**
   * Express's compiled `trust proxy` setting (TRUST_PROXY), so `req.ip` is what Express would say; undefined when
   * no proxy is trusted, and the TCP peer is the client.
   */
  trustProxy?: ProxyTrust;
  logger: Logger;
}

/** What a slug may be (src/registry/slug.ts); anything else is left to Express, which answers it as before. */
const SLUG = /^[a-z0-9][a-z0-9-]{0,31}$/;
/** Tool names that need no decoding (the MCP spec's recommended characters); others are left to Express. */
const TOOL = /^[A-Za-z0-9_.-]{1,128}$/;
/** JSON as body-parser reads it by default: `application/json`, in UTF-8. */
const JSON_TYPE = /^application\/json\s*(;\s*charset\s*=\s*"?utf-8"?\s*)?$/i;

/**
 * `POST MCP_PREFIX`, `POST MCP_PREFIX/{slug}` and the REST bridge's `POST MCP_PREFIX/{slug}/tools/{tool}`, the
 * gateway's hot paths, served beside Express instead of through it: Express's router, Nest's handler pipeline and
 * nestjs-pino's per-request async context (promise hooks on every promise) cost about a fifth of the gateway's CPU
 * per relayed call (`npm run bench`). The lane runs the same steps with the same code — metrics, request id, Host
 * and Origin, the per-IP limit, the body, the token — then calls the same handler and writes one access log line.
 * One difference in order: the per-IP limit comes before the body is read (Express reads it first), so a flooding
 * address costs no parsing. Requests out of the ordinary (a query string, a trailing slash, a body that is not
 * plain UTF-8 JSON or is compressed, a name that needs URL decoding) go to Express, which answers them as it
 * always has.
 */
export class McpPostLane {
  private readonly slugPrefix: string;
  private readonly routes: Record<Target['kind'] | 'refused', string>;
  /** The access log line pino-http writes for requests Express serves, without the headers. */
  private readonly logAccess: (entry: AccessEntry) => void;

  constructor(
    private readonly steps: McpPostSteps,
    private readonly options: McpPostLaneOptions,
  ) {
    this.slugPrefix = `${options.mcpPrefix}/`;
    this.logAccess = accessLogWriter(options.logger);
    // As Express names them (src/metrics/http-metrics.ts).
    this.routes = {
      refused: `${options.mcpPrefix}/*`,
      aggregate: options.mcpPrefix,
      server: `${options.mcpPrefix}/:slug`,
      rest: `${options.mcpPrefix}/:slug/tools/:tool`,
    };
  }

  /** Puts the lane in front of the server's request listener (Express): it takes its requests, Express the rest. */
  install(server: Server): void {
    const listeners = server.listeners('request') as ((req: IncomingMessage, res: ServerResponse) => void)[];
    const express = listeners[0];
    if (listeners.length !== 1 || express === undefined) {
      throw new Error(`expected Express as the one request listener, found ${listeners.length}`);
    }
    server.removeListener('request', express);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      if (!this.take(req, res)) express(req, res);
    });
  }

  /** True when the request is the lane's (it is then answered in time); false leaves it untouched. */
  private take(req: IncomingMessage, res: ServerResponse): boolean {
    if (req.method !== 'POST') return false;
    const target = this.targetOf(req.url ?? '');
    if (!target) return false;
    const type = req.headers['content-type'];
    const encoding = req.headers['content-encoding'];
    if (type === undefined || !JSON_TYPE.test(type)) return false;
    if (encoding !== undefined && encoding.toLowerCase() !== 'identity') return false;
    this.serve(req as McpRequest, res, target).catch((error: unknown) => this.failed(req as McpRequest, res, error));
    return true;
  }

  private targetOf(url: string): Target | undefined {
    if (url === this.options.mcpPrefix) return { kind: 'aggregate' };
    if (!url.startsWith(this.slugPrefix)) return undefined;
    const [slug = '', tools, tool, ...rest] = url.slice(this.slugPrefix.length).split('/');
    if (!SLUG.test(slug)) return undefined;
    if (tools === undefined) return { kind: 'server', slug };
    if (tools === 'tools' && tool !== undefined && TOOL.test(tool) && rest.length === 0) {
      return { kind: 'rest', slug, tool };
    }
    return undefined;
  }

  private async serve(req: McpRequest, res: ServerResponse, target: Target): Promise<void> {
    const started = performance.now();
    let routed = false;
    this.steps.meter(req, res, () => this.routes[routed ? target.kind : 'refused']);
    const id = requestId(req, res);
    req.id = id;
    res.once('close', () =>
      this.logAccess({
        id,
        method: 'POST',
        url: req.url ?? '',
        statusCode: res.statusCode,
        responseTime: Math.round(performance.now() - started),
        completed: res.writableFinished,
      }),
    );
    // Once, as Express's getter would say it. Defined, not assigned, since that getter is on the prototype; a plain
    // data property, as the assignment made before requests came with Express's prototype.
    const trust = this.options.trustProxy;
    const ip = trust ? proxyAddr(req, trust) : req.socket.remoteAddress;
    Object.defineProperty(req, 'ip', { value: ip, enumerable: true, writable: true, configurable: true });

    if (!this.steps.edge(req, res) || !this.steps.ipLimit(req, res)) return;
    const body = await this.readBody(req, res, target);
    if (body === undefined) return;
    req.body = body.value;
    const admitted = this.steps.authenticate(req, res);
    if (!(admitted instanceof Promise ? await admitted : admitted)) return;
    routed = true;
    if (target.kind === 'aggregate') await this.steps.aggregate(req, res);
    else if (target.kind === 'server') await this.steps.relay(req, res, target.slug);
    else await this.steps.rest(req, res, target.slug, target.tool);
  }

  /** The parsed body, or undefined once the request has been answered (too large, not JSON) or abandoned. */
  private readBody(req: McpRequest, res: ServerResponse, target: Target): Promise<{ value: unknown } | undefined> {
    const max = this.options.maxBodyBytes;
    // Worded as src/common/json-body.ts words them for Express: JSON-RPC errors, problem+json for the REST bridge.
    const refuse = (status: number, code: number, message: string): void => {
      if (target.kind === 'rest') this.steps.problem(req, res, status, message);
      else
        this.rpcError(
          res,
          status,
          code,
          `${code === ErrorCodes.parseError ? 'Parse error' : 'Invalid Request'}: ${message}`,
        );
    };
    const tooLarge = (): void => {
      res.setHeader('connection', 'close');
      refuse(413, ErrorCodes.invalidRequest, `the request body is larger than ${max} bytes`);
    };
    if (Number(req.headers['content-length'] ?? 0) > max) {
      tooLarge();
      req.resume();
      return Promise.resolve(undefined);
    }
    return new Promise((resolve) => {
      const chunks: Buffer[] = [];
      let length = 0;
      const onData = (chunk: Buffer): void => {
        length += chunk.length;
        if (length <= max) {
          chunks.push(chunk);
          return;
        }
        req.off('data', onData);
        req.resume();
        tooLarge();
        resolve(undefined);
      };
      req.on('data', onData);
      req.once('end', () => {
        if (length > max) return;
        // Most bodies come in one chunk: read as it is, not copied into a new buffer first.
        const text = chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks, length).toString('utf8');
        // An empty body is an empty object, as body-parser reads it.
        if (text === '') return resolve({ value: {} });
        try {
          if (!opensObjectOrArray(text)) throw new SyntaxError('not an object or array');
          resolve({ value: JSON.parse(text) as unknown });
        } catch {
          refuse(400, ErrorCodes.parseError, 'the request body is not valid JSON');
          resolve(undefined);
        }
      });
      // The client went away mid-body: there is nobody to answer. (After 'end', resolving again does nothing.)
      req.once('error', () => resolve(undefined));
      req.once('close', () => resolve(undefined));
    });
  }

  private rpcError(res: ServerResponse, status: number, code: number, message: string, data?: unknown): void {
    sendText(res, status, 'application/json', JSON.stringify(errorResponse(null, code, message, data)));
  }

  /**
   * A handler that threw, answered by the exception filter as it answers the requests Express serves: on the
   * JSON-RPC endpoints a JSON-RPC error (src/mcp/rpc-problem.ts), on the REST bridge problem+json. The REST bridge's
   * handler throws its refusals too. Anything else is a bug, logged under an error id that the 500 carries and
   * nothing else of it, so that an operator given what the client saw finds the line; a session store Redis does not
   * serve is an outage instead, answered 503 (the Redis client logs the outage once).
   */
  private failed(req: McpRequest, res: ServerResponse, error: unknown): void {
    this.steps.fault(req, res, error);
  }
}

/** body-parser's strict mode: a JSON body is an object or an array (its first character after JSON whitespace). */
function opensObjectOrArray(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    // Space, tab, line feed, carriage return.
    if (code === 0x20 || code === 0x09 || code === 0x0a || code === 0x0d) continue;
    return code === 0x7b || code === 0x5b;
  }
  return false;
}
