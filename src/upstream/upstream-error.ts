import { McpError, ErrorCode } from '@modelcontextprotocol/sdk/types.js';
import { StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { SseError } from '@modelcontextprotocol/sdk/client/sse.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';

/** Why reaching an upstream failed, in the classes the prober and discovery report. */
export const UPSTREAM_ERROR_KINDS = [
  'connection_refused',
  'dns',
  'timeout',
  'tls',
  'http_status',
  'protocol',
  'auth',
  'refused_url',
  'other',
] as const;
export type UpstreamErrorKind = (typeof UPSTREAM_ERROR_KINDS)[number];

/** An error raised by the gateway's own upstream code, already classified. */
export class UpstreamError extends Error {
  constructor(
    readonly kind: UpstreamErrorKind,
    message: string,
    readonly httpStatus?: number,
    /** A claims challenge from Entra ID (conditional access): the caller must get a new token with these claims. */
    readonly claims?: string,
  ) {
    super(message);
    this.name = 'UpstreamError';
  }
}

/** The Entra ID claims challenge an upstream failure carries, if any. */
export function claimsChallengeOf(error: unknown): string | undefined {
  return error instanceof UpstreamError && error.claims ? error.claims : undefined;
}

/**
 * How an upstream's HTTP error status is reported. A loop refused by a gateway is told by its header, not its status
 * (`loopRefusalOf`, src/upstream/gateway-via.ts): a bare status says nothing of where the request went.
 */
export function upstreamStatusMessage(status: number): string {
  return `the upstream answered HTTP ${status}`;
}

export interface ClassifiedError {
  kind: UpstreamErrorKind;
  message: string;
  httpStatus?: number;
}

const TLS_CODES =
  /^(CERT_|ERR_TLS_|ERR_SSL_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT|EPROTO$|HOSTNAME_MISMATCH)/;

/** Maps whatever the SDK, fetch or the network threw to one kind and a message safe to store and show. */
export function classifyUpstreamError(error: unknown): ClassifiedError {
  const own = ownErrorIn(error);
  if (own) return { kind: own.kind, message: own.message, httpStatus: own.httpStatus };
  if (error instanceof UnauthorizedError) return { kind: 'auth', message: 'the upstream requires authorization' };
  if (error instanceof StreamableHTTPError || error instanceof SseError) {
    const status = error.code;
    if (status === 401 || status === 403) {
      return { kind: 'auth', message: `the upstream answered HTTP ${status}`, httpStatus: status };
    }
    if (status !== undefined && status >= 100) {
      return { kind: 'http_status', message: upstreamStatusMessage(status), httpStatus: status };
    }
  }
  if (error instanceof McpError) {
    if (error.code === (ErrorCode.RequestTimeout as number))
      return { kind: 'timeout', message: 'the upstream did not answer in time' };
    if (error.code === (ErrorCode.ConnectionClosed as number)) {
      return { kind: 'connection_refused', message: 'the upstream closed the connection' };
    }
    // The SDK's message already begins `MCP error {code}: `.
    const message = error.message.startsWith('MCP error ')
      ? error.message
      : `MCP error ${error.code}: ${error.message}`;
    return { kind: 'protocol', message };
  }
  const name = (error as { name?: unknown } | undefined)?.name;
  if (name === 'AbortError' || name === 'TimeoutError')
    return { kind: 'timeout', message: 'the upstream did not answer in time' };
  const malformed = malformedHttpIn(error);
  if (malformed !== undefined) {
    return { kind: 'protocol', message: `the upstream sent a malformed HTTP answer (${malformed})` };
  }
  const code = networkCodeOf(error);
  if (code) {
    if (code === 'ECONNREFUSED') return { kind: 'connection_refused', message: 'connection refused' };
    if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EPIPE') {
      return { kind: 'connection_refused', message: 'connection reset by the upstream' };
    }
    if (code === 'ENOTFOUND' || code === 'EAI_AGAIN')
      return { kind: 'dns', message: 'the upstream host name does not resolve' };
    if (code === 'ETIMEDOUT' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT') {
      return { kind: 'timeout', message: 'the upstream did not answer in time' };
    }
    if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH')
      return { kind: 'connection_refused', message: 'the upstream host is unreachable' };
    if (TLS_CODES.test(code)) return { kind: 'tls', message: `TLS failure (${code})` };
  }
  if (error instanceof SyntaxError || name === 'ZodError') {
    return { kind: 'protocol', message: 'the upstream sent something that is not valid MCP' };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { kind: 'other', message: message.slice(0, 500) };
}

/** The gateway's own error, also where fetch wrapped it (a connection the URL policy refused: 'fetch failed'). */
function ownErrorIn(error: unknown): UpstreamError | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current; depth++) {
    if (current instanceof UpstreamError) return current;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * What is wrong with an upstream's answer that Node's HTTP parser (llhttp) could not read, or undefined when the error
 * is not that: `node:http` raises it with an `HPE_*` code and `Parse Error: {reason}`; undici (the relay's client, and
 * fetch's) as an HTTPParserError, `Response does not match the HTTP/1.1 protocol ({reason})`, whose code undici 7
 * leaves undefined, or, when the parser stops inside a body shorter or longer than its content-length, as
 * UND_ERR_RES_CONTENT_LENGTH_MISMATCH, or, for headers longer than its maxHeaderSize (16 KiB), as
 * UND_ERR_HEADERS_OVERFLOW (`node:http`'s is HPE_HEADER_OVERFLOW). Only llhttp's reason is kept, never the bytes the
 * upstream sent.
 */
function malformedHttpIn(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current; depth++) {
    const { name, code, message } = current as { name?: unknown; code?: unknown; message?: unknown };
    if (code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH') return 'its body does not match its content-length';
    if (code === 'UND_ERR_HEADERS_OVERFLOW') return 'its headers are longer than the gateway reads';
    if (name === 'HTTPParserError' || (typeof code === 'string' && code.startsWith('HPE_'))) {
      const text = typeof message === 'string' ? message : '';
      const reason = /\(([^()]{1,100})\)$/.exec(text)?.[1] ?? /^Parse Error: (.{1,100})$/.exec(text)?.[1];
      return reason ?? (typeof code === 'string' ? code : 'not HTTP/1.1');
    }
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** fetch failures carry the socket's error code on `cause` (sometimes nested once more). */
function networkCodeOf(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}
