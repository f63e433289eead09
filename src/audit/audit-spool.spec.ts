import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ChainHead } from './audit-record';
import { AuditSpool, SpoolContentError } from './audit-spool';

const STREAM = '00000000-0000-4000-8000-0000000000aa';

function rows(head: ChainHead, count: number) {
  return Array.from({ length: count }, (_, i) =>
    head.link({
      id: `00000000-0000-4000-8000-${String(i + 1).padStart(12, '0')}`,
      streamId: '',
      at: new Date(Date.UTC(2026, 0, 1, 0, 0, i)),
      requestId: `r${i}`,
      surface: 'aggregate',
      ip: null,
      tenantId: null,
      objectId: null,
      clientId: null,
      principalName: null,
      principalKind: null,
      sessionId: null,
      serverId: null,
      serverSlug: null,
      method: 'http',
      rpcId: null,
      target: null,
      arguments: null,
      decision: 'unauthenticated',
      rule: 'no access token',
      outcome: 'refused',
      latencyMs: 0.5,
      upstreamMs: null,
      upstreamStatus: null,
      errorKind: null,
    }),
  );
}

describe('AuditSpool', () => {
  let dir: string;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'audit-spool-spec-'));
  });

  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('gives batches back oldest first, as written, across a restart', () => {
    const head = new ChainHead(STREAM);
    const [a, b] = [rows(head, 3), rows(head, 2)];
    const spool = new AuditSpool(dir);
    spool.write(b);
    spool.write(a);
    const reopened = new AuditSpool(dir);
    expect([reopened.files, reopened.records]).toEqual([2, 5]);
    expect(reopened.bytes).toBe(spool.bytes);
    const oldest = reopened.peek()!;
    expect(oldest.rows).toEqual(a);
    reopened.remove(oldest.file);
    expect(reopened.peek()!.rows).toEqual(b);
  });

  it('removes half-written files of dead writers only (workers share DATA_DIR)', () => {
    const live = path.join(dir, `${STREAM}-0000000000000001.ndjson.${process.pid}.tmp`);
    const dead = path.join(dir, `${STREAM}-0000000000000002.ndjson.2147483646.tmp`);
    fs.writeFileSync(live, 'partial');
    fs.writeFileSync(dead, 'partial');
    const spool = new AuditSpool(dir);
    expect(spool.files).toBe(0);
    expect(fs.existsSync(live)).toBe(true);
    expect(fs.existsSync(dead)).toBe(false);
  });

  it('lets a batch another process replayed be forgotten, and a damaged one be set aside', () => {
    const head = new ChainHead(STREAM);
    const first = new AuditSpool(dir);
    first.write(rows(head, 1));
    first.write(rows(head, 1));
    const second = new AuditSpool(dir);
    second.remove(second.peek()!.file);
    expect(() => first.peek()).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    first.forget(first.first!);
    const damaged = first.first!;
    fs.writeFileSync(path.join(dir, damaged.name), '{not json\n');
    expect(() => first.peek()).toThrow(SyntaxError);
    first.setAside(damaged, 'corrupt');
    expect([first.files, first.records, first.bytes]).toEqual([0, 0, 0]);
    expect(fs.readdirSync(dir)).toEqual([`${damaged.name}.corrupt`]);
  });

  it('tells a batch that is JSON but not audit records, and counts the batches set aside in the directory', () => {
    const head = new ChainHead(STREAM);
    const spool = new AuditSpool(dir);
    spool.write(rows(head, 2));
    spool.write(rows(head, 1));
    const shapeless = spool.first!;
    const [first, second] = fs.readFileSync(path.join(dir, shapeless.name), 'utf8').split('\n');
    const edited = { ...(JSON.parse(second!) as Record<string, unknown>), seq: '2' };
    fs.writeFileSync(path.join(dir, shapeless.name), `${first}\n${JSON.stringify(edited)}\n`);
    expect(() => spool.peek()).toThrow(
      new SpoolContentError('line 2 is not an audit record: seq must be a positive whole number'),
    );
    fs.writeFileSync(path.join(dir, shapeless.name), '[1, 2]\n');
    expect(() => spool.peek()).toThrow(new SpoolContentError('line 1 is not an audit record: not a JSON object'));
    spool.setAside(shapeless, 'rejected');
    expect(spool.setAsideFiles()).toEqual({ rejected: 1, corrupt: 0 });
    spool.setAside(spool.first!, 'corrupt');
    expect([spool.files, spool.records, spool.bytes]).toEqual([0, 0, 0]);
    // Never replayed, by this process or a later one, and counted by whoever surveys the directory.
    expect(new AuditSpool(dir).files).toBe(0);
    expect(new AuditSpool(dir).setAsideFiles()).toEqual({ rejected: 1, corrupt: 1 });
    expect(spool.survey()).toEqual({ files: 0, records: 0, bytes: 0 });
  });

  it('surveys every batch in the directory, whichever process sharing it wrote or removed it', () => {
    const mine = new AuditSpool(dir);
    const theirs = new AuditSpool(dir);
    mine.write(rows(new ChainHead(STREAM), 3));
    theirs.write(rows(new ChainHead('00000000-0000-4000-8000-0000000000bb'), 2));
    fs.writeFileSync(path.join(dir, `${STREAM}-0000000000000009.ndjson.${process.pid}.tmp`), 'partial');
    fs.writeFileSync(path.join(dir, `${STREAM}-0000000000000008.ndjson.corrupt`), '{not json\n');
    const both = { files: 2, records: 5, bytes: mine.bytes + theirs.bytes };
    expect([mine.files, mine.records]).toEqual([1, 3]);
    expect(mine.survey()).toEqual(both);
    expect(theirs.survey()).toEqual(both);
    theirs.remove(theirs.first!);
    expect(mine.survey()).toEqual({ files: 1, records: 3, bytes: mine.bytes });
    fs.rmSync(dir, { recursive: true });
    expect(mine.survey()).toEqual({ files: 0, records: 0, bytes: 0 });
  });
});
