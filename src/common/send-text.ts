import type { ServerResponse } from 'node:http';

/**
 * The whole answer: status, `content-type` (UTF-8), length and body. What Express's `res.send` does for a string,
 * on Node's own response (the MCP endpoints answer outside Express too: src/mcp/mcp-post-lane.ts), without the
 * ETag, which no client of a POST reads.
 */
export function sendText(res: ServerResponse, httpStatus: number, contentType: string, text: string): void {
  res.statusCode = httpStatus;
  res.setHeader('content-type', `${contentType}; charset=utf-8`);
  res.setHeader('content-length', Buffer.byteLength(text));
  res.end(text);
}

/**
 * `sendText` for a body that is mostly bytes encoded already: `head`, `bytes`, `tail`, with `bytes` written as
 * they are (Node corks the three writes into one).
 */
export function sendAround(
  res: ServerResponse,
  httpStatus: number,
  contentType: string,
  head: string,
  bytes: Buffer,
  tail: string,
): void {
  res.statusCode = httpStatus;
  res.setHeader('content-type', `${contentType}; charset=utf-8`);
  res.setHeader('content-length', Buffer.byteLength(head) + bytes.length + Buffer.byteLength(tail));
  res.write(head);
  res.write(bytes);
  res.end(tail);
}
