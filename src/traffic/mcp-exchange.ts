import type { Principal } from '../auth/principal';

/** Which door a request came through: `/mcp`, `/mcp/{slug}` or the REST bridge. */
export type McpSurface = 'aggregate' | 'server' | 'rest';

/** Why the gateway let a request through or not. */
export type ExchangeDecision = 'allowed' | 'denied' | 'rate_limited' | 'unauthenticated';

/**
 * How a request ended: `ok`; `tool_error` (a result with `isError`); `rpc_error`
 * (a JSON-RPC error answer, the upstream's or the gateway's); `upstream_error`
 * (the upstream could not be reached or broke the protocol); `timeout`;
 * `refused` (the gateway answered without asking the upstream: denial, rate
 * limit, bad token); `cancelled` (the client cancelled it before the answer); `resumable` (on `/mcp/{slug}`, the
 * upstream's event stream broke after an event with an id and was passed on broken, for the client to resume by GET
 * with Last-Event-ID: the answer, if any, comes on a stream this record does not follow).
 */
export type ExchangeOutcome =
  'ok' | 'tool_error' | 'rpc_error' | 'upstream_error' | 'timeout' | 'refused' | 'cancelled' | 'resumable';

export interface ServerRef {
  id: string;
  slug: string;
}

/**
 * One MCP request that reached the gateway and how it ended: what the audit
 * trail stores and the metrics count. A batch gives one exchange per request
 * in it, all with the same `requestId`.
 */
export interface McpExchange {
  /** When the HTTP request arrived. */
  at: Date;
  /** The HTTP request's id (`x-request-id`, also in the logs). */
  requestId: string;
  surface: McpSurface;
  /** Address of the client as the gateway saw it. */
  ip?: string;
  /** Absent when the token was refused. */
  principal?: Principal;
  sessionId?: string;
  server?: ServerRef;
  /**
   * The slug the path named (`/mcp/{slug}…`) when the request was refused before any server was looked up (a refused
   * token): audited, but no server of the gateway's, so never a metrics label (anyone may name any slug).
   */
  pathSlug?: string;
  /** The JSON-RPC method; `http` for a refusal before any message was read. */
  method: string;
  /** The JSON-RPC id of the request, when it had one. */
  rpcId?: string | number;
  /** The tool or prompt name, or resource URI, as the upstream names it. */
  target?: string;
  /** The arguments as sent; the audit trail applies its argument policy before storing anything. */
  arguments?: unknown;
  decision: ExchangeDecision;
  /** What decided: an access rule (`tool-deny:<glob>`), a rate-limit policy, or why a token was refused. */
  rule?: string;
  outcome: ExchangeOutcome;
  /** From arrival to the answer (for streams: to the final response). */
  latencyMs: number;
  /** Time spent waiting for the upstream, when it was asked. */
  upstreamMs?: number;
  /** HTTP status of the upstream's answer, when there was one. */
  upstreamStatus?: number;
  /**
   * The classified upstream failure (`timeout`, `connection_refused`, ...) for `upstream_error` and `timeout`;
   * `client_closed` for a request `cancelled` by a client that went away, `session_store_unavailable` for an
   * `rpc_error` the gateway answered (503) because its session store did not answer; for `resumable`, the break of
   * the stream.
   */
  errorKind?: string;
}
