export interface ProbeSchedulerOptions {
  /** Time between rounds; 0 never starts the timer. */
  intervalMs: number;
  /** Probes running at once. */
  concurrency: number;
  /** The servers a round probes. */
  listServers: () => Promise<string[]>;
  /** Probes one server; expected to bound its own time and not to throw. */
  probe: (serverId: string) => Promise<void>;
  /** Called when listing or a probe throws anyway. */
  onError: (error: unknown, serverId?: string) => void;
}

export interface SchedulerCounters {
  /** Rounds that listed the servers and queued them. */
  rounds: number;
  /** Ticks that found the previous round still listing and did nothing. */
  roundsSkipped: number;
  /** Probes the scheduler started. */
  probesStarted: number;
}

/**
 * Runs probes in rounds without letting one server hold up another. A round
 * lists the servers and queues those not already queued or being probed; a
 * pool of `concurrency` workers drains the queue. So rounds never overlap for
 * any one server, a slow probe occupies one worker for at most its own
 * timeout, and the other servers keep being probed every interval meanwhile.
 * Timers are unref'd; after `stop()` nothing new starts.
 */
export class ProbeScheduler {
  readonly counters: SchedulerCounters = { rounds: 0, roundsSkipped: 0, probesStarted: 0 };
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  private readonly running = new Set<string>();
  /** Servers asked for again while being probed (their registration changed): probed once more right after. */
  private readonly again = new Set<string>();
  private timer?: NodeJS.Timeout;
  private listing = false;
  private stopped = false;

  constructor(private readonly options: ProbeSchedulerOptions) {}

  get isRunning(): boolean {
    return this.timer !== undefined;
  }

  start(): void {
    if (this.stopped || this.timer || this.options.intervalMs <= 0) return;
    this.timer = setInterval(() => void this.tick(), this.options.intervalMs);
    this.timer.unref();
  }

  /** Stops the timer and drops the queue; probes under way finish on their own, unawaited. */
  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
    this.queued.clear();
    this.again.clear();
  }

  /** Probes this server before the queued ones (a new or changed registration). */
  request(serverId: string): void {
    if (this.stopped || !this.timer) return;
    if (this.running.has(serverId)) {
      this.again.add(serverId);
      return;
    }
    if (this.queued.has(serverId)) this.queue.splice(this.queue.indexOf(serverId), 1);
    this.queued.add(serverId);
    this.queue.unshift(serverId);
    this.pump();
  }

  /** Drops a server that no longer exists; a probe of it under way finishes, and its result is the caller's to discard. */
  forget(serverId: string): void {
    if (this.queued.delete(serverId)) this.queue.splice(this.queue.indexOf(serverId), 1);
    this.again.delete(serverId);
  }

  /** One round now; resolves once the round's servers are queued (not once they are probed). */
  async tick(): Promise<void> {
    if (this.stopped) return;
    if (this.listing) {
      this.counters.roundsSkipped++;
      return;
    }
    this.listing = true;
    try {
      const ids = await this.options.listServers();
      if (this.stopped) return;
      this.counters.rounds++;
      for (const id of ids) {
        if (this.queued.has(id) || this.running.has(id)) continue;
        this.queued.add(id);
        this.queue.push(id);
      }
      this.pump();
    } catch (error) {
      this.options.onError(error);
    } finally {
      this.listing = false;
    }
  }

  private pump(): void {
    while (!this.stopped && this.running.size < this.options.concurrency) {
      const id = this.queue.shift();
      if (id === undefined) return;
      this.queued.delete(id);
      this.running.add(id);
      this.counters.probesStarted++;
      void this.options
        .probe(id)
        .catch((error: unknown) => this.options.onError(error, id))
        .finally(() => {
          this.running.delete(id);
          if (this.again.delete(id)) this.request(id);
          else this.pump();
        });
    }
  }
}
