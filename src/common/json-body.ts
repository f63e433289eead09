import { HttpException, type INestApplication } from '@nestjs/common';
import { json, type NextFunction, type Request, type Response } from 'express';

export interface JsonBodyOptions {
  /** Largest JSON body any route accepts, in bytes; larger ones get 413 before any handler runs. */
  maxBytes: number;
  /**
   * Paths answered in JSON-RPC (the MCP endpoints): a body that cannot be read
   * there is a JSON-RPC error (`-32700` for bad JSON), not problem+json.
   */
  isJsonRpc: (req: Request) => boolean;
  /**
   * Paths that take JSON bodies only: a body of another media type (or of none) gets 415 there. Elsewhere (the
   * MCP paths, which answer such bodies themselves) the parser leaves it unread.
   */
  takesJsonOnly: (req: Request) => boolean;
}

/** Whether the request carries a body: some bytes, or a chunked one. */
function hasBody(req: Request): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/** Whether the `content-type` names JSON (`application/json`, with any parameters). */
function isJson(req: Request): boolean {
  const type = req.headers['content-type'];
  return type !== undefined && type.split(';', 1)[0]?.trim().toLowerCase() === 'application/json';
}

const PARSE_ERROR = -32700;
const INVALID_REQUEST = -32600;

/**
 * Parses JSON bodies in place of Nest's default parser, whose parse errors
 * carry the parser's message (which may quote the body) to the client.
 */
export function useJsonBody(app: INestApplication, options: JsonBodyOptions): void {
  const messages: Record<string, string> = {
    'entity.parse.failed': 'the request body is not valid JSON',
    'entity.too.large': `the request body is larger than ${options.maxBytes} bytes`,
    'encoding.unsupported': 'the request body has an unsupported content encoding',
    'charset.unsupported': 'the request body has an unsupported charset',
    'request.aborted': 'the request was aborted',
    'request.size.invalid': 'the request body is shorter or longer than its content-length',
  };
  app.use((req: Request, res: Response, next: NextFunction) => {
    if (!hasBody(req) || isJson(req) || !options.takesJsonOnly(req)) {
      next();
      return;
    }
    // PATCH takes the fields to change as plain JSON; it is not a JSON Merge Patch (nested objects are replaced).
    if (req.method === 'PATCH') res.setHeader('Accept-Patch', 'application/json');
    next(new HttpException('the request body must be application/json', 415));
  });
  app.use(json({ limit: options.maxBytes }));
  app.use((error: unknown, req: Request, res: Response, next: NextFunction) => {
    const { type, status } = error as { type?: unknown; status?: unknown };
    if (typeof type !== 'string' || typeof status !== 'number' || status >= 500) return next(error);
    const message = messages[type] ?? 'the request body could not be read';
    if (options.isJsonRpc(req)) {
      const code = type === 'entity.parse.failed' ? PARSE_ERROR : INVALID_REQUEST;
      res
        .status(status)
        .type('application/json')
        .send(
          JSON.stringify({
            jsonrpc: '2.0',
            id: null,
            error: { code, message: `${code === PARSE_ERROR ? 'Parse error' : 'Invalid Request'}: ${message}` },
          }),
        );
      return;
    }
    next(new HttpException(message, status));
  });
}
