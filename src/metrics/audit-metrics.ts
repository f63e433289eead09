import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** Batch writes: from a millisecond to the time a stalled database takes to fail. */
const FLUSH_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export type AuditFlushResult = 'ok' | 'failed';

/** The audit queue as it stands; read at scrape time. */
export interface AuditQueueView {
  depth: number;
  capacity: number;
}

/** The spool in DATA_DIR as it stands; read at scrape time. */
export interface AuditSpoolView {
  records: number;
  bytes: number;
  /** At its limit (AUDIT_SPOOL_MAX_BYTES): MCP requests are refused. */
  full: boolean;
  /** Batches set aside, never replayed: refused by the database for what they hold, or unreadable. */
  setAside: { rejected: number; corrupt: number };
}

/**
 * What the audit trail reports. Either hand it functions read at scrape time
 * (`readQueue`, `readSpool`: nothing to do per record) or call the setters;
 * `flushed`, `spooled`, `replayed` and `backpressure` count events.
 */
export class AuditMetrics {
  private readonly queueDepth: Gauge;
  private readonly queueCapacity: Gauge;
  private readonly spoolRecords: Gauge;
  private readonly spoolBytes: Gauge;
  private readonly spoolFull: Gauge;
  private readonly spoolSetAside: Gauge<'reason'>;
  private readonly flushDuration: Histogram<'result'>;
  private readonly records: Counter<'destination'>;
  private readonly backpressureEvents: Counter;
  private queueSource?: () => AuditQueueView;
  private spoolSource?: () => AuditSpoolView;

  constructor(registry: Registry, prefix: string) {
    const registers = [registry];
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    this.queueDepth = new Gauge({
      name: `${prefix}audit_queue_depth`,
      help: 'Audit records waiting in memory to be written',
      registers,
      collect() {
        if (self.queueSource) this.set(self.queueSource().depth);
      },
    });
    this.queueCapacity = new Gauge({
      name: `${prefix}audit_queue_capacity`,
      help: 'Audit records the in-memory queue holds before producers feel back-pressure',
      registers,
      collect() {
        if (self.queueSource) this.set(self.queueSource().capacity);
      },
    });
    this.spoolRecords = new Gauge({
      name: `${prefix}audit_spool_records`,
      // Workers share DATA_DIR, and each surveys the whole directory: the cluster's figure is the largest, not the sum.
      aggregator: 'max',
      help: 'Audit records spooled to DATA_DIR while the database is unavailable, not yet replayed',
      registers,
      collect() {
        if (self.spoolSource) this.set(self.spoolSource().records);
      },
    });
    this.spoolBytes = new Gauge({
      name: `${prefix}audit_spool_bytes`,
      // Workers share DATA_DIR, and each surveys the whole directory: the cluster's figure is the largest, not the sum.
      aggregator: 'max',
      help: 'Size of the audit spool in DATA_DIR',
      registers,
      collect() {
        if (self.spoolSource) this.set(self.spoolSource().bytes);
      },
    });
    this.spoolFull = new Gauge({
      name: `${prefix}audit_spool_full`,
      // Each worker halts at its own share of the limit: 1 while any of them refuses.
      aggregator: 'max',
      help: 'Whether the audit spool is at its limit (AUDIT_SPOOL_MAX_BYTES), so that MCP requests are refused (1) or not (0)',
      registers,
      collect() {
        if (self.spoolSource) this.set(self.spoolSource().full ? 1 : 0);
      },
    });
    this.spoolSetAside = new Gauge({
      name: `${prefix}audit_spool_set_aside_files`,
      // Workers share DATA_DIR, and each surveys the whole directory: the cluster's figure is the largest, not the sum.
      aggregator: 'max',
      help: 'Audit spool batches set aside in DATA_DIR, never replayed, by reason: rejected (the database refuses what they hold) or corrupt (unreadable)',
      labelNames: ['reason'],
      registers,
      collect() {
        if (!self.spoolSource) return;
        const { rejected, corrupt } = self.spoolSource().setAside;
        this.set({ reason: 'rejected' }, rejected);
        this.set({ reason: 'corrupt' }, corrupt);
      },
    });
    this.flushDuration = new Histogram({
      name: `${prefix}audit_flush_duration_seconds`,
      help: 'Time to write one batch of audit records to the database, by result',
      labelNames: ['result'],
      buckets: FLUSH_BUCKETS,
      registers,
    });
    this.records = new Counter({
      name: `${prefix}audit_records_written_total`,
      help: 'Audit records written, by destination (database, spool, replayed: from the spool to the database)',
      labelNames: ['destination'],
      registers,
    });
    this.backpressureEvents = new Counter({
      name: `${prefix}audit_backpressure_total`,
      help: 'Times a request found the audit queue full and had to wait for room',
      registers,
    });
  }

  readQueue(source: () => AuditQueueView): void {
    this.queueSource = source;
  }

  readSpool(source: () => AuditSpoolView): void {
    this.spoolSource = source;
  }

  setQueue(view: AuditQueueView): void {
    this.queueDepth.set(view.depth);
    this.queueCapacity.set(view.capacity);
  }

  setSpool(view: AuditSpoolView): void {
    this.spoolRecords.set(view.records);
    this.spoolBytes.set(view.bytes);
    this.spoolFull.set(view.full ? 1 : 0);
    this.spoolSetAside.set({ reason: 'rejected' }, view.setAside.rejected);
    this.spoolSetAside.set({ reason: 'corrupt' }, view.setAside.corrupt);
  }

  /** One batch write: its duration in seconds, its size, and whether it reached the database. */
  flushed(seconds: number, records: number, result: AuditFlushResult): void {
    this.flushDuration.observe({ result }, seconds);
    if (result === 'ok') this.records.inc({ destination: 'database' }, records);
  }

  spooled(records: number): void {
    this.records.inc({ destination: 'spool' }, records);
  }

  replayed(records: number): void {
    this.records.inc({ destination: 'replayed' }, records);
  }

  backpressure(): void {
    this.backpressureEvents.inc();
  }
}
