import { createHmac, hash } from 'node:crypto';
import { isoTime } from '../common/iso-time';
import type { ExchangeDecision, ExchangeOutcome, McpSurface } from '../traffic/mcp-exchange';

/** The `prevHash` of a stream's first record. */
export const GENESIS_HASH = '0'.repeat(64);

/** Bumped if the canonical form ever changes; part of every hash. */
const FORMAT = 'mcp-gateway.audit.v1';
/**
 * v1 followed by the caller's kind: the form of a record that has one. A record without one (a refused token, and
 * every record written before the kind was stored) keeps the v1 form, so chains already stored verify as they did
 * and a batch spooled by an earlier version replays with its hashes; a kind set or cleared afterwards changes which
 * form the record is hashed in, and so its hash.
 */
export const FORMAT_WITH_KIND = 'mcp-gateway.audit.v2';

/** Whether a caller held an app-only token (an application acting as itself) or acted for a user. */
export type PrincipalKind = 'app' | 'user';

/**
 * One audit record, as stored and as the chain hashes it. Every string is
 * already sanitized (well-formed, no NUL), so what PostgreSQL stores is
 * byte for byte what was hashed.
 */
export interface AuditRow {
  id: string;
  streamId: string;
  seq: number;
  at: Date;
  requestId: string;
  surface: McpSurface;
  ip: string | null;
  tenantId: string | null;
  objectId: string | null;
  clientId: string | null;
  principalName: string | null;
  /** Null when the token was refused, and in records written before the kind was stored. */
  principalKind: PrincipalKind | null;
  sessionId: string | null;
  serverId: string | null;
  serverSlug: string | null;
  method: string;
  rpcId: string | null;
  target: string | null;
  /** Canonical JSON text after the argument policy; null when the policy is `off` or there were none. */
  arguments: string | null;
  decision: ExchangeDecision;
  rule: string | null;
  outcome: ExchangeOutcome;
  latencyMs: number;
  upstreamMs: number | null;
  upstreamStatus: number | null;
  errorKind: string | null;
  prevHash: string;
  hash: string;
}

export type UnchainedRow = Omit<AuditRow, 'seq' | 'prevHash' | 'hash'>;

/**
 * Hashes a record together with its predecessor's hash. With a key, an HMAC:
 * then only holders of the key can recompute a chain after editing it.
 */
export function hashRecord(row: Omit<AuditRow, 'hash'>, key?: string): string {
  return digest(canonicalText(row), key);
}

/**
 * A record as the database receives it (`AuditRepository.insert`): its canonical form with its hash appended, a
 * JSON array whose positions the insert names. Storing the text already built for the hash spares serializing each
 * record a second time.
 */
export function storedText(row: AuditRow): string {
  return withHash(canonicalText(row), row.hash);
}

function withHash(canonical: string, hash: string): string {
  return `${canonical.slice(0, -1)},"${hash}"]`;
}

function digest(canonical: string, key: string | undefined): string {
  return key ? createHmac('sha256', key).update(canonical, 'utf8').digest('hex') : hash('sha256', canonical, 'hex');
}

/**
 * What the hash is over: the format tag, the predecessor's hash, then every field (the insert reads them by
 * position), and the caller's kind last when there is one (FORMAT_WITH_KIND).
 */
function canonicalText(row: Omit<AuditRow, 'hash'>): string {
  // A row read back from a batch an earlier version spooled has no such field at all.
  const kind = row.principalKind ?? null;
  const fields = [
    kind === null ? FORMAT : FORMAT_WITH_KIND,
    row.prevHash,
    row.id,
    row.streamId,
    String(row.seq),
    isoTime(row.at.getTime()),
    row.requestId,
    row.surface,
    row.ip,
    row.tenantId,
    row.objectId,
    row.clientId,
    row.principalName,
    row.sessionId,
    row.serverId,
    row.serverSlug,
    row.method,
    row.rpcId,
    row.target,
    row.arguments,
    row.decision,
    row.rule,
    row.outcome,
    row.latencyMs,
    row.upstreamMs,
    row.upstreamStatus,
    row.errorKind,
  ];
  if (kind !== null) fields.push(kind);
  return JSON.stringify(fields);
}

/**
 * A stream's chain head in this process: hands out sequence numbers and
 * links each record to the previous one. Synchronous, so the order records
 * are chained in is the order they were taken from the queue.
 */
export class ChainHead {
  private seq = 0;
  private last = GENESIS_HASH;

  constructor(
    readonly streamId: string,
    private readonly key?: string,
  ) {}

  get lastSeq(): number {
    return this.seq;
  }

  /**
   * `row`, completed in place (no copy: the writer links thousands a second), as the chain's next record. With
   * `texts`, its `storedText` is pushed there, made from the text the hash was computed over.
   */
  link(row: UnchainedRow, texts?: string[]): AuditRow {
    const linked: AuditRow = Object.assign(row, {
      streamId: this.streamId,
      seq: this.seq + 1,
      prevHash: this.last,
      hash: '',
    });
    const canonical = canonicalText(linked);
    linked.hash = digest(canonical, this.key);
    texts?.push(withHash(canonical, linked.hash));
    this.seq = linked.seq;
    this.last = linked.hash;
    return linked;
  }
}

/** What went wrong at the first broken link of a chain. */
export interface BrokenLink {
  streamId: string;
  /** The record at fault; absent when the record itself is missing. */
  recordId?: string;
  seq: number;
  reason: string;
}

/** Where a stream's chain starts (after retention) and where its head says it ends. */
export interface StreamBounds {
  streamId: string;
  anchorSeq: number;
  anchorHash: string | null;
  lastSeq: number;
  lastHash: string;
}

/**
 * Checks one stream's records, fed in `seq` order a page at a time. Each
 * record must follow its predecessor by one, name its hash, and hash to what
 * it says; the last one must be the head the stream row names.
 */
export class ChainWalker {
  private expectedSeq: number;
  private prevHash: string;
  private count = 0;

  constructor(
    private readonly stream: StreamBounds,
    private readonly key?: string,
  ) {
    this.expectedSeq = stream.anchorSeq + 1;
    this.prevHash = stream.anchorSeq > 0 ? (stream.anchorHash ?? '') : GENESIS_HASH;
  }

  get verified(): number {
    return this.count;
  }

  /**
   * Why a record's hash is not its stored one. A key other than the writer's fails every stream at its first record,
   * which tampering cannot be told from; a record hashed without a key can be recognized as such.
   */
  private hashMismatch(row: AuditRow): string {
    if (this.key !== undefined && hashRecord(row, undefined) === row.hash) {
      // Never a reason to verify without the key: a chain forged by someone without the key looks just like this.
      return 'the record was hashed without a key though AUDIT_HMAC_KEY is set: written by a gateway without the key, or forged without it';
    }
    if (this.count === 0) {
      return 'the record does not hash to its stored hash: a field was changed, or AUDIT_HMAC_KEY is not the key the gateway wrote it with';
    }
    return 'the record does not hash to its stored hash (a field was changed)';
  }

  /** The first broken link among `rows`, or undefined when they all hold. */
  feed(rows: AuditRow[]): BrokenLink | undefined {
    for (const row of rows) {
      const at = { streamId: this.stream.streamId, recordId: row.id, seq: row.seq };
      if (row.seq !== this.expectedSeq) {
        return row.seq > this.expectedSeq
          ? {
              streamId: this.stream.streamId,
              seq: this.expectedSeq,
              reason: `record seq ${this.expectedSeq} is missing (the next one stored is seq ${row.seq})`,
            }
          : { ...at, reason: `seq ${row.seq} is out of place (expected ${this.expectedSeq})` };
      }
      if (row.prevHash !== this.prevHash) {
        return { ...at, reason: 'prev_hash does not match the hash of the record before it' };
      }
      if (hashRecord(row, this.key) !== row.hash) return { ...at, reason: this.hashMismatch(row) };
      this.prevHash = row.hash;
      this.expectedSeq += 1;
      this.count += 1;
    }
    return undefined;
  }

  /** Call after the last page: the chain must reach the head the stream row names. */
  finish(): BrokenLink | undefined {
    const lastSeen = this.expectedSeq - 1;
    if (lastSeen < this.stream.lastSeq) {
      return {
        streamId: this.stream.streamId,
        seq: lastSeen + 1,
        reason: `records seq ${lastSeen + 1}..${this.stream.lastSeq} are missing (the stream's head is seq ${this.stream.lastSeq})`,
      };
    }
    if (lastSeen > this.stream.lastSeq) {
      return {
        streamId: this.stream.streamId,
        seq: lastSeen,
        reason: `the stream's head says seq ${this.stream.lastSeq} but records go on to seq ${lastSeen}`,
      };
    }
    if (lastSeen > this.stream.anchorSeq && this.prevHash !== this.stream.lastHash) {
      return {
        streamId: this.stream.streamId,
        seq: lastSeen,
        reason: "the last record's hash is not the stream's head hash",
      };
    }
    return undefined;
  }
}
