import { Injectable, type OnModuleDestroy } from '@nestjs/common';
import { InjectPinoLogger, PinoLogger } from 'nestjs-pino';
import type { UpstreamTarget } from '../registry/server.schema';
import { UpstreamConnector } from '../upstream/upstream-connector';
import { classifyUpstreamError } from '../upstream/upstream-error';
import { UrlGuard } from '../upstream/url-guard';
import { type ListenSession, openListenSession } from './listen-session';

/** How a server's watcher is doing, as the capabilities view reports it (this process only). */
export type WatchState = 'connected' | 'connecting' | 'reconnecting' | 'off';

export interface WatcherTiming {
  /** Notifications arriving within this window of the first cause one re-sync. */
  debounceMs: number;
  /**
   * Least time between two re-syncs of one server: an upstream announcing changes without pause is synced this
   * often, whatever it sends meanwhile (what changed then is in the next one).
   */
  minSyncIntervalMs: number;
  /** A connected session is pinged this often; a failed ping counts as a drop. */
  pingIntervalMs: number;
  pingTimeoutMs: number;
  /** Reconnect delays double from `backoffMinMs` up to `backoffMaxMs` (plus up to 20 % jitter)... */
  backoffMinMs: number;
  backoffMaxMs: number;
  /** ...and start over once a session stayed up this long. */
  stableAfterMs: number;
}

export const WATCHER_TIMING: WatcherTiming = {
  debounceMs: 150,
  minSyncIntervalMs: 2_000,
  pingIntervalMs: 30_000,
  pingTimeoutMs: 10_000,
  backoffMinMs: 1_000,
  backoffMaxMs: 60_000,
  stableAfterMs: 60_000,
};

interface Watch {
  readonly target: UpstreamTarget;
  /** The target as JSON: a registration change (URL, auth, ...) replaces the watch. */
  readonly key: string;
  state: Exclude<WatchState, 'off'>;
  session?: ListenSession;
  /** Bumped whenever a session is replaced or dropped; callbacks of older sessions then do nothing. */
  generation: number;
  failures: number;
  connectedAt?: number;
  everConnected: boolean;
  timer?: NodeJS.Timeout;
  debounce?: NodeJS.Timeout;
  /** When the last re-sync was asked for (`performance.now()`). */
  lastSyncAt?: number;
  closed: boolean;
}

const LIST_CHANGED = new Set([
  'notifications/tools/list_changed',
  'notifications/prompts/list_changed',
  'notifications/resources/list_changed',
]);

/** Whether the server announces changes of any list discovery stores. */
export function announcesListChanges(capabilities: Record<string, unknown>): boolean {
  return ['tools', 'prompts', 'resources'].some((name) => {
    const capability = capabilities[name];
    return (
      typeof capability === 'object' &&
      capability !== null &&
      (capability as { listChanged?: unknown }).listChanged === true
    );
  });
}

/**
 * One long-lived MCP session per synced server that announces list changes,
 * kept only to hear `notifications/{tools,prompts,resources}/list_changed`.
 * Any transport error, a close, or a failed ping drops the session; it is
 * reopened with backoff, and each reopening counts as a change (whatever the
 * upstream announced meanwhile was missed).
 */
@Injectable()
export class ListChangedWatchers implements OnModuleDestroy {
  private readonly watches = new Map<string, Watch>();
  private listener?: (serverId: string) => void;
  private closed = false;
  private readonly timing: WatcherTiming = WATCHER_TIMING;

  constructor(
    private readonly connector: UpstreamConnector,
    private readonly urlGuard: UrlGuard,
    @InjectPinoLogger(ListChangedWatchers.name) private readonly logger: PinoLogger,
  ) {}

  /** Who hears that a server's lists changed (debounced). One listener: discovery's sync. */
  onListChanged(listener: (serverId: string) => void): void {
    this.listener = listener;
  }

  /** Keeps (or starts) a watcher on the target; a changed target replaces the old one. */
  watch(target: UpstreamTarget): void {
    if (this.closed) return;
    const key = JSON.stringify(target);
    const existing = this.watches.get(target.id);
    if (existing?.key === key) return;
    if (existing) void this.stop(existing);
    const watch: Watch = {
      target,
      key,
      state: 'connecting',
      generation: 0,
      failures: 0,
      everConnected: false,
      closed: false,
    };
    this.watches.set(target.id, watch);
    void this.connect(watch);
  }

  unwatch(serverId: string): void {
    const watch = this.watches.get(serverId);
    if (watch) void this.stop(watch);
  }

  stateOf(serverId: string): WatchState {
    return this.watches.get(serverId)?.state ?? 'off';
  }

  watchedServerIds(): string[] {
    return [...this.watches.keys()];
  }

  async onModuleDestroy(): Promise<void> {
    this.closed = true;
    const sessions = [...this.watches.values()].map((watch) => this.stop(watch));
    await Promise.all(sessions);
  }

  private async connect(watch: Watch): Promise<void> {
    const generation = ++watch.generation;
    watch.timer = undefined;
    let session: ListenSession;
    try {
      session = await openListenSession(this.connector, this.urlGuard, watch.target, {
        notified: (method) => {
          if (LIST_CHANGED.has(method)) this.changed(watch, generation);
        },
        dropped: (error) => this.dropped(watch, generation, error),
      });
    } catch (error) {
      if (watch.closed || generation !== watch.generation) return;
      this.logger.debug(
        { serverId: watch.target.id, reason: classifyUpstreamError(error) },
        'list-changed watcher could not connect',
      );
      this.retry(watch);
      return;
    }
    if (watch.closed || generation !== watch.generation) {
      await session.close().catch(() => undefined);
      return;
    }
    watch.session = session;
    watch.state = 'connected';
    watch.connectedAt = Date.now();
    this.schedulePing(watch, generation);
    if (watch.everConnected) this.changed(watch, generation);
    watch.everConnected = true;
  }

  /**
   * A change announced: one re-sync, `debounceMs` after the first announcement and no sooner than
   * `minSyncIntervalMs` after the last re-sync; announcements meanwhile are in it. The wait is not restarted by
   * each announcement, so an upstream announcing without pause is still synced, and only that often.
   */
  private changed(watch: Watch, generation: number): void {
    if (watch.closed || generation !== watch.generation || watch.debounce) return;
    const sinceLast = watch.lastSyncAt === undefined ? Infinity : performance.now() - watch.lastSyncAt;
    const wait = Math.max(this.timing.debounceMs, this.timing.minSyncIntervalMs - sinceLast);
    watch.debounce = setTimeout(() => {
      watch.debounce = undefined;
      watch.lastSyncAt = performance.now();
      if (!watch.closed) this.listener?.(watch.target.id);
    }, wait).unref();
  }

  private dropped(watch: Watch, generation: number, error: unknown): void {
    if (watch.closed || generation !== watch.generation) return;
    watch.generation++;
    clearTimeout(watch.timer);
    const session = watch.session;
    watch.session = undefined;
    void session?.close().catch(() => undefined);
    const wasStable = watch.connectedAt !== undefined && Date.now() - watch.connectedAt >= this.timing.stableAfterMs;
    if (wasStable) watch.failures = 0;
    this.logger.info(
      { serverId: watch.target.id, ...(error === undefined ? {} : { reason: classifyUpstreamError(error) }) },
      'list-changed watcher dropped; reconnecting',
    );
    this.retry(watch);
  }

  private retry(watch: Watch): void {
    watch.state = 'reconnecting';
    const base = Math.min(this.timing.backoffMinMs * 2 ** watch.failures, this.timing.backoffMaxMs);
    watch.failures++;
    watch.timer = setTimeout(() => void this.connect(watch), base * (1 + Math.random() * 0.2)).unref();
  }

  private schedulePing(watch: Watch, generation: number): void {
    watch.timer = setTimeout(() => {
      const session = watch.session;
      if (watch.closed || generation !== watch.generation || !session) return;
      session
        .ping(this.timing.pingTimeoutMs)
        .then(() => {
          if (!watch.closed && generation === watch.generation) this.schedulePing(watch, generation);
        })
        .catch((error: unknown) => this.dropped(watch, generation, error));
    }, this.timing.pingIntervalMs).unref();
  }

  private async stop(watch: Watch): Promise<void> {
    watch.closed = true;
    watch.generation++;
    clearTimeout(watch.timer);
    clearTimeout(watch.debounce);
    if (this.watches.get(watch.target.id) === watch) this.watches.delete(watch.target.id);
    const session = watch.session;
    watch.session = undefined;
    await session?.close().catch(() => undefined);
  }
}
