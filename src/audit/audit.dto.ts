import { createZodDto, refTo } from '../common/zod-dto';
import { z } from 'zod';
import { pageSizeParam } from '../common/page-size';
import { singleLine } from '../common/plain-text';
import { SERVER_SLUG } from '../registry/server.schema';
import type { ExchangeDecision, ExchangeOutcome, McpSurface } from '../traffic/mcp-exchange';
import type { PrincipalKind } from './audit-record';

// Records keyed by the seam's unions: a value added there fails the typecheck here until it is listed.
const DECISION_SET: Record<ExchangeDecision, true> = {
  allowed: true,
  denied: true,
  rate_limited: true,
  unauthenticated: true,
};
const OUTCOME_SET: Record<ExchangeOutcome, true> = {
  ok: true,
  tool_error: true,
  rpc_error: true,
  upstream_error: true,
  timeout: true,
  refused: true,
  cancelled: true,
  resumable: true,
};
const SURFACE_SET: Record<McpSurface, true> = { aggregate: true, server: true, rest: true };
const PRINCIPAL_KIND_SET: Record<PrincipalKind, true> = { app: true, user: true };
const keysOf = <T extends string>(set: Record<T, true>) => Object.keys(set) as [T, ...T[]];
export const DECISIONS = keysOf(DECISION_SET);
export const OUTCOMES = keysOf(OUTCOME_SET);
export const SURFACES = keysOf(SURFACE_SET);
const PRINCIPAL_KINDS = keysOf(PRINCIPAL_KIND_SET);

/** Tenant, object and client ids: GUIDs from Entra, simple names from the development issuer. */
const PRINCIPAL_PART = /^[A-Za-z0-9._-]{1,100}$/;

/** The caller a `principal` filter names: a user or app by its object id, or an app-only caller by its client id. */
type PrincipalFilter = { tenantId?: string; objectId: string } | { tenantId: string; clientId: string; kind: 'app' };

/** `oid`, `tid:oid`, or `tid:app:clientId` (as `principalKeyOf` names an app-only caller); undefined for anything else. */
function principalFilterOf(value: string): PrincipalFilter | undefined {
  const parts = value.split(':');
  if (!parts.every((part) => PRINCIPAL_PART.test(part))) return undefined;
  const [first, second, third] = parts;
  if (parts.length === 1) return { objectId: first! };
  if (parts.length === 2) return { tenantId: first!, objectId: second! };
  if (parts.length === 3 && second === 'app') return { tenantId: first!, clientId: third!, kind: 'app' };
  return undefined;
}

const timestamp = z.iso
  .datetime({ offset: true, error: 'must be an ISO 8601 date-time such as 2026-11-21T08:00:00Z' })
  .transform((value) => new Date(value))
  // PostgreSQL has no year 0 (1 BC): such a time would fail the query.
  .refine((date) => date.getUTCFullYear() >= 1, 'must be in year 1 or later (UTC)');

/** The filters both the list and the export take. */
const auditFilterShape = {
  from: timestamp.optional().describe('Only records at or after this time (ISO 8601)'),
  to: timestamp.optional().describe('Only records before this time (ISO 8601)'),
  principal: z
    .string()
    .max(205)
    .transform((value, ctx) => {
      const filter = principalFilterOf(value);
      if (filter) return filter;
      ctx.addIssue({ code: 'custom', message: 'must be `{tid}:{oid}`, `{tid}:app:{clientId}` or an `oid`' });
      return z.NEVER;
    })
    .optional()
    .describe(
      "Only this caller, as the rate limiter and `/ratelimits` name callers: `{tid}:{oid}` (a user, or an app by its service principal), or `{tid}:app:{clientId}` for an app-only caller; or just the `oid`. The app form matches records that store the caller's kind, not those written before it was stored",
    ),
  server: z.string().regex(SERVER_SLUG, 'must be a server slug').optional().describe('Only this server (slug)'),
  tool: singleLine(z.string().min(1).max(1024))
    .optional()
    .describe('Only this tool or prompt name, or resource URI, as the upstream names it'),
  method: z
    .string()
    .regex(/^[A-Za-z0-9_/.-]{1,100}$/, 'must be a JSON-RPC method such as tools/call')
    .optional()
    .describe('Only this JSON-RPC method (`tools/call`, `initialize`, …; `http` for refusals before any message)'),
  decision: z.enum(DECISIONS).optional(),
  outcome: z.enum(OUTCOMES).optional(),
};

function checkRange(query: { from?: Date; to?: Date }, ctx: z.RefinementCtx): void {
  if (query.from && query.to && query.from.getTime() > query.to.getTime()) {
    ctx.addIssue({ code: 'custom', path: ['from'], message: 'must not be after `to`' });
  }
}

export const auditListQuerySchema = z
  .object({
    ...auditFilterShape,
    limit: pageSizeParam(500, 50),
    cursor: z.string().max(200).optional().describe('`nextCursor` of the previous page'),
  })
  .strict()
  .superRefine(checkRange);
export type AuditListQuery = z.output<typeof auditListQuerySchema>;
export class AuditListQueryDto extends createZodDto(auditListQuerySchema) {}

export const auditExportQuerySchema = z.object(auditFilterShape).strict().superRefine(checkRange);
export type AuditExportQuery = z.output<typeof auditExportQuerySchema>;
export class AuditExportQueryDto extends createZodDto(auditExportQuerySchema) {}

export const auditRecordViewSchema = z.object({
  id: z.uuid(),
  stream: z.uuid().describe('The chain this record belongs to (one per gateway process start)'),
  seq: z.int().min(1).describe('Position in its stream'),
  at: z.iso.datetime().describe('When the request arrived'),
  requestId: z.string().describe('The HTTP request id (`x-request-id`, also in the logs)'),
  surface: z.enum(SURFACES).describe('`aggregate` (/mcp), `server` (/mcp/{slug}) or `rest` (the REST bridge)'),
  ip: z.string().nullable(),
  principal: z
    .object({
      tid: z.string().nullable(),
      oid: z.string().nullable(),
      clientId: z.string().nullable(),
      name: z.string().nullable(),
      kind: z
        .enum(PRINCIPAL_KINDS)
        .nullable()
        .describe("`app` for an app-only token, `user` for a user's; null in records written before it was stored"),
    })
    .nullable()
    .describe('null when the token was refused'),
  sessionId: z.string().nullable(),
  server: z.object({ id: z.string().nullable(), slug: z.string().nullable() }).nullable(),
  method: z.string(),
  rpcId: z.union([z.string(), z.number()]).nullable(),
  target: z.string().nullable().describe('Tool or prompt name, or resource URI'),
  arguments: z
    .unknown()
    .describe(
      'Per AUDIT_ARGUMENTS: absent (`off`), the arguments with secrets redacted, `sha256:…` (`hash`), or `{ truncated, bytes, sha256 }` when too large',
    ),
  decision: z.enum(DECISIONS),
  rule: z.string().nullable().describe('What decided: an access rule, a rate-limit policy, or why a token was refused'),
  outcome: z.enum(OUTCOMES),
  latencyMs: z.number(),
  upstreamMs: z.number().nullable(),
  upstreamStatus: z.int().nullable(),
  errorKind: z.string().nullable(),
  prevHash: z.string(),
  hash: z.string().describe('sha256 (or HMAC) over this record and prevHash'),
});
export type AuditRecordView = z.infer<typeof auditRecordViewSchema>;
export class AuditRecordDto extends createZodDto(auditRecordViewSchema) {}

export const auditListSchema = z.object({
  records: z.array(refTo(AuditRecordDto)).describe('Newest first'),
  nextCursor: z.string().nullable().describe('Pass as `cursor` for the next (older) page; null on the last page'),
});
export type AuditList = z.infer<typeof auditListSchema>;
export class AuditListDto extends createZodDto(auditListSchema) {}
