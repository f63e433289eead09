import { Injectable } from '@nestjs/common';
import { PrismaService } from '../database/prisma.service';
import {
  Prisma,
  type AuditRecord as AuditRecordRow,
  type AuditStream as AuditStreamRow,
} from '../generated/prisma/client';
import type { ExchangeDecision, ExchangeOutcome, McpSurface } from '../traffic/mcp-exchange';
import {
  type AuditRow,
  FORMAT_WITH_KIND,
  GENESIS_HASH,
  type PrincipalKind,
  type StreamBounds,
  storedText,
} from './audit-record';

/** A position in the audit list, newest first: ordered by (at, id) descending. */
export interface AuditPosition {
  at: Date;
  id: string;
}

export interface AuditFilter {
  from?: Date;
  to?: Date;
  tenantId?: string;
  objectId?: string;
  clientId?: string;
  principalKind?: PrincipalKind;
  server?: string;
  target?: string;
  method?: string;
  decision?: ExchangeDecision;
  outcome?: ExchangeOutcome;
}

export interface AuditStreamStart {
  id: string;
  startedAt: Date;
  host: string;
  pid: number;
}

/** Where a page of streams ends, for the next. */
export interface StreamPosition {
  startedAt: Date;
  id: string;
}

export interface StreamPage {
  streams: StreamBounds[];
  /** Absent when the page is empty. */
  next?: StreamPosition;
}

/**
 * Where a stream's stored chain stands, for linking its next records onto it: its head, and how many of its records
 * the database refused and the gateway set aside (their successors are stored `setAside` places lower than written).
 */
export interface StoredHead {
  seq: number;
  hash: string;
  setAside: number;
}

/** What one retention pass removed. */
export interface ExpiryResult {
  streams: number;
  removed: number;
}

/**
 * Records one step of retention removes at most. Deleting them took about 1 ms on the test machines' PostgreSQL 15
 * (10,000: 20 ms; 100,000: 280 ms, with a warm cache), so that even the smallest
 * DATABASE_QUERY_TIMEOUT_MS (100 ms) leaves room for a cold cache, and inserts into the stream wait that long at most.
 */
export const RETENTION_BATCH = 1_000;

export interface ExpiryOptions {
  /** Records one step removes at most (RETENTION_BATCH); tests lower it to cut a small backlog in several steps. */
  batchSize?: number;
  /** Ends the pass between two steps (the process is shutting down); what the steps before it cut stays cut. */
  signal?: AbortSignal;
}

/** Audit records and their streams. Rows are inserted and, by retention only, deleted; never updated. */
@Injectable()
export class AuditRepository {
  constructor(private readonly prisma: PrismaService) {}

  async startStream(stream: AuditStreamStart): Promise<void> {
    await this.prisma.auditStream.create({
      data: { ...stream, lastSeq: 0n, lastHash: GENESIS_HASH },
    });
  }

  /**
   * Stores chained rows of one stream and moves its head, in one statement; registers the
   * stream (`stream`, or a placeholder for a replayed one) if it is not yet.
   * Rows already stored (a replayed batch) and rows retention already passed are skipped. `text` is the rows' `storedText`s as one JSON array, when the caller made them already; `setAside`, how
   * many records of the stream were set aside before these (StoredHead), recorded with the head.
   */
  async insert(
    rows: AuditRow[],
    stream?: AuditStreamStart,
    text = `[${rows.map(storedText).join(',')}]`,
    setAside = 0,
  ): Promise<number> {
    const last = rows[rows.length - 1];
    if (!last) return 0;
    const streamId = last.streamId;
    // One statement, atomic on its own: no BEGIN and COMMIT round trips.
    // The rows travel as one JSON parameter: a parameter per field would be 28 per row, and column arrays cost a
    // walk over every element. Each row is the array its hash was computed over with the hash appended (storedText),
    // so the text made for hashing is not followed by a second serialization; the positions below are that
    // array's, after the format tag. jsonb, parsed once, reads an element by position directly (json would be
    // parsed again for every field). It goes straight to the driver (queryRows): through Prisma it would be
    // serialized and parsed once more. The rows are sanitized already (no NUL, no lone surrogate: exchange-row.ts),
    // so PostgreSQL reads back what was hashed. A record with a caller's kind has it as one more element (27),
    // before the hash (FORMAT_WITH_KIND in audit-record.ts): the hash is read as the last element.
    // The stream's upsert locks its row (as retention does) and returns its anchor, below which rows are skipped.
    const [result] = await this.prisma.queryRows(
      `WITH stream AS (
        INSERT INTO audit_streams (id, started_at, host, pid, last_seq, last_hash, set_aside)
        VALUES ($1::uuid, $2::timestamptz, $3, $4::int, $5::bigint, $6, $8::bigint)
        ON CONFLICT (id) DO UPDATE SET
          last_hash = CASE WHEN EXCLUDED.last_seq > audit_streams.last_seq THEN EXCLUDED.last_hash ELSE audit_streams.last_hash END,
          last_seq = GREATEST(audit_streams.last_seq, EXCLUDED.last_seq),
          set_aside = GREATEST(audit_streams.set_aside, EXCLUDED.set_aside)
        RETURNING anchor_seq
      ), inserted AS (
        INSERT INTO audit_records (id, stream_id, seq, at, request_id, surface, ip, tenant_id, object_id, client_id,
          principal_name, session_id, server_id, server_slug, method, rpc_id, target, arguments, decision, rule,
          outcome, latency_ms, upstream_ms, upstream_status, error_kind, principal_kind, prev_hash, hash)
        SELECT (r->>2)::uuid, (r->>3)::uuid, (r->>4)::bigint, (r->>5)::timestamptz, r->>6, r->>7, r->>8, r->>9,
          r->>10, r->>11, r->>12, r->>13, (r->>14)::uuid, r->>15, r->>16, r->>17, r->>18, r->>19, r->>20, r->>21,
          r->>22, (r->>23)::float8, (r->>24)::float8, (r->>25)::int, r->>26,
          CASE WHEN r->>0 = '${FORMAT_WITH_KIND}' THEN r->>27 END, r->>1, r->>(-1)
        FROM jsonb_array_elements($7::jsonb) AS r
        WHERE (r->>4)::bigint > (SELECT anchor_seq FROM stream)
        ON CONFLICT (stream_id, seq) DO NOTHING
        RETURNING 1
      )
      SELECT count(*)::int AS created FROM inserted`,
      [
        streamId,
        (stream?.startedAt ?? rows[0]!.at).toISOString(),
        stream?.host ?? '',
        String(stream?.pid ?? 0),
        String(last.seq),
        last.hash,
        text,
        String(setAside),
      ],
    );
    return Number(result?.[0] ?? 0);
  }

  /** Where a stream's stored chain stands, or undefined when no row describes it yet. */
  async storedHead(streamId: string): Promise<StoredHead | undefined> {
    const [row] = await this.prisma.queryRows(
      'SELECT last_seq::text, last_hash, set_aside::text FROM audit_streams WHERE id = $1::uuid',
      [streamId],
    );
    return row ? { seq: Number(row[0]), hash: String(row[1]), setAside: Number(row[2]) } : undefined;
  }

  /**
   * Records that `setAside` records of a stream were set aside, its chain standing at `head` (moved there if it was
   * lower; a stream none of whose records was stored yet gets its row), so that its later records, wherever they are
   * replayed, are linked onto it.
   */
  async recordSetAside(streamId: string, head: StoredHead): Promise<void> {
    await this.prisma.queryRows(
      `INSERT INTO audit_streams (id, started_at, host, pid, last_seq, last_hash, set_aside)
      VALUES ($1::uuid, now(), '', 0, $2::bigint, $3, $4::bigint)
      ON CONFLICT (id) DO UPDATE SET
        last_hash = CASE WHEN EXCLUDED.last_seq > audit_streams.last_seq THEN EXCLUDED.last_hash ELSE audit_streams.last_hash END,
        last_seq = GREATEST(audit_streams.last_seq, EXCLUDED.last_seq),
        set_aside = GREATEST(audit_streams.set_aside, EXCLUDED.set_aside)`,
      [streamId, String(head.seq), head.hash, String(head.setAside)],
    );
  }

  /** Which of these record ids are stored. */
  async storedIds(ids: string[]): Promise<Set<string>> {
    const rows = await this.prisma.queryRows(
      'SELECT id::text FROM audit_records WHERE id = ANY(SELECT jsonb_array_elements_text($1::jsonb)::uuid)',
      [JSON.stringify(ids)],
    );
    return new Set(rows.map((row) => String(row[0])));
  }

  async list(filter: AuditFilter, after: AuditPosition | undefined, limit: number): Promise<AuditRow[]> {
    const where = whereOf(filter);
    if (after) {
      where.AND = [{ OR: [{ at: { lt: after.at } }, { at: after.at, id: { lt: after.id } }] }];
    }
    const rows = await this.prisma.auditRecord.findMany({
      where,
      orderBy: [{ at: 'desc' }, { id: 'desc' }],
      take: limit,
    });
    return rows.map(toRow);
  }

  /** A page of the streams, oldest first (by start, then id), after `after`. */
  async streamsPage(after: StreamPosition | undefined, limit: number): Promise<StreamPage> {
    const rows = await this.prisma.auditStream.findMany({
      where: after
        ? { OR: [{ startedAt: { gt: after.startedAt } }, { startedAt: after.startedAt, id: { gt: after.id } }] }
        : {},
      orderBy: [{ startedAt: 'asc' }, { id: 'asc' }],
      take: limit,
    });
    const last = rows[rows.length - 1];
    return { streams: rows.map(toBounds), next: last && { startedAt: last.startedAt, id: last.id } };
  }

  /** One stream's bounds now, or undefined when its row is gone. */
  async streamBounds(streamId: string): Promise<StreamBounds | undefined> {
    const row = await this.prisma.auditStream.findUnique({ where: { id: streamId } });
    return row ? toBounds(row) : undefined;
  }

  /**
   * A page of the stream ids that records name, in id order after `after`, and those of them no stream row describes
   * (a deleted stream row). Each id is one probe of the (stream_id, seq) index, skipping from one stream to the next,
   * so a page costs as many probes as it holds ids however many records each stream has: reading every record's
   * stream id took as long as the records are many, past any bound on a statement.
   */
  async recordStreamsPage(after: string | undefined, limit: number): Promise<{ last?: string; orphans: string[] }> {
    const rows = await this.prisma.$queryRaw<{ stream_id: string; has_row: boolean }[]>`
      WITH RECURSIVE ids AS (
        (SELECT stream_id FROM audit_records
          ${after === undefined ? Prisma.empty : Prisma.sql`WHERE stream_id > ${after}::uuid`}
          ORDER BY stream_id LIMIT 1)
        UNION ALL
        SELECT (SELECT r.stream_id FROM audit_records r WHERE r.stream_id > ids.stream_id ORDER BY r.stream_id LIMIT 1)
        FROM ids WHERE ids.stream_id IS NOT NULL
      )
      SELECT page.stream_id::text AS stream_id,
        EXISTS (SELECT 1 FROM audit_streams s WHERE s.id = page.stream_id) AS has_row
      FROM (SELECT stream_id FROM ids WHERE stream_id IS NOT NULL LIMIT ${limit}::int) AS page
      ORDER BY page.stream_id`;
    return {
      last: rows.length < limit ? undefined : rows[rows.length - 1]?.stream_id,
      orphans: rows.filter((row) => !row.has_row).map((row) => row.stream_id),
    };
  }

  /** One page of a stream's chain, in seq order, after `afterSeq` and up to `uptoSeq`. */
  async chainPage(streamId: string, afterSeq: number, uptoSeq: number, limit: number): Promise<AuditRow[]> {
    const rows = await this.prisma.auditRecord.findMany({
      where: { streamId, seq: { gt: BigInt(afterSeq), lte: BigInt(uptoSeq) } },
      orderBy: { seq: 'asc' },
      take: limit,
    });
    return rows.map(toRow);
  }

  /**
   * Removes every stream's oldest records up to the first one at or after `cutoff` (only a prefix, so what stays is
   * still one chain) and moves the stream's anchor to the last removed record. A stream's cut is made in steps of at
   * most `batchSize` records, each its own short transaction, so that a backlog of any size is cut a step at a time,
   * each statement well inside DATABASE_QUERY_TIMEOUT_MS, and inserts into the stream wait for one step at most;
   * in one transaction, a cut longer than Prisma's 5 s for it was never made, however often it was retried.
   */
  async expire(cutoff: Date, { batchSize = RETENTION_BATCH, signal }: ExpiryOptions = {}): Promise<ExpiryResult> {
    // Streams whose oldest stored record (the first after the anchor) is past the cutoff: one probe of the
    // (stream_id, seq) index per stream, where reading the expired records themselves took as long as they are many.
    const candidates = await this.prisma.$queryRaw<{ id: string }[]>`
      SELECT s.id::text AS id FROM audit_streams s
      WHERE (SELECT r.at FROM audit_records r WHERE r.stream_id = s.id AND r.seq > s.anchor_seq ORDER BY r.seq LIMIT 1)
        < ${cutoff}
      ORDER BY s.started_at, s.id`;
    let streams = 0;
    let removed = 0;
    for (const { id } of candidates) {
      let cut = 0;
      for (;;) {
        if (signal?.aborted) break;
        const step = await this.expireStep(id, cutoff, batchSize);
        cut += step;
        if (step < batchSize) break;
      }
      if (cut > 0) {
        streams += 1;
        removed += cut;
      }
      if (signal?.aborted) break;
    }
    return { streams, removed };
  }

  /** One step of a stream's cut: at most `batchSize` of its oldest records, none at or after `cutoff`. */
  private expireStep(streamId: string, cutoff: Date, batchSize: number): Promise<number> {
    return this.prisma.$transaction(async (tx) => {
      // Serializes concurrent retention passes (replicas) on one stream, and inserts into it (their upsert of the
      // stream row waits for this lock): where the step ends is read under it, each step again, so a spooled batch
      // replayed meanwhile (between steps too) is seen, and none of its records younger than the cutoff goes with
      // the older ones.
      const [stream] = await tx.$queryRaw<{ anchor_seq: bigint }[]>`
        SELECT anchor_seq FROM audit_streams WHERE id = ${streamId}::uuid FOR UPDATE`;
      if (!stream) return 0;
      // The next `batchSize` records after the anchor, up to the first young one among them.
      const [cut] = await tx.$queryRaw<{ upto: bigint | null }[]>`
        WITH next AS (
          SELECT seq, at FROM audit_records WHERE stream_id = ${streamId}::uuid AND seq > ${stream.anchor_seq}
          ORDER BY seq LIMIT ${batchSize}::int
        )
        SELECT COALESCE((SELECT MIN(seq) - 1 FROM next WHERE at >= ${cutoff}), (SELECT MAX(seq) FROM next)) AS upto`;
      const upto = cut?.upto;
      if (upto === null || upto === undefined || upto <= stream.anchor_seq) return 0;
      const [last] = await tx.$queryRaw<{ hash: string }[]>`
        SELECT hash FROM audit_records WHERE stream_id = ${streamId}::uuid AND seq = ${upto}`;
      // A gap at the cut (records still spooled elsewhere): cut below it next time.
      if (!last) return 0;
      // From the anchor up: the index entries of the records earlier steps removed are not walked again.
      const deleted = await tx.$executeRaw`
        DELETE FROM audit_records WHERE stream_id = ${streamId}::uuid AND seq > ${stream.anchor_seq} AND seq <= ${upto}`;
      await tx.$executeRaw`
        UPDATE audit_streams SET anchor_seq = ${upto}, anchor_hash = ${last.hash},
          removed_count = removed_count + ${BigInt(deleted)}
        WHERE id = ${streamId}::uuid`;
      return deleted;
    });
  }
}

function whereOf(filter: AuditFilter): Prisma.AuditRecordWhereInput {
  const where: Prisma.AuditRecordWhereInput = {};
  if (filter.from || filter.to) where.at = { gte: filter.from, lt: filter.to };
  if (filter.tenantId) where.tenantId = filter.tenantId;
  if (filter.objectId) where.objectId = filter.objectId;
  if (filter.clientId) where.clientId = filter.clientId;
  if (filter.principalKind) where.principalKind = filter.principalKind;
  if (filter.server) where.serverSlug = filter.server;
  if (filter.target) where.target = filter.target;
  if (filter.method) where.method = filter.method;
  if (filter.decision) where.decision = filter.decision;
  if (filter.outcome) where.outcome = filter.outcome;
  return where;
}

function toBounds(row: AuditStreamRow): StreamBounds {
  return {
    streamId: row.id,
    anchorSeq: Number(row.anchorSeq),
    anchorHash: row.anchorHash,
    lastSeq: Number(row.lastSeq),
    lastHash: row.lastHash,
  };
}

function toRow(row: AuditRecordRow): AuditRow {
  return {
    ...row,
    seq: Number(row.seq),
    surface: row.surface as McpSurface,
    principalKind: row.principalKind as PrincipalKind | null,
    decision: row.decision as ExchangeDecision,
    outcome: row.outcome as ExchangeOutcome,
  };
}
