/** JSON-RPC 2.0 as MCP uses it: just enough structure to route, check and answer messages. */

export type RequestId = string | number;

export interface JsonRpcRequest {
  jsonrpc: '2.0';
  id: RequestId;
  method: string;
  params?: Record<string, unknown>;
}

export interface JsonRpcNotification {
  jsonrpc: '2.0';
  method: string;
  params?: Record<string, unknown>;
}

export interface JsonRpcResult {
  jsonrpc: '2.0';
  id: RequestId;
  result: Record<string, unknown>;
}

export interface JsonRpcErrorResponse {
  jsonrpc: '2.0';
  id: RequestId | null;
  error: { code: number; message: string; data?: unknown };
}

export type JsonRpcResponse = JsonRpcResult | JsonRpcErrorResponse;
export type JsonRpcMessage = JsonRpcRequest | JsonRpcNotification | JsonRpcResponse;

export const ErrorCodes = {
  parseError: -32700,
  invalidRequest: -32600,
  methodNotFound: -32601,
  invalidParams: -32602,
  internalError: -32603,
  /** MCP SDK's codes for a timed-out request and a closed connection. */
  requestTimeout: -32001,
  connectionClosed: -32000,
} as const;

export function isRequest(message: JsonRpcMessage): message is JsonRpcRequest {
  return 'method' in message && 'id' in message;
}

export function isNotification(message: JsonRpcMessage): message is JsonRpcNotification {
  return 'method' in message && !('id' in message);
}

export function isResponse(message: JsonRpcMessage): message is JsonRpcResponse {
  return !('method' in message) && ('result' in message || 'error' in message);
}

/**
 * Request methods an upstream may be sent twice without harm: they read, or set what a second time sets alike.
 * `tools/call` and any method not named here may act on the world.
 */
const REPEATABLE_METHODS = new Set([
  'initialize',
  'ping',
  'tools/list',
  'resources/list',
  'resources/templates/list',
  'resources/read',
  'resources/subscribe',
  'resources/unsubscribe',
  'prompts/list',
  'prompts/get',
  'completion/complete',
  'logging/setLevel',
]);

/**
 * Whether sending `payload` (one message or a batch) again, to an upstream that may already have acted on it, does
 * no harm: every request in it has a repeatable method. Notifications and responses are repeatable (a second
 * `notifications/cancelled` or answer to the upstream's request changes nothing).
 */
export function isRepeatable(payload: unknown): boolean {
  const messages: unknown[] = Array.isArray(payload) ? payload : [payload];
  return messages.every((message) => {
    const candidate = message as { id?: unknown; method?: unknown } | null;
    if (typeof candidate !== 'object' || candidate === null) return false;
    if (typeof candidate.method !== 'string' || candidate.id === undefined) return true;
    return REPEATABLE_METHODS.has(candidate.method);
  });
}

export function errorResponse(
  id: RequestId | null,
  code: number,
  message: string,
  data?: unknown,
): JsonRpcErrorResponse {
  return { jsonrpc: '2.0', id, error: data === undefined ? { code, message } : { code, message, data } };
}

export function resultResponse(id: RequestId, result: Record<string, unknown>): JsonRpcResult {
  return { jsonrpc: '2.0', id, result };
}

/**
 * Validates one parsed value as a JSON-RPC message, returning a description of
 * what is wrong when it is not one. Shapes of `params` are each method's business.
 */
export function parseMessage(value: unknown): { message: JsonRpcMessage } | { problem: string } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { problem: 'not a JSON-RPC object' };
  const candidate = value as Record<string, unknown>;
  if (candidate.jsonrpc !== '2.0') return { problem: 'jsonrpc must be "2.0"' };
  const hasId = 'id' in candidate;
  if (hasId && !isValidId(candidate.id) && !(candidate.id === null && 'error' in candidate)) {
    return { problem: 'id must be a string or a number' };
  }
  if ('method' in candidate) {
    if (typeof candidate.method !== 'string' || candidate.method.length === 0)
      return { problem: 'method must be a string' };
    if (
      'params' in candidate &&
      (typeof candidate.params !== 'object' || candidate.params === null || Array.isArray(candidate.params))
    ) {
      return { problem: 'params must be an object' };
    }
    return { message: candidate as unknown as JsonRpcMessage };
  }
  if (!hasId) return { problem: 'a message needs a method or an id' };
  if ('result' in candidate) {
    if (typeof candidate.result !== 'object' || candidate.result === null)
      return { problem: 'result must be an object' };
    return { message: candidate as unknown as JsonRpcMessage };
  }
  if ('error' in candidate) {
    const error = candidate.error as Record<string, unknown> | null;
    if (
      typeof error !== 'object' ||
      error === null ||
      typeof error.code !== 'number' ||
      typeof error.message !== 'string'
    ) {
      return { problem: 'error must have a numeric code and a message' };
    }
    return { message: candidate as unknown as JsonRpcMessage };
  }
  return { problem: 'a message needs a method, a result or an error' };
}

function isValidId(id: unknown): id is RequestId {
  return (typeof id === 'string' && id.length <= 256) || (typeof id === 'number' && Number.isFinite(id));
}

type ParsedBody = { messages: JsonRpcMessage[]; batch: boolean } | { problem: string; code: number };

/** The messages of an MCP POST body (one message or a batch), or what makes it unusable. */
export function parseBody(body: unknown): ParsedBody {
  if (body === undefined || body === null || typeof body !== 'object') {
    return { problem: 'Parse error: the body must be a JSON-RPC message', code: ErrorCodes.parseError };
  }
  const batch = Array.isArray(body);
  const items: unknown[] = batch ? body : [body];
  if (items.length === 0) return { problem: 'Invalid Request: empty batch', code: ErrorCodes.invalidRequest };
  const messages: JsonRpcMessage[] = [];
  for (const item of items) {
    const parsed = parseMessage(item);
    if ('problem' in parsed) return { problem: `Invalid Request: ${parsed.problem}`, code: ErrorCodes.invalidRequest };
    messages.push(parsed.message);
  }
  const repeated = messages.length > 1 ? repeatedRequestId(messages) : undefined;
  if (repeated !== undefined) {
    return {
      problem: `Invalid Request: id ${JSON.stringify(repeated)} is used twice`,
      code: ErrorCodes.invalidRequest,
    };
  }
  return { messages, batch };
}

/**
 * The first request id a batch uses twice. Every answer, refusal and audit record is matched to its request by id,
 * so two requests with one id could take each other's verdict (a refused call forwarded under a ping's allowance).
 * 1 and "1" count as one id: some upstreams compare ids as numbers, others as strings.
 */
function repeatedRequestId(messages: JsonRpcMessage[]): RequestId | undefined {
  const seen = new Set<string>();
  for (const message of messages) {
    if (!isRequest(message)) continue;
    const key = String(message.id);
    if (seen.has(key)) return message.id;
    seen.add(key);
  }
  return undefined;
}
