import { type BrokenLink, ChainWalker, type StreamBounds } from './audit-record';
import type { AuditRepository, StreamPosition } from './audit.repository';

const PAGE = 2_000;

export interface VerifyReport {
  streams: number;
  records: number;
  /** The first broken link found, walking streams oldest first; absent when every chain holds. */
  broken?: BrokenLink;
}

/**
 * Walks every stream's chain from its anchor (or its first record) to its
 * head. Reads a page at a time, every read of it (the streams, the stream ids
 * records name, each chain) short, so each is bounded as any statement of the
 * gateway is, and stops at the first broken link. Each
 * stream is read up to the head it had when the walk reached it, so a
 * gateway writing meanwhile does not disturb the check.
 */
export async function verifyAuditTrail(
  repository: AuditRepository,
  key?: string,
  /** Rows a read takes at most; tests lower it. */
  pageSize = PAGE,
): Promise<VerifyReport> {
  const report: VerifyReport = { streams: 0, records: 0 };
  const orphan = await firstStreamWithoutRow(repository, pageSize);
  if (orphan !== undefined) {
    report.broken = {
      streamId: orphan,
      seq: 0,
      reason: 'records name this stream but its row in audit_streams is gone',
    };
    return report;
  }
  for await (const listed of allStreams(repository, pageSize)) {
    let stream = listed;
    let walk = await walkStream(repository, stream, key, pageSize);
    // Retention may have cut the stream while it was walked, a step at a time: what it removed then looks missing.
    // Walked again from the anchor it left (to the head the stream has now), the chain holds; a break that stays is
    // the chain's own. Each walk again starts past the record the one before missed, so this ends.
    while (walk.broken) {
      const now = await repository.streamBounds(stream.streamId);
      if (!now || now.anchorSeq < walk.broken.seq) break;
      stream = now;
      walk = await walkStream(repository, stream, key, pageSize);
    }
    report.streams += 1;
    report.records += walk.verified;
    if (walk.broken) {
      report.broken = walk.broken;
      return report;
    }
  }
  return report;
}

/** The first stream id (in id order) that records name and no stream row describes, read a page at a time. */
async function firstStreamWithoutRow(repository: AuditRepository, pageSize: number): Promise<string | undefined> {
  let after: string | undefined;
  do {
    const page = await repository.recordStreamsPage(after, pageSize);
    if (page.orphans[0] !== undefined) return page.orphans[0];
    after = page.last;
  } while (after !== undefined);
  return undefined;
}

/** Every stream, oldest first, read a page at a time. */
async function* allStreams(repository: AuditRepository, pageSize: number): AsyncGenerator<StreamBounds> {
  let after: StreamPosition | undefined;
  for (;;) {
    const page = await repository.streamsPage(after, pageSize);
    yield* page.streams;
    if (page.streams.length < pageSize || !page.next) return;
    after = page.next;
  }
}

async function walkStream(
  repository: AuditRepository,
  stream: StreamBounds,
  key: string | undefined,
  pageSize: number,
): Promise<{ verified: number; broken?: BrokenLink }> {
  const walker = new ChainWalker(stream, key);
  let afterSeq = stream.anchorSeq;
  for (;;) {
    const rows = await repository.chainPage(stream.streamId, afterSeq, stream.lastSeq, pageSize);
    const broken = walker.feed(rows) ?? (rows.length < pageSize ? walker.finish() : undefined);
    if (broken) return { verified: walker.verified, broken };
    if (rows.length < pageSize) return { verified: walker.verified };
    afterSeq = rows[rows.length - 1]!.seq;
  }
}
