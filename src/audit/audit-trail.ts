import { randomUUID } from 'node:crypto';
import * as os from 'node:os';
import { Inject, Injectable, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { PinoLogger } from 'nestjs-pino';
import { isDataRefusal } from '../common/database-errors';
import { OutageLog } from '../common/outage-log';
import type { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import type { McpExchange } from '../traffic/mcp-exchange';
import { McpTraffic } from '../traffic/mcp-traffic';
import { type ArgumentPolicyConfig, argumentsWithin, redactKeyPattern } from './argument-policy';
import { type AuditRow, ChainHead, GENESIS_HASH, hashRecord, type UnchainedRow } from './audit-record';
import { AuditSpool, type SetAsideReason, SpoolContentError, type SpoolFile } from './audit-spool';
import { AuditRepository, type AuditStreamStart, type StoredHead } from './audit.repository';
import { toUnchainedRow } from './exchange-row';

/**
 * The audit trail's counters, for metrics (the lead maps them to Prometheus):
 * totals only grow; `queueDepth`, `spoolFiles` and `spoolRecords` are gauges.
 */
export interface AuditStats {
  /** Records handed to the trail since start. */
  recorded: number;
  /** Records waiting in memory now (queued, or held because neither the database nor the spool takes them), and the most the queue may hold. */
  queueDepth: number;
  queueCapacity: number;
  /** Records inserted into the database (directly or replayed), since start. */
  stored: number;
  /** Records written to the spool because the database failed or was closed, since start. */
  spooled: number;
  /** Records the hot path wrote to the spool itself because the queue was full (back-pressure), since start; also counted in `spooled`. */
  overflowed: number;
  /** Spooled records replayed into the database, since start; also counted in `stored`. */
  replayed: number;
  /**
   * Batches waiting in the spool now, their records and their size on disk: every batch in the directory, including
   * those left by an earlier run and those of other workers sharing DATA_DIR.
   */
  spoolFiles: number;
  spoolRecords: number;
  spoolBytes: number;
  /** The spool's limit in this process (0: none), and whether it is reached, so that MCP requests are refused. */
  spoolCapacityBytes: number;
  spoolFull: boolean;
  /**
   * Batches set aside in the spool's directory now, never to be replayed: `rejected`, refused by the database for
   * what they hold; `corrupt`, unreadable. They wait for an operator (README, the audit trail).
   */
  spoolSetAside: Record<SetAsideReason, number>;
  /** Inserts that failed (each failed batch went to the spool or stayed there). */
  writeFailures: number;
}

/** One insert attempt, for a flush-latency histogram. */
export interface AuditWriteEvent {
  records: number;
  durationMs: number;
  ok: boolean;
  /** `queue` for fresh records, `spool` for a replayed batch. */
  source: 'queue' | 'spool';
}

export type AuditWriteListener = (event: AuditWriteEvent) => void;

/** Records that went to the spool: `overflow` when the full queue put them there (back-pressure), else a failed or closed database. */
export interface AuditSpoolEvent {
  records: number;
  overflow: boolean;
}

export type AuditSpoolListener = (event: AuditSpoolEvent) => void;

/** What a client refused because the spool is full is told, and readiness says; the log says more. */
const SPOOL_FULL = 'the audit spool is full: no request can be audited until the database takes the spooled records';
/** The same, while records are held in memory because neither the database nor the spool takes them. */
const UNKEPT =
  'the audit trail can neither store nor spool records: no request can be audited until the database or the spool takes them';

/** A record waiting in the queue: the exchange as reported while it is small, else already its stored row (see `record`). */
type Queued = McpExchange | UnchainedRow;

function isRow(queued: Queued): queued is UnchainedRow {
  return 'streamId' in queued;
}

/**
 * How an insert ended: stored; failed (the database away, slow or busy: tried again); or refused, the database
 * rejecting the records themselves, which no retry changes.
 */
type Written = 'stored' | 'failed' | { refused: unknown };

/** What the database refused of one batch and the writer set aside, for the one line that says so. */
interface SetAsideRecords {
  records: number;
  file?: string;
  error?: unknown;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** What the log says, once for an outage (OutageLog), when the database does not answer a write. */
const NOT_STORED =
  'audit records not stored: kept for replay (spooled, or held in memory while the spool refuses them too), retried until the database takes them';

/**
 * Records of one batch set aside one by one before the rest of what the database refuses of it is set aside without
 * splitting it further. A database at fault (a constraint added by hand) refuses every record: split down to each,
 * a batch of 500 cost some 1,500 statements (18 s on a busy 2-core VM) while the queue filled behind it.
 */
const SPLIT_LIMIT = 8;

/** Records linked between two turns of the event loop (see `take`). */
const LINK_SLICE = 32;

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Turns every MCP exchange into one chained audit record. Recording only
 * pushes the exchange onto a bounded queue (a large one made its stored form
 * first); one background loop takes batches, applies the argument policy,
 * links them into this process's chain and inserts them. A batch the database
 * does not take goes to the spool in DATA_DIR, which the same loop replays,
 * oldest first, before any newer record is written, once the database answers
 * again. While the spool
 * holds its limit (AUDIT_SPOOL_MAX_BYTES, shared between `serve --workers`)
 * the trail halts McpTraffic: a request it could not keep is not served.
 */
@Injectable()
export class AuditTrail implements OnApplicationBootstrap, OnModuleDestroy {
  /**
   * At most AUDIT_QUEUE_CAPACITY records of about AUDIT_ARGUMENTS_MAX_BYTES each at most (see `record`). Exchanges
   * queued as reported whatever their size held their arguments as sent, up to MAX_BODY_BYTES each: 10,000 records of
   * a 1 MiB body, some 10 GiB, while a write hung for AUDIT_WRITE_TIMEOUT_MS.
   */
  private readonly queue: Queued[] = [];
  private readonly chain: ChainHead;
  private readonly stream: AuditStreamStart;
  private readonly spool: AuditSpool;
  private readonly policy: ArgumentPolicyConfig;
  /** This process's share of AUDIT_SPOOL_MAX_BYTES; 0: no limit. */
  private readonly spoolCapacity: number;
  private readonly writeListeners = new Set<AuditWriteListener>();
  private readonly spoolListeners = new Set<AuditSpoolListener>();
  private readonly counts = {
    recorded: 0,
    stored: 0,
    spooled: 0,
    overflowed: 0,
    replayed: 0,
    writeFailures: 0,
  };
  private stopListening?: () => void;
  private timer?: NodeJS.Timeout;
  private pumping?: Promise<void>;
  private wakeScheduled = false;
  /** Why this trail halted McpTraffic (the spool is full, or records could not be kept), or undefined. */
  private halting?: string;
  /**
   * Batches neither the database nor the spool took (the database down and DATA_DIR unwritable): held here, oldest
   * first, and MCP requests refused, until a pass stores or spools them.
   */
  private readonly unkept: AuditRow[][] = [];
  /** After shutdown the database is gone: late records go straight to the spool. */
  private closed = false;
  /** The inserts, retried every AUDIT_FLUSH_INTERVAL_MS while the database is away. */
  private readonly writes: OutageLog;
  /** The batch taken from the queue and neither stored nor spooled yet: its rows linked so far, and the rest. */
  private inFlight?: { rows: AuditRow[]; unlinked: Queued[] };
  /**
   * Streams some of whose records the database refused and the writer set aside, and where each one's stored chain
   * stands: their later records are linked onto it (`store`). Read from the stream's row the first time replay
   * meets a stream (`streamsRead`), for an earlier run may have set some aside.
   */
  private readonly relinks = new Map<string, StoredHead>();
  private readonly streamsRead = new Set<string>();

  constructor(
    private readonly traffic: McpTraffic,
    private readonly repository: AuditRepository,
    private readonly logger: PinoLogger,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    this.logger.setContext(AuditTrail.name);
    this.writes = new OutageLog(this.logger, 'the database takes audit records again; spooled ones are replayed');
    const audit = config.audit;
    this.chain = new ChainHead(randomUUID(), audit.hmacKey);
    this.stream = {
      id: this.chain.streamId,
      startedAt: new Date(),
      host: os.hostname().slice(0, 255),
      pid: process.pid,
    };
    this.spool = new AuditSpool(audit.spoolDir);
    this.spoolCapacity = Math.floor(audit.spoolMaxBytes / config.workers);
    this.policy = {
      mode: audit.arguments,
      redactKeys: redactKeyPattern(audit.redactKeys),
      maxBytes: audit.argumentsMaxBytes,
    };
  }

  /** This process's stream: the chain its records form. */
  get streamId(): string {
    return this.chain.streamId;
  }

  async onApplicationBootstrap(): Promise<void> {
    try {
      await this.repository.startStream(this.stream);
    } catch (error) {
      // Not fatal (a database without migrations yet, `serve --no-migrate`): the first write registers the stream.
      this.logger.warn({ err: error }, 'audit stream not registered yet; its first write will');
    }
    if (this.spool.files > 0) {
      this.logger.info(
        { files: this.spool.files, records: this.spool.records },
        'audit records spooled by an earlier run: replaying',
      );
    }
    this.checkSpool();
    this.stopListening = this.traffic.onRecord((exchange) => this.record(exchange));
    this.timer = setInterval(() => this.wake(), this.config.audit.flushIntervalMs);
    this.timer.unref();
    this.wake();
  }

  /**
   * The hot path: one push. When the queue is full the caller pays for
   * back-pressure by spooling the whole queue synchronously, so memory stays
   * bounded and no record is dropped.
   *
   * An exchange whose request-chosen parts hold more than about AUDIT_ARGUMENTS_MAX_BYTES is queued as the row it is
   * stored as (the argument policy applied, every field cut to its stored length), which the writer would make of it
   * anyway: the queue never holds more than that a record. Making every record's row here would cost each call some
   * 3.6 µs of CPU where telling a small one costs about 50 ns (a 2-core VM; README, the audit trail's cost).
   */
  record(exchange: McpExchange): void {
    this.counts.recorded += 1;
    const queued = this.isSmall(exchange) ? exchange : toUnchainedRow(exchange, this.policy);
    if (this.closed) {
      this.spoolNow([queued]);
      return;
    }
    this.queue.push(queued);
    if (this.queue.length >= this.config.audit.queueCapacity) {
      const taken = this.queue.splice(0, this.queue.length);
      if (this.spoolNow(taken, true)) {
        this.counts.overflowed += taken.length;
        this.logger.warn({ records: taken.length }, 'audit queue full: spooled it to disk');
      } else {
        this.logger.warn(
          { records: taken.length },
          'audit queue full and the spool refused it: held in memory until the database or the spool takes it',
        );
      }
    } else if (this.queue.length >= this.config.audit.batchSize && !this.wakeScheduled) {
      this.wakeScheduled = true;
      setImmediate(() => {
        this.wakeScheduled = false;
        this.wake();
      });
    }
  }

  stats(): AuditStats {
    const spooled = this.spool.survey();
    return {
      ...this.counts,
      queueDepth: this.queue.length + this.unkept.reduce((sum, rows) => sum + rows.length, 0),
      queueCapacity: this.config.audit.queueCapacity,
      spoolFiles: spooled.files,
      spoolRecords: spooled.records,
      spoolBytes: spooled.bytes,
      spoolCapacityBytes: this.spoolCapacity,
      spoolFull: this.spoolFull,
      spoolSetAside: this.spool.setAsideFiles(),
    };
  }

  /** Returns the function that stops listening. */
  onWrite(listener: AuditWriteListener): () => void {
    this.writeListeners.add(listener);
    return () => this.writeListeners.delete(listener);
  }

  /** Returns the function that stops listening. */
  onSpool(listener: AuditSpoolListener): () => void {
    this.spoolListeners.add(listener);
    return () => this.spoolListeners.delete(listener);
  }

  /** Writes everything queued now (and replays the spool if the database answers); resolves when done. */
  async flush(): Promise<void> {
    await this.pump(true);
    // Records queued while the previous pass ran.
    if (this.queue.length > 0) await this.pump(true);
  }

  /**
   * Runs after HTTP has drained and before the database closes (Nest destroys
   * the global DatabaseModule last): everything queued is stored, or spooled
   * when the database does not take it.
   */
  async onModuleDestroy(): Promise<void> {
    this.stopListening?.();
    clearInterval(this.timer);
    try {
      await this.flush();
    } finally {
      this.closed = true;
      for (const batch of this.unkept.splice(0, this.unkept.length)) this.spoolRows(batch);
      if (this.queue.length > 0) this.spoolNow(this.queue.splice(0, this.queue.length));
    }
    const { records } = this.spool;
    this.logger.info({ stored: this.counts.stored, spooled: records }, 'audit trail flushed');
    if (records > 0) {
      // On an ephemeral volume (a Kubernetes emptyDir) these go with the pod.
      this.logger.warn(
        { records, directory: this.spool.directory },
        'audit records remain spooled: a gateway started on this DATA_DIR replays them',
      );
    }
  }

  /**
   * For a process about to exit without draining (a second signal): the batch being written and everything queued
   * go to the spool, synchronously, and a gateway started on this DATA_DIR replays them. A batch the database took
   * meanwhile is replayed without being stored twice (rows keep their stream and seq). Later records are spooled
   * as they come, as after shutdown.
   */
  spoolQueuedNow(): void {
    this.closed = true;
    const flight = this.inFlight;
    this.inFlight = undefined;
    for (const batch of this.unkept.splice(0, this.unkept.length)) this.spoolRows(batch);
    const rows = flight?.rows ?? [];
    for (const queued of [...(flight?.unlinked ?? []), ...this.queue.splice(0, this.queue.length)]) {
      rows.push(this.chain.link(this.rowOf(queued)));
    }
    if (rows.length > 0) this.spoolRows(rows);
  }

  private wake(): void {
    if (!this.pumping) {
      this.pump().catch((error: unknown) => this.logger.error({ err: error }, 'the audit writer failed; it retries'));
    }
  }

  /** The one writer loop; concurrent callers share the pass under way, then run another. */
  private pump(drain = false): Promise<void> {
    const previous = this.pumping ?? Promise.resolve();
    const pass = previous.then(() => this.pass(drain));
    const tracked = pass.finally(() => {
      if (this.pumping === tracked) this.pumping = undefined;
    });
    this.pumping = tracked;
    return tracked;
  }

  /**
   * Replays the spool, then writes what is queued: all of it when `drain`, else one batch and then only full ones.
   * Records that arrive meanwhile wait for the next tick (AUDIT_FLUSH_INTERVAL_MS) or a full batch, so a busy gateway
   * writes a statement per tick rather than one per round trip to the database (about 70 a second, each of 25
   * records, at 1,700 calls a second).
   */
  private async pass(drain: boolean): Promise<void> {
    let replayBlocked = false;
    let keepBlocked = false;
    for (;;) {
      if (this.unkept.length > 0 && !keepBlocked) {
        keepBlocked = !(await this.keepOldestUnkept(replayBlocked));
        if (keepBlocked) replayBlocked = true;
        continue;
      }
      if (this.spool.files > 0 && !replayBlocked) {
        replayBlocked = !(await this.replayOldest());
        this.checkSpool();
        continue;
      }
      if (this.queue.length === 0 || this.closed) return;
      const { rows, text } = await this.take();
      // Spooled meanwhile by spoolQueuedNow(): the process is exiting.
      if (this.inFlight?.rows !== rows) return;
      if (this.spool.files > 0 || this.unkept.length > 0) {
        // Older records are still spooled or held: keep the order, spool (or hold) these behind them.
        this.inFlight = undefined;
        this.spoolRows(rows);
        continue;
      }
      const written = await this.store(rows, 'queue', text);
      if (this.inFlight?.rows !== rows) return;
      this.inFlight = undefined;
      if (written === 'failed') {
        // Those it stored before failing are not stored twice (rows keep their stream and seq).
        this.spoolRows(rows);
        // The database just failed: do not wait on it again in this pass.
        replayBlocked = true;
      }
      if (!drain && this.queue.length < this.config.audit.batchSize) return;
    }
  }

  /**
   * Takes a batch and links it into the chain: serialization and hashing happen here, off the hot path, and
   * LINK_SLICE records at a time, so that the calls in flight are not held up for a whole batch (about 20 µs a
   * record: a batch of 200, flushed while a relayed call waits for its upstream, delayed that call by 4 ms).
   * `text` is the rows as the JSON array the insert sends, also written a slice at a time: serialized in one
   * piece, a batch of 300 (a tick at 1,500 calls a second) held the event loop for about a millisecond.
   */
  private async take(): Promise<{ rows: AuditRow[]; text: string }> {
    // Kept where spoolQueuedNow() finds it, whole at every turn, until it is stored or spooled.
    const flight = { rows: [] as AuditRow[], unlinked: this.queue.splice(0, this.config.audit.batchSize) };
    this.inFlight = flight;
    const texts: string[] = [];
    while (flight.unlinked.length > 0) {
      if (flight.rows.length > 0) await nextTurn();
      if (this.inFlight !== flight) break;
      for (const queued of flight.unlinked.splice(0, LINK_SLICE)) {
        flight.rows.push(this.chain.link(this.rowOf(queued), texts));
      }
    }
    return { rows: flight.rows, text: `[${texts.join(',')}]` };
  }

  private get spoolFull(): boolean {
    return this.spoolCapacity > 0 && this.spool.bytes >= this.spoolCapacity;
  }

  /**
   * Halts McpTraffic when the spool has reached its limit, and lets it go on once replay brought the spool below.
   * Records of requests already admitted are still spooled past the limit: the limit leaves room for them.
   */
  private checkSpool(): void {
    const reason = this.unkept.length > 0 ? UNKEPT : this.spoolFull ? SPOOL_FULL : undefined;
    if (reason === this.halting) return;
    const was = this.halting;
    this.halting = reason;
    const { bytes, files } = this.spool;
    if (reason === UNKEPT) {
      this.traffic.halt(UNKEPT);
      this.logger.error(
        { directory: this.spool.directory },
        'audit records can be neither stored nor spooled: MCP requests are refused until the database or the spool takes them',
      );
    } else if (reason === SPOOL_FULL) {
      this.traffic.halt(SPOOL_FULL);
      this.logger.error(
        { bytes, files, limit: this.spoolCapacity, directory: this.spool.directory },
        'audit spool full (AUDIT_SPOOL_MAX_BYTES): MCP requests are refused until the database takes the spooled records',
      );
    } else {
      this.traffic.resume();
      this.logger.info(
        { bytes, files, limit: this.spoolCapacity },
        was === UNKEPT
          ? 'audit records held in memory are kept again: MCP requests served again'
          : 'audit spool below its limit: MCP requests served again',
      );
    }
  }

  private spoolNow(queued: Queued[], overflow = false): boolean {
    return this.spoolRows(
      queued.map((item) => this.chain.link(this.rowOf(item))),
      overflow,
    );
  }

  private rowOf(queued: Queued): UnchainedRow {
    return isRow(queued) ? queued : toUnchainedRow(queued, this.policy);
  }

  /**
   * Whether an exchange is small enough to wait as reported: what its request chose (arguments, method, target, a
   * string id) holds about AUDIT_ARGUMENTS_MAX_BYTES at most. The rest of it (headers, the principal) is bounded
   * by the HTTP server's header limit and shared by the records of a request.
   */
  private isSmall(exchange: McpExchange): boolean {
    const chosen =
      exchange.method.length +
      (exchange.target?.length ?? 0) +
      (typeof exchange.rpcId === 'string' ? exchange.rpcId.length : 0);
    return argumentsWithin(exchange.arguments, this.policy.maxBytes - 2 * chosen);
  }

  /** Spools rows; false when the disk refused them, and they are held in memory instead (logged, after shutdown). */
  private spoolRows(rows: AuditRow[], overflow = false): boolean {
    if (this.trySpool(rows, overflow)) return true;
    if (this.closed) {
      // The process is stopping and the disk refused too: the records can only be logged now, which keeps them.
      this.logger.error({ records: rows }, 'audit records could not be spooled');
      return false;
    }
    // Kept in memory, and no new request admitted, until the database or the spool takes them (see `pass`).
    this.unkept.push(rows);
    this.checkSpool();
    return false;
  }

  /** Writes rows to the spool; false (logged) when the disk refuses them. */
  private trySpool(rows: AuditRow[], overflow = false): boolean {
    try {
      this.spool.write(rows);
    } catch (error) {
      this.logger.error(
        { err: error, records: rows.length, directory: this.spool.directory },
        'audit records could not be spooled',
      );
      return false;
    }
    this.counts.spooled += rows.length;
    this.checkSpool();
    for (const listener of this.spoolListeners) {
      try {
        listener({ records: rows.length, overflow });
      } catch (error) {
        this.logger.error({ err: error }, 'an audit spool listener failed');
      }
    }
    return true;
  }

  /**
   * Stores the oldest batch held in memory, or spools it: straight to the database unless it failed in this pass or
   * older records are spooled (they go first), else behind them. False when neither took it.
   */
  private async keepOldestUnkept(databaseBlocked: boolean): Promise<boolean> {
    const rows = this.unkept[0]!;
    const kept =
      (!databaseBlocked && this.spool.files === 0 && (await this.store(rows, 'queue')) === 'stored') ||
      this.trySpool(rows);
    if (!kept) return false;
    if (this.unkept[0] === rows) this.unkept.shift();
    this.checkSpool();
    return true;
  }

  /**
   * Replays the oldest spooled batch; false when the database did not take it (an outage: tried again). A batch that
   * can never be stored, unreadable or not audit records, is set aside, and the next one is replayed after it; of one
   * the database refuses, only the records it refuses are (`store`).
   */
  private async replayOldest(): Promise<boolean> {
    let oldest: ReturnType<AuditSpool['peek']>;
    try {
      oldest = this.spool.peek();
    } catch (error) {
      const file = this.spool.first;
      if (!file) return true;
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        // Another process on this DATA_DIR (`serve --workers`) replayed it first.
        this.spool.forget(file);
        return true;
      }
      this.setAside(file, error instanceof SpoolContentError ? 'rejected' : 'corrupt', error);
      return true;
    }
    if (!oldest) return true;
    const streamId = oldest.rows[0]?.streamId;
    if (streamId !== undefined && !(await this.readStream(streamId))) return false;
    const stored = this.counts.stored;
    if ((await this.store(oldest.rows, 'spool')) === 'failed') return false;
    this.spool.remove(oldest.file);
    this.counts.replayed += this.counts.stored - stored;
    return true;
  }

  /**
   * Learns, once a run, whether an earlier run set records of a stream aside (StoredHead), so that its records still
   * spooled are linked as those it stored were. False when the database does not answer.
   */
  private async readStream(streamId: string): Promise<boolean> {
    if (this.streamsRead.has(streamId) || this.relinks.has(streamId)) return true;
    try {
      const head = UUID.test(streamId) ? await this.repository.storedHead(streamId) : undefined;
      if (head && head.setAside > 0) this.relinks.set(streamId, head);
    } catch (error) {
      this.unanswered(error, { source: 'spool' });
      return false;
    }
    this.streamsRead.add(streamId);
    return true;
  }

  /**
   * Stores rows of one stream, in order. When the database refuses them for what they hold, they are split in halves
   * until each refused record is alone (up to SPLIT_LIMIT of a batch; past it, what it refuses is set aside without
   * splitting further): that one is set aside (appended to a `.rejected` file, kept, never replayed)
   * and the records after it are linked onto the last one stored, so the chain goes on without it and `audit
   * verify` holds (the stream's row counts those set aside: StoredHead); one bad record no longer costs its batch.
   * 'failed' when the database is away, slow or busy: what was stored stays so, and the rest is tried again.
   */
  private async store(
    rows: AuditRow[],
    source: AuditWriteEvent['source'],
    text?: string,
  ): Promise<'stored' | 'failed'> {
    const aside: SetAsideRecords = { records: 0 };
    try {
      return await this.storeSplitting(rows, source, aside, text);
    } finally {
      if (aside.records > 0) {
        this.logger.error(
          { err: aside.error, file: aside.file, records: aside.records, directory: this.spool.directory },
          'audit records the database refuses are set aside in a .rejected file; the records after them are stored, linked around them',
        );
      }
    }
  }

  private async storeSplitting(
    rows: AuditRow[],
    source: AuditWriteEvent['source'],
    aside: SetAsideRecords,
    text?: string,
  ): Promise<'stored' | 'failed'> {
    const first = rows[0];
    if (!first) return 'stored';
    const relink = this.relinks.get(first.streamId);
    let pending = rows;
    if (relink) {
      // Records up to here were stored (a batch replayed again) or set aside (a .rejected file renamed back).
      const handled = relink.seq + relink.setAside;
      pending = rows.filter((row) => row.seq > handled);
      const earlier = rows.slice(0, rows.length - pending.length);
      if (earlier.length > 0 && !(await this.storeApart(earlier, source, aside))) return 'failed';
      if (pending.length === 0) return 'stored';
    }
    const linked = relink ? this.relinked(pending, relink) : pending;
    const written = await this.write(linked, source, relink ? undefined : text, relink?.setAside);
    if (written === 'stored') {
      const last = linked[linked.length - 1]!;
      if (relink) this.relinks.set(first.streamId, { seq: last.seq, hash: last.hash, setAside: relink.setAside });
      return 'stored';
    }
    if (written === 'failed') return 'failed';
    if (pending.length > 1 && aside.records < SPLIT_LIMIT) {
      const half = Math.ceil(pending.length / 2);
      if ((await this.storeSplitting(pending.slice(0, half), source, aside)) === 'failed') return 'failed';
      return this.storeSplitting(pending.slice(half), source, aside);
    }
    return this.setAsideRecords(pending, relink, written.refused, aside);
  }

  /** `rows` as the records after the stored chain's head `head`: seq, prev_hash and hash anew. */
  private relinked(rows: AuditRow[], head: StoredHead): AuditRow[] {
    let { seq, hash } = head;
    return rows.map((row) => {
      const linked: AuditRow = { ...row, seq: seq + 1, prevHash: hash, hash: '' };
      linked.hash = hashRecord(linked, this.config.audit.hmacKey);
      ({ seq, hash } = linked);
      return linked;
    });
  }

  /**
   * Sets aside records the database refuses (one, or the rest of a batch past SPLIT_LIMIT): the stream's row learns
   * first that its chain goes on without them (where its stored head is, and how many more are set aside), then they
   * are appended to the batch's `.rejected` file. 'failed' when either is not done: the records are still where they
   * were, and are found again.
   */
  private async setAsideRecords(
    rows: AuditRow[],
    relink: StoredHead | undefined,
    refused: unknown,
    aside: SetAsideRecords,
  ): Promise<'stored' | 'failed'> {
    const row = rows[0]!;
    const head: StoredHead = relink
      ? { ...relink, setAside: relink.setAside + rows.length }
      : { seq: row.seq - 1, hash: row.prevHash, setAside: rows.length };
    const chained = UUID.test(row.streamId);
    if (chained) {
      try {
        await this.repository.recordSetAside(row.streamId, head);
      } catch (error) {
        this.unanswered(error, { records: rows.length });
        return 'failed';
      }
    }
    if (!this.appendRejected(rows, aside)) return 'failed';
    // A stream id that is no UUID: none of its records can be stored, and there is no chain to go on with.
    if (chained) this.relinks.set(row.streamId, head);
    aside.records += rows.length;
    aside.error ??= refused;
    return 'stored';
  }

  /**
   * Rows at or before where their stream's chain stands. Those not stored were set aside before and put back (a
   * `.rejected` file renamed back once the database was fixed): their chain went on without them, so they are
   * stored as a stream of their own, linked anew from its start; set aside again if the database still refuses them
   * or they were changed.
   */
  private async storeApart(
    rows: AuditRow[],
    source: AuditWriteEvent['source'],
    aside: SetAsideRecords,
  ): Promise<boolean> {
    let stored: Set<string>;
    try {
      stored = await this.repository.storedIds(rows.map((row) => row.id).filter((id) => UUID.test(id)));
    } catch (error) {
      this.unanswered(error, { records: rows.length });
      return false;
    }
    const back = rows.filter((row) => !stored.has(row.id));
    // Linked anew, a record edited since would hash as it now is: one that no longer hashes to its hash stays aside.
    const edited = back.filter((row) => hashRecord(row, this.config.audit.hmacKey) !== row.hash);
    if (edited.length > 0) {
      if (!this.appendRejected(edited, aside)) return false;
      aside.records += edited.length;
      aside.error ??= new Error('the record does not hash to its hash: changed since it was set aside');
    }
    const apart = back.filter((row) => !edited.includes(row));
    if (apart.length === 0) return true;
    const streamId = randomUUID();
    const relinked = this.relinked(
      apart.map((row) => ({ ...row, streamId })),
      { seq: 0, hash: GENESIS_HASH, setAside: 0 },
    );
    const written = await this.write(relinked, source);
    if (written === 'failed') return false;
    if (written === 'stored') {
      this.logger.warn(
        { records: apart.length, from: apart[0]!.streamId, seqs: apart.map((row) => row.seq), stream: streamId },
        'audit records set aside before and put back are stored as a stream of their own: their chain went on without them',
      );
      return true;
    }
    if (!this.appendRejected(apart, aside)) return false;
    aside.records += apart.length;
    aside.error ??= written.refused;
    return true;
  }

  /** A statement of a write (besides the insert itself, `write`) the database did not answer: counted as a failed insert. */
  private unanswered(error: unknown, context: Record<string, unknown>): void {
    this.counts.writeFailures += 1;
    this.writes.failed(error, NOT_STORED, context);
  }

  private appendRejected(rows: AuditRow[], aside: SetAsideRecords): boolean {
    try {
      aside.file = this.spool.appendRejected(rows, aside.file);
      return true;
    } catch (error) {
      this.logger.error(
        { err: error, records: rows.length, directory: this.spool.directory },
        'audit records the database refuses could not be set aside: kept where they are, and tried again',
      );
      return false;
    }
  }

  /** Logs, once for the file, why a batch can never be replayed, and renames it so that replay goes on without it. */
  private setAside(file: SpoolFile, reason: SetAsideReason, error: unknown): void {
    this.logger.error(
      { err: error, file: file.name, records: file.records, directory: this.spool.directory },
      reason === 'corrupt'
        ? 'a spooled audit batch cannot be read: set aside as .corrupt'
        : 'a spooled audit batch does not hold audit records: set aside as .rejected, and replay goes on without it',
    );
    try {
      this.spool.setAside(file, reason);
    } catch {
      // Gone meanwhile (another worker set it aside too): forgotten all the same.
    }
  }

  private async write(
    rows: AuditRow[],
    source: AuditWriteEvent['source'],
    text?: string,
    setAside?: number,
  ): Promise<Written> {
    const started = performance.now();
    let timeout: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.repository.insert(rows, rows[0]?.streamId === this.stream.id ? this.stream : undefined, text, setAside),
        new Promise((_, reject) => {
          timeout = setTimeout(
            () => reject(new Error(`audit insert took longer than ${this.config.audit.writeTimeoutMs} ms`)),
            this.config.audit.writeTimeoutMs,
          );
        }),
      ]);
      this.counts.stored += rows.length;
      this.emit({ records: rows.length, durationMs: performance.now() - started, ok: true, source });
      this.writes.succeeded({ spooled: this.spool.records });
      return 'stored';
    } catch (error) {
      this.counts.writeFailures += 1;
      this.emit({ records: rows.length, durationMs: performance.now() - started, ok: false, source });
      // The database answered, refusing these records: no outage; the caller sets them aside, saying why.
      if (isDataRefusal(error)) return { refused: error };
      this.writes.failed(error, NOT_STORED, { records: rows.length, source });
      return 'failed';
    } finally {
      clearTimeout(timeout);
    }
  }

  private emit(event: AuditWriteEvent): void {
    for (const listener of this.writeListeners) {
      try {
        listener(event);
      } catch (error) {
        this.logger.error({ err: error }, 'an audit write listener failed');
      }
    }
  }
}
