import type { Response } from 'express';
import { errorResponse, type JsonRpcMessage, type RequestId } from './jsonrpc';
import { formatSse, type SseEvent } from './sse';

/** A JSON-RPC error as the whole HTTP answer (transport-level problems: bad session, bad body). */
export function sendRpcError(
  res: Response,
  httpStatus: number,
  id: RequestId | null,
  code: number,
  message: string,
  data?: unknown,
): void {
  sendJson(res, httpStatus, errorResponse(id, code, message, data));
}

export function sendJson(res: Response, httpStatus: number, body: JsonRpcMessage | JsonRpcMessage[]): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.status(httpStatus).type('application/json').send(JSON.stringify(body));
}

/** Starts an SSE answer; events are written with `writeEvent`. */
export function startSse(res: Response): void {
  res.status(200);
  res.setHeader('content-type', 'text/event-stream');
  res.setHeader('cache-control', 'no-cache, no-transform');
  res.setHeader('connection', 'keep-alive');
  // Proxies such as nginx buffer streams unless told otherwise.
  res.setHeader('x-accel-buffering', 'no');
  res.flushHeaders();
}

export function writeEvent(res: Response, event: SseEvent): void {
  res.write(formatSse(event));
}
