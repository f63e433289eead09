import { type BrokenLink, ChainWalker } from './audit-record';
import type { AuditRepository } from './audit.repository';

const PAGE = 2_000;

export interface VerifyReport {
  streams: number;
  records: number;
  /** The first broken link found, walking streams oldest first; absent when every chain holds. */
  broken?: BrokenLink;
}

/**
 * Walks every stream's chain from its anchor (or its first record) to its
 * head. Reads a page at a time and stops at the first broken link. Each
 * stream is read up to the head it had when the walk reached it, so a
 * gateway writing meanwhile does not disturb the check.
 */
export async function verifyAuditTrail(repository: AuditRepository, key?: string): Promise<VerifyReport> {
  const report: VerifyReport = { streams: 0, records: 0 };
  const orphans = await repository.streamsWithoutRow();
  if (orphans[0] !== undefined) {
    report.broken = {
      streamId: orphans[0],
      seq: 0,
      reason: 'records name this stream but its row in audit_streams is gone',
    };
    return report;
  }
  for (const stream of await repository.streams()) {
    const walker = new ChainWalker(stream, key);
    let afterSeq = stream.anchorSeq;
    for (;;) {
      const rows = await repository.chainPage(stream.streamId, afterSeq, stream.lastSeq, PAGE);
      const broken = walker.feed(rows);
      if (broken) {
        report.broken = broken;
        break;
      }
      if (rows.length < PAGE) {
        const end = walker.finish();
        if (end) report.broken = end;
        break;
      }
      afterSeq = rows[rows.length - 1]!.seq;
    }
    report.streams += 1;
    report.records += walker.verified;
    if (report.broken) return report;
  }
  return report;
}
