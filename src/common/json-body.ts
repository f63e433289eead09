import { HttpException, type INestApplication } from '@nestjs/common';
import { json, type NextFunction, type Request, type Response } from 'express';

/** Largest JSON body any route accepts; larger ones get 413 before any handler runs. */
export const MAX_JSON_BODY = '1mb';

const MESSAGES: Record<string, string> = {
  'entity.parse.failed': 'the request body is not valid JSON',
  'entity.too.large': `the request body is larger than ${MAX_JSON_BODY}`,
  'encoding.unsupported': 'the request body has an unsupported content encoding',
  'charset.unsupported': 'the request body has an unsupported charset',
  'request.aborted': 'the request was aborted',
  'request.size.invalid': 'the request body is shorter or longer than its content-length',
};

/**
 * Parses JSON bodies in place of Nest's default parser, whose parse errors
 * carry the parser's message (which may quote the body) to the client.
 */
export function useJsonBody(app: INestApplication): void {
  app.use(json({ limit: MAX_JSON_BODY }));
  app.use((error: unknown, _req: Request, _res: Response, next: NextFunction) => {
    const { type, status } = error as { type?: unknown; status?: unknown };
    if (typeof type === 'string' && typeof status === 'number' && status < 500) {
      next(new HttpException(MESSAGES[type] ?? 'the request body could not be read', status));
      return;
    }
    next(error);
  });
}
