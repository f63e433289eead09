import cluster, { type Address, type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import type { AppConfig } from '../config/config';
import { ClusterMetrics } from './cluster-metrics';
import { DEFAULT_RESTART_BACKOFF, RestartBackoff, type RestartBackoffOptions } from './restart-backoff';

/** The hidden `serve` flag by which a worker learns its slot (1-based; a replacement keeps its predecessor's). */
export const WORKER_SLOT_FLAG = '--worker-slot';

/**
 * Why `serve` cannot run `config.workers` processes, or undefined when it can.
 * Workers share nothing but PostgreSQL and Redis: the embedded database is
 * locked by one process, and an in-process store would split sessions, rate
 * limits and signals between workers.
 */
export function workersRefusal(config: Pick<AppConfig, 'workers' | 'database' | 'redisUrl'>): string | undefined {
  if (config.workers <= 1) return undefined;
  const missing = [
    ...(config.database.kind === 'embedded' ? ['DATABASE_URL'] : []),
    ...(config.redisUrl ? [] : ['REDIS_URL']),
  ];
  if (missing.length === 0) return undefined;
  return (
    `${config.workers} workers need ${missing.join(' and ')}: workers share nothing but PostgreSQL and Redis ` +
    `(the embedded database and the in-process store belong to one process). Set ${missing.length > 1 ? 'them' : 'it'}, or serve with --workers 1.`
  );
}

export interface WorkerPoolOptions {
  count: number;
  /** The command line every worker runs (the primary's own `serve …`); the slot flag is added to it. */
  args: string[];
  logger: Logger;
  backoff?: RestartBackoffOptions;
}

interface Slot {
  readonly number: number;
  readonly backoff: RestartBackoff;
  worker?: Worker;
  listeningAt?: number;
  restartTimer?: NodeJS.Timeout;
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (error: Error) => void;
}

/**
 * The primary's side of `serve --workers N`: N worker processes listening on
 * one port (node:cluster hands out the connections). A worker that exits
 * while serving is replaced in the same slot, after a back-off when it keeps
 * dying young; `stop()` has every worker drain and waits for them.
 */
export class WorkerPool {
  private readonly slots: Slot[];
  private readonly slotOf = new Map<Worker, Slot>();
  private state: 'idle' | 'starting' | 'serving' | 'stopping' = 'idle';
  private readonly started = deferred<string>();
  private readonly stopped = deferred<void>();
  private url?: string;
  private cleanStop = true;
  /** Answers the workers' scrapes of `/metrics` with all of theirs (src/cluster/cluster-metrics.ts). */
  private readonly metrics = new ClusterMetrics(() =>
    this.slots.flatMap((slot) => (slot.worker === undefined ? [] : [slot.worker])),
  );
  private stopMetrics?: () => void;

  constructor(private readonly options: WorkerPoolOptions) {
    this.slots = Array.from({ length: options.count }, (_, index) => ({
      number: index + 1,
      backoff: new RestartBackoff(options.backoff ?? DEFAULT_RESTART_BACKOFF),
    }));
  }

  /** Forks every worker; resolves with the URL once all of them listen, rejects if one exits before. */
  start(): Promise<string> {
    if (this.state !== 'idle') throw new Error('a worker pool starts once');
    this.state = 'starting';
    cluster.on('listening', this.onListening);
    cluster.on('exit', this.onExit);
    this.stopMetrics = this.metrics.start();
    for (const slot of this.slots) this.fork(slot);
    return this.started.promise;
  }

  /** SIGTERM to every worker (each drains on its own); resolves true once all exited, having drained cleanly. */
  async stop(): Promise<boolean> {
    if (this.state !== 'stopping') {
      this.state = 'stopping';
      for (const slot of this.slots) {
        clearTimeout(slot.restartTimer);
        slot.worker?.process.kill('SIGTERM');
      }
      this.settleIfAllExited();
    }
    await this.stopped.promise;
    cluster.off('listening', this.onListening);
    cluster.off('exit', this.onExit);
    this.stopMetrics?.();
    return this.cleanStop;
  }

  /**
   * A second signal, or a drain past its bound, after `stop()`: SIGTERM again to every worker still running, which
   * (draining already) then writes the audit records it holds in memory to the spool and exits 1, as a single process
   * does; SIGKILL to any still running after `boundMs`. Resolves once every worker has exited or been killed.
   */
  async abandon(boundMs: number): Promise<void> {
    for (const slot of this.slots) slot.worker?.process.kill('SIGTERM');
    let bound: NodeJS.Timeout | undefined;
    await Promise.race([this.stopped.promise, new Promise((resolve) => (bound = setTimeout(resolve, boundMs)))]);
    clearTimeout(bound);
    const running = this.running();
    if (running.length === 0) return;
    this.options.logger.warn(
      { workers: running.map(({ worker }) => worker), workerPids: running.map(({ workerPid }) => workerPid), boundMs },
      'workers still running once told to exit without draining: killed',
    );
    this.kill();
  }

  /** The workers running now, by slot and pid. */
  running(): { worker: number; workerPid: number | undefined }[] {
    return this.slots.flatMap((slot) =>
      slot.worker === undefined ? [] : [{ worker: slot.number, workerPid: slot.worker.process.pid }],
    );
  }

  /** SIGKILL to every worker: a signal after the second waits for nothing. */
  kill(): void {
    for (const slot of this.slots) slot.worker?.process.kill('SIGKILL');
  }

  private fork(slot: Slot): void {
    cluster.setupPrimary({ args: [...this.options.args, WORKER_SLOT_FLAG, String(slot.number)] });
    const worker = cluster.fork();
    slot.worker = worker;
    slot.listeningAt = undefined;
    this.slotOf.set(worker, slot);
    this.options.logger.info({ worker: slot.number, workerPid: worker.process.pid }, 'worker started');
  }

  private readonly onListening = (worker: Worker, address: Address): void => {
    const slot = this.slotOf.get(worker);
    if (!slot) return;
    slot.listeningAt = Date.now();
    this.url ??= urlOf(address);
    this.options.logger.info({ worker: slot.number, workerPid: worker.process.pid }, 'worker listening');
    if (this.state === 'starting' && this.slots.every((each) => each.listeningAt !== undefined)) {
      this.state = 'serving';
      this.started.resolve(this.url);
    }
  };

  private readonly onExit = (worker: Worker, code: number | null, signal: NodeJS.Signals | null): void => {
    const slot = this.slotOf.get(worker);
    if (!slot) return;
    this.slotOf.delete(worker);
    slot.worker = undefined;
    const exit = { worker: slot.number, workerPid: worker.process.pid, code, signal };
    switch (this.state) {
      case 'idle':
        return;
      case 'stopping':
        // Killed by our SIGTERM before it could listen for it: it had nothing to drain.
        if (code !== 0 && signal !== 'SIGTERM') this.cleanStop = false;
        this.options.logger.info(exit, 'worker stopped');
        this.settleIfAllExited();
        return;
      case 'starting':
        this.options.logger.error(exit, 'worker exited before it was serving');
        this.started.reject(
          new Error(`worker ${slot.number} exited (${signal ?? `code ${code}`}) before it was serving`),
        );
        return;
      case 'serving': {
        const upMs = slot.listeningAt === undefined ? 0 : Date.now() - slot.listeningAt;
        const delayMs = slot.backoff.delayAfter(upMs);
        this.options.logger.warn({ ...exit, restartInMs: delayMs }, 'worker exited: starting another in its place');
        slot.restartTimer = setTimeout(() => {
          slot.restartTimer = undefined;
          if (this.state === 'serving') this.fork(slot);
        }, delayMs);
        return;
      }
    }
  };

  private settleIfAllExited(): void {
    if (this.state === 'stopping' && this.slots.every((slot) => slot.worker === undefined)) this.stopped.resolve();
  }
}

function urlOf(address: Address): string {
  const host = address.address ?? '127.0.0.1';
  const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return `http://${shown}:${address.port}`;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // A start nobody awaits any more (a signal came first) must not become an unhandled rejection.
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}
