import * as fs from 'node:fs';
import * as path from 'node:path';
import type { AuditRow } from './audit-record';
import { isProcessAlive } from '../common/process-alive';

/** A spooled batch: chained rows of one stream, named so that sorting the names sorts by (stream, first seq). */
export interface SpoolFile {
  name: string;
  records: number;
  bytes: number;
}

const SUFFIX = '.ndjson';
const NAME = /^[0-9a-f-]{36}-\d{16}\.ndjson$/;
const TMP = /\.ndjson\.(\d+)\.tmp$/;
/** A batch set aside, never replayed: `.corrupt` (it cannot be read back) or `.rejected` (the database refuses it). */
const SET_ASIDE = /^[0-9a-f-]{36}-\d{16}\.ndjson\.(corrupt|rejected)$/;

/** Why a batch is set aside: it cannot be read back, or its records are not what the database takes. */
export type SetAsideReason = 'corrupt' | 'rejected';

/** A spooled batch that reads back, but not as audit records (valid JSON of another shape): set aside as rejected. */
export class SpoolContentError extends Error {
  override readonly name = 'SpoolContentError';
}

/**
 * Batches the database could not take, as files in DATA_DIR: written whole
 * (temporary file, fsync, rename) so a crash leaves either the batch or
 * nothing, and replayed oldest first. Rows keep their stream and seq, so
 * replaying a batch that did reach the database inserts nothing twice.
 */
export class AuditSpool {
  private readonly pending: SpoolFile[] = [];
  private pendingRecords = 0;
  private pendingBytes = 0;
  /** Every batch the last survey found, by name: a spooled file never changes, so each is read at most once. */
  private surveyed = new Map<string, SpoolFile>();
  /** What the directory last showed of batches set aside, for when it cannot be read. */
  private setAsideFound: Record<SetAsideReason, number> = { corrupt: 0, rejected: 0 };

  constructor(readonly directory: string) {
    fs.mkdirSync(directory, { recursive: true });
    for (const name of fs.readdirSync(directory).sort()) {
      const full = path.join(directory, name);
      const writer = TMP.exec(name);
      if (writer) {
        // A write that never finished, by a process now gone (`--workers` share DATA_DIR: a live one may be mid-write).
        if (!isProcessAlive(Number(writer[1]))) fs.rmSync(full, { force: true });
      } else if (NAME.test(name)) {
        const file = this.read(name);
        if (!file) continue;
        this.pending.push(file);
        this.surveyed.set(name, file);
        this.pendingRecords += file.records;
        this.pendingBytes += file.bytes;
      }
    }
  }

  get files(): number {
    return this.pending.length;
  }

  get records(): number {
    return this.pendingRecords;
  }

  /** Synchronous: also used from the hot path when the queue is full, and after the database closed. */
  write(rows: AuditRow[]): void {
    if (rows.length === 0) return;
    const first = rows[0]!;
    const name = `${first.streamId}-${String(first.seq).padStart(16, '0')}${SUFFIX}`;
    const full = path.join(this.directory, name);
    const tmp = `${full}.${process.pid}.tmp`;
    const text = rows.map((row) => JSON.stringify(row)).join('\n') + '\n';
    const fd = this.create(tmp);
    try {
      fs.writeSync(fd, text);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, full);
    const file = { name, records: rows.length, bytes: Buffer.byteLength(text) };
    this.insertSorted(file);
    this.surveyed.set(name, file);
    this.pendingRecords += file.records;
    this.pendingBytes += file.bytes;
  }

  /**
   * Every batch in the directory now, whoever spooled it: `--workers` share
   * DATA_DIR, and each knows only the batches it wrote or found at start.
   * For the gauges, read at scrape time; a file is read only the first time it is seen.
   */
  survey(): { files: number; records: number; bytes: number } {
    const names = this.names();
    // Unreadable (DATA_DIR's permissions changed, a file where the directory was): what this process knows of it.
    if (!names) return { files: this.pending.length, records: this.pendingRecords, bytes: this.pendingBytes };
    const found = new Map<string, SpoolFile>();
    let records = 0;
    let bytes = 0;
    for (const name of names) {
      if (!NAME.test(name)) continue;
      const file = this.surveyed.get(name) ?? this.read(name);
      if (!file) continue;
      found.set(name, file);
      records += file.records;
      bytes += file.bytes;
    }
    this.surveyed = found;
    return { files: found.size, records, bytes };
  }

  get bytes(): number {
    return this.pendingBytes;
  }

  get first(): SpoolFile | undefined {
    return this.pending[0];
  }

  /**
   * Batches set aside in the directory now, by why, whoever set them aside (`--workers` share DATA_DIR); for the
   * gauges, read at scrape time.
   */
  setAsideFiles(): Record<SetAsideReason, number> {
    const names = this.names();
    if (!names) return { ...this.setAsideFound };
    const found = { corrupt: 0, rejected: 0 };
    for (const name of names) {
      const reason = SET_ASIDE.exec(name)?.[1] as SetAsideReason | undefined;
      if (reason) found[reason] += 1;
    }
    this.setAsideFound = found;
    return { ...found };
  }

  /**
   * The oldest spooled batch, or undefined when the spool is empty. Throws a SyntaxError for a batch that is not JSON
   * lines, and a SpoolContentError for one whose lines are not audit records.
   */
  peek(): { file: SpoolFile; rows: AuditRow[] } | undefined {
    const file = this.pending[0];
    if (!file) return undefined;
    const text = fs.readFileSync(path.join(this.directory, file.name), 'utf8');
    return {
      file,
      rows: text
        .split('\n')
        .filter((line) => line.length > 0)
        .map((line, index) => parseRow(line, index + 1)),
    };
  }

  /** Forgets a batch once the database holds it. */
  remove(file: SpoolFile): void {
    fs.rmSync(path.join(this.directory, file.name), { force: true });
    this.forget(file);
  }

  /**
   * Sets aside a batch that cannot be replayed: one that cannot be read back (a damaged disk) renamed to `.corrupt`,
   * one the database refuses for what it holds to `.rejected`; kept for a human, never replayed or deleted.
   */
  setAside(file: SpoolFile, reason: SetAsideReason): void {
    const full = path.join(this.directory, file.name);
    try {
      fs.renameSync(full, `${full}.${reason}`);
    } finally {
      this.forget(file);
    }
  }

  /**
   * Appends records the database refuses to the `.rejected` file `name`, or to one named after the first of them
   * (`<stream>-<seq>`, as a batch is), fsync'd, kept for a human as `setAside` keeps a whole batch; returns the file's
   * name. Appended rather than written whole: the records of a batch are found one at a time, and each is on disk
   * before the chain goes on without it.
   */
  appendRejected(rows: AuditRow[], name?: string): string {
    const first = rows[0]!;
    name ??= `${first.streamId}-${String(first.seq).padStart(16, '0')}${SUFFIX}.rejected`;
    const fd = this.create(path.join(this.directory, name), 'a');
    try {
      fs.writeSync(fd, rows.map((row) => `${JSON.stringify(row)}\n`).join(''));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    return name;
  }

  /** Drops a batch from the list without touching its file (another process sharing DATA_DIR replayed it). */
  forget(file: SpoolFile): void {
    const index = this.pending.indexOf(file);
    if (index >= 0) {
      this.pending.splice(index, 1);
      this.pendingRecords -= file.records;
      this.pendingBytes -= file.bytes;
    }
  }

  /** Opens a new file, making the directory again if it was removed under the gateway. */
  private create(file: string, flags = 'w'): number {
    try {
      return fs.openSync(file, flags);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      fs.mkdirSync(this.directory, { recursive: true });
      return fs.openSync(file, flags);
    }
  }

  /**
   * What the directory holds now: nothing if it was removed under the gateway, undefined if it cannot be read, rather
   * than a failed scrape.
   */
  private names(): string[] | undefined {
    try {
      return fs.readdirSync(this.directory);
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === 'ENOENT' ? [] : undefined;
    }
  }

  /** A batch another process spooled, or undefined if it was replayed and removed meanwhile. */
  private read(name: string): SpoolFile | undefined {
    try {
      const text = fs.readFileSync(path.join(this.directory, name), 'utf8');
      return { name, records: countLines(text), bytes: Buffer.byteLength(text) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  private insertSorted(file: SpoolFile): void {
    let index = this.pending.length;
    while (index > 0 && this.pending[index - 1]!.name > file.name) index--;
    this.pending.splice(index, 0, file);
  }
}

function countLines(text: string): number {
  return text.split('\n').filter((line) => line.length > 0).length;
}

/** What a field of a spooled row must hold, as said when it does not. */
const KINDS = {
  text: 'a string',
  'text?': 'a string or null',
  number: 'a number',
  'number?': 'a number or null',
  seq: 'a positive whole number',
  time: 'a time',
  kind: '"app", "user", null or absent',
} as const;

type FieldKind = keyof typeof KINDS;

/** Every field of a spooled row and what it must hold: what the insert and the hash read of it. */
const ROW_FIELDS: Record<keyof AuditRow, FieldKind> = {
  id: 'text',
  streamId: 'text',
  seq: 'seq',
  at: 'time',
  requestId: 'text',
  surface: 'text',
  ip: 'text?',
  tenantId: 'text?',
  objectId: 'text?',
  clientId: 'text?',
  principalName: 'text?',
  // Absent from the rows of a batch spooled before the kind was stored.
  principalKind: 'kind',
  sessionId: 'text?',
  serverId: 'text?',
  serverSlug: 'text?',
  method: 'text',
  rpcId: 'text?',
  target: 'text?',
  arguments: 'text?',
  decision: 'text',
  rule: 'text?',
  outcome: 'text',
  latencyMs: 'number',
  upstreamMs: 'number?',
  upstreamStatus: 'number?',
  errorKind: 'text?',
  prevHash: 'text',
  hash: 'text',
};

function holds(kind: FieldKind, value: unknown): boolean {
  switch (kind) {
    case 'text':
      return typeof value === 'string';
    case 'text?':
      return value === null || typeof value === 'string';
    case 'number':
      return typeof value === 'number';
    case 'number?':
      return value === null || typeof value === 'number';
    case 'seq':
      return Number.isSafeInteger(value) && (value as number) > 0;
    case 'time':
      return typeof value === 'string' && !Number.isNaN(Date.parse(value));
    case 'kind':
      return value === undefined || value === null || value === 'app' || value === 'user';
  }
}

/** Line `line` of a batch as the row it was spooled from; a SpoolContentError when it is JSON but not such a row. */
function parseRow(text: string, line: number): AuditRow {
  const raw = JSON.parse(text) as unknown;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new SpoolContentError(`line ${line} is not an audit record: not a JSON object`);
  }
  for (const [field, kind] of Object.entries(ROW_FIELDS)) {
    if (!holds(kind, (raw as Record<string, unknown>)[field])) {
      throw new SpoolContentError(`line ${line} is not an audit record: ${field} must be ${KINDS[kind]}`);
    }
  }
  const row = raw as Omit<AuditRow, 'at'> & { at: string };
  return { ...row, at: new Date(row.at) };
}
