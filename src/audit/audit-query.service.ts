import { Injectable } from '@nestjs/common';
import { DomainError } from '../common/domain-error';
import type { AuditRow } from './audit-record';
import { decodeTimeIdCursor, encodeTimeIdCursor } from '../common/time-id-cursor';
import type { AuditExportQuery, AuditList, AuditListQuery, AuditRecordView } from './audit.dto';
import { type AuditFilter, type AuditPosition, AuditRepository } from './audit.repository';
import { targetWithoutCredentials } from './exchange-row';

const EXPORT_PAGE = 1_000;

/** Reads the audit trail for `/api/v1/audit`. */
@Injectable()
export class AuditQueryService {
  constructor(private readonly repository: AuditRepository) {}

  async list(query: AuditListQuery): Promise<AuditList> {
    let after: AuditPosition | undefined;
    if (query.cursor !== undefined) {
      after = decodeTimeIdCursor(query.cursor);
      if (!after) {
        throw new DomainError('validation_error', 'Invalid query', [
          { field: 'cursor', message: 'is not a cursor this API issued' },
        ]);
      }
    }
    const { limit } = query;
    // One more than asked tells whether another page exists.
    const rows = await this.repository.list(filterOf(query), after, limit + 1);
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      records: page.map(toAuditView),
      nextCursor: rows.length > limit && last ? encodeTimeIdCursor(last) : null,
    };
  }

  /** Every matching record, newest first, a page at a time so memory stays flat however many there are. */
  async *export(query: AuditExportQuery): AsyncGenerator<AuditRecordView[]> {
    const filter = filterOf(query);
    let after: AuditPosition | undefined;
    for (;;) {
      const rows = await this.repository.list(filter, after, EXPORT_PAGE);
      if (rows.length > 0) yield rows.map(toAuditView);
      if (rows.length < EXPORT_PAGE) return;
      after = rows[rows.length - 1];
    }
  }
}

function filterOf(query: AuditExportQuery): AuditFilter {
  const principal = query.principal;
  return {
    from: query.from,
    to: query.to,
    tenantId: principal?.tenantId,
    objectId: principal && 'objectId' in principal ? principal.objectId : undefined,
    clientId: principal && 'clientId' in principal ? principal.clientId : undefined,
    principalKind: principal && 'kind' in principal ? principal.kind : undefined,
    server: query.server,
    // Compared with the target as stored: a URI sent with a credential is found by itself.
    target: query.tool === undefined ? undefined : targetWithoutCredentials(query.tool),
    method: query.method,
    decision: query.decision,
    outcome: query.outcome,
  };
}

export function toAuditView(row: AuditRow): AuditRecordView {
  const hasPrincipal = row.tenantId !== null || row.objectId !== null || row.clientId !== null;
  return {
    id: row.id,
    stream: row.streamId,
    seq: row.seq,
    at: row.at.toISOString(),
    requestId: row.requestId,
    surface: row.surface,
    ip: row.ip,
    principal: hasPrincipal
      ? {
          tid: row.tenantId,
          oid: row.objectId,
          clientId: row.clientId,
          name: row.principalName,
          kind: row.principalKind,
        }
      : null,
    sessionId: row.sessionId,
    server: row.serverId !== null || row.serverSlug !== null ? { id: row.serverId, slug: row.serverSlug } : null,
    method: row.method,
    rpcId: row.rpcId === null ? null : parseJson<string | number>(row.rpcId),
    target: row.target,
    arguments: row.arguments === null ? undefined : parseJson<unknown>(row.arguments),
    decision: row.decision,
    rule: row.rule,
    outcome: row.outcome,
    latencyMs: row.latencyMs,
    upstreamMs: row.upstreamMs,
    upstreamStatus: row.upstreamStatus,
    errorKind: row.errorKind,
    prevHash: row.prevHash,
    hash: row.hash,
  };
}

/** Stored text is JSON the trail wrote; a row edited into something else is shown as the text it holds. */
function parseJson<T>(text: string): T | string {
  try {
    return JSON.parse(text) as T;
  } catch {
    return text;
  }
}
