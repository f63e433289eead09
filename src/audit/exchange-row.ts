import { uuidV7 } from '../common/uuid-v7';
import { censorUrl } from '../logging/logger';
import type { McpExchange } from '../traffic/mcp-exchange';
import { type ArgumentPolicyConfig, applyArgumentPolicy, REDACTED, withoutTokens } from './argument-policy';
import type { UnchainedRow } from './audit-record';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** NUL, and UTF-16 surrogates without their other half. */
// eslint-disable-next-line no-control-regex
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** Longest stored text per field; client-chosen values (method, target, ids) are cut here. */
const MAX_TEXT = 1024;

/**
 * PostgreSQL text cannot hold NUL, and a lone surrogate would reach the
 * database as U+FFFD while the hash saw the original: either would make a
 * stored row disagree with its hash, so both are replaced before hashing.
 */
export function storableText(value: string, max = MAX_TEXT): string {
  const clean = value.replace(UNSTORABLE, '\uFFFD');
  // Cutting may split a surrogate pair: clean the cut end again.
  return clean.length <= max ? clean : `${clean.slice(0, max - 1).replace(UNSTORABLE, '\uFFFD')}…`;
}

function optionalText(value: string | undefined | null, max?: number): string | null {
  return value === undefined || value === null ? null : storableText(value, max);
}

/** A URI's userinfo (`scheme://user:password@host`): up to its last `@` before the path, query or fragment. */
const USERINFO = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^/?#]*@/;

/**
 * A target (a resource URI as the client sent it; a tool or prompt name) without the credentials a URI carries, for
 * tokens are never stored: the values of credential query parameters (`access_token`, `code`, `api_key`, …) censored
 * as the access log censors a URL, and those of the fragment alike (where OAuth's implicit flow puts an
 * `access_token`); the userinfo; and JWTs and Bearer credentials anywhere, as the argument policy finds them in a
 * string. Whatever AUDIT_ARGUMENTS says: a target is kept in every mode.
 */
export function targetWithoutCredentials(target: string): string {
  return withoutTokens(censorUrl(target).replace(USERINFO, `$1${REDACTED}@`));
}

function finiteOrNull(value: number | undefined): number | null {
  return value !== undefined && Number.isFinite(value) ? value : null;
}

/**
 * An exchange as the audit trail stores it, before it is linked into a chain. Runs in the flush, off the hot path, but
 * for an exchange too large to wait in the queue as reported (AuditTrail.record).
 */
export function toUnchainedRow(exchange: McpExchange, policy: ArgumentPolicyConfig): UnchainedRow {
  const at = exchange.at instanceof Date && !Number.isNaN(exchange.at.getTime()) ? exchange.at : new Date();
  const principal = exchange.principal;
  return {
    // Time-ordered, so that the primary key's index grows at its end (src/common/uuid-v7.ts).
    id: uuidV7(at.getTime()),
    streamId: '',
    at,
    requestId: storableText(exchange.requestId, 200),
    surface: exchange.surface,
    ip: optionalText(exchange.ip, 100),
    tenantId: optionalText(principal?.tid, 100),
    objectId: optionalText(principal?.oid, 100),
    clientId: optionalText(principal?.clientId, 100),
    principalName: optionalText(principal?.name, 300),
    principalKind: principal ? (principal.appOnly ? 'app' : 'user') : null,
    sessionId: optionalText(exchange.sessionId, 200),
    serverId: exchange.server && UUID.test(exchange.server.id) ? exchange.server.id.toLowerCase() : null,
    serverSlug: optionalText(exchange.server?.slug ?? exchange.pathSlug, 100),
    method: storableText(exchange.method, 200),
    rpcId: exchange.rpcId === undefined ? null : storableText(JSON.stringify(exchange.rpcId), 200),
    // Redacted before it is cut, so that no token is cut where the redaction would not recognize it any more.
    target: optionalText(exchange.target === undefined ? undefined : targetWithoutCredentials(exchange.target)),
    arguments: applyArgumentPolicy(exchange.arguments, policy),
    decision: exchange.decision,
    rule: optionalText(exchange.rule),
    outcome: exchange.outcome,
    latencyMs: finiteOrNull(exchange.latencyMs) ?? 0,
    upstreamMs: finiteOrNull(exchange.upstreamMs),
    upstreamStatus:
      exchange.upstreamStatus !== undefined && Number.isInteger(exchange.upstreamStatus)
        ? exchange.upstreamStatus
        : null,
    errorKind: optionalText(exchange.errorKind, 100),
  };
}
