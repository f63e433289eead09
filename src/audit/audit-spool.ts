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

  /** The oldest spooled batch, or undefined when the spool is empty. */
  peek(): { file: SpoolFile; rows: AuditRow[] } | undefined {
    const file = this.pending[0];
    if (!file) return undefined;
    const text = fs.readFileSync(path.join(this.directory, file.name), 'utf8');
    return {
      file,
      rows: text
        .split('\n')
        .filter((line) => line.length > 0)
        .map(parseRow),
    };
  }

  /** Forgets a batch once the database holds it. */
  remove(file: SpoolFile): void {
    fs.rmSync(path.join(this.directory, file.name), { force: true });
    this.forget(file);
  }

  /**
   * Sets aside a batch that cannot be read back (a damaged disk): renamed to
   * `.corrupt`, kept for a human, never replayed or deleted.
   */
  quarantine(file: SpoolFile): void {
    const full = path.join(this.directory, file.name);
    try {
      fs.renameSync(full, `${full}.corrupt`);
    } finally {
      this.forget(file);
    }
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
  private create(file: string): number {
    try {
      return fs.openSync(file, 'w');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      fs.mkdirSync(this.directory, { recursive: true });
      return fs.openSync(file, 'w');
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

function parseRow(line: string): AuditRow {
  const raw = JSON.parse(line) as Omit<AuditRow, 'at'> & { at: string };
  return { ...raw, at: new Date(raw.at) };
}
