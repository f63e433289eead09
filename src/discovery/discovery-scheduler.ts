import {
  type BeforeApplicationShutdown,
  Inject,
  Injectable,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
} from '@nestjs/common';
import { InjectPinoLogger, PinoLogger } from 'nestjs-pino';
import type { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { KEY_VALUE_STORE, type KeyValueStore } from '../redis/key-value-store';
import { deploymentKey, PeriodClaim } from '../redis/period-claim';
import { type RegistryEvent, RegistryEvents } from '../registry/registry-events';
import { DiscoveryRepository } from './discovery.repository';
import { DiscoverySyncService } from './discovery-sync.service';
import { ListChangedWatchers } from './list-changed-watchers';

/** Syncs running at once in a periodic sweep. */
export const SWEEP_CONCURRENCY = 4;
/** The first sweep waits this long after start, so it does not compete with startup. */
const FIRST_SWEEP_DELAY_MS = 1_000;

/**
 * What starts syncs besides the refresh route: registry changes, and a sweep
 * over every synced server each DISCOVERY_INTERVAL_MS (0 turns the sweep off,
 * including the one at start; `serve --workers` workers but the first only
 * prune their watchers, so one machine syncs each server once). Timers are unref'd and nothing here is waited
 * on at shutdown.
 */
@Injectable()
export class DiscoveryScheduler implements OnApplicationBootstrap, OnModuleDestroy, BeforeApplicationShutdown {
  private unsubscribe?: () => void;
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private readonly sweeps: PeriodClaim;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly events: RegistryEvents,
    private readonly syncs: DiscoverySyncService,
    private readonly watchers: ListChangedWatchers,
    private readonly repository: DiscoveryRepository,
    @InjectPinoLogger(DiscoveryScheduler.name) private readonly logger: PinoLogger,
    @Inject(KEY_VALUE_STORE) store: KeyValueStore,
  ) {
    this.sweeps = new PeriodClaim(store, `discovery-sweep:${deploymentKey(config.database)}`);
  }

  onApplicationBootstrap(): void {
    this.unsubscribe = this.events.on((event) => this.onRegistryEvent(event));
    if (this.config.discoveryIntervalMs > 0) {
      this.scheduleSweep(Math.min(FIRST_SWEEP_DELAY_MS, this.config.discoveryIntervalMs));
    }
  }

  /**
   * A worker that leaves the sweep to another one still closes the watchers
   * of servers that were disabled or deleted elsewhere.
   */
  async pruneWatchers(): Promise<void> {
    this.releaseWatchersOfServersGone(await this.repository.listSyncedServerIds());
  }

  onModuleDestroy(): void {
    this.stop();
  }

  beforeApplicationShutdown(): void {
    this.stop();
  }

  /** One pass over every synced server; servers with a sync already running are left to it. */
  async sweep(): Promise<void> {
    const ids = await this.repository.listSyncedServerIds();
    this.releaseWatchersOfServersGone(ids);
    const pending = ids.filter((id) => !this.syncs.isSyncing(id));
    const worker = async (): Promise<void> => {
      while (!this.stopped) {
        const id = pending.shift();
        if (id === undefined) return;
        try {
          await this.syncs.sync(id, 'periodic');
        } catch (error) {
          if (!this.stopped) this.logger.error({ err: error, serverId: id }, 'periodic discovery sync failed');
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(SWEEP_CONCURRENCY, pending.length) }, worker));
  }

  private onRegistryEvent(event: RegistryEvent): void {
    if (this.stopped) return;
    switch (event.type) {
      case 'created':
        this.syncs.syncInBackground(event.serverId, 'registered');
        return;
      case 'updated':
        // A disabled server is not synced; the sync notices and closes its watcher.
        this.syncs.syncInBackground(event.serverId, 'updated');
        return;
      case 'deleted':
        // Its discovery rows go with it (ON DELETE CASCADE).
        this.watchers.unwatch(event.serverId);
        return;
    }
  }

  private scheduleSweep(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void (this.config.periodicWork ? this.sweepIfOurTurn() : this.pruneWatchers())
        .catch((error: unknown) => {
          if (!this.stopped) this.logger.error({ err: error }, 'discovery sweep failed');
        })
        .finally(() => this.scheduleSweep(this.config.discoveryIntervalMs));
    }, delayMs).unref();
  }

  /** One replica of a deployment sweeps per interval; the others only let go of watchers of servers gone. */
  private async sweepIfOurTurn(): Promise<void> {
    const ours = await this.sweeps.ours(this.config.discoveryIntervalMs, (error) =>
      this.logger.warn({ err: error }, 'could not claim the discovery sweep; sweeping anyway'),
    );
    return ours ? this.sweep() : this.pruneWatchers();
  }

  /** Servers disabled or deleted by another instance: their watchers go too. */
  private releaseWatchersOfServersGone(syncedIds: string[]): void {
    const synced = new Set(syncedIds);
    for (const id of this.watchers.watchedServerIds()) if (!synced.has(id)) this.watchers.unwatch(id);
  }

  private stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.unsubscribe?.();
    this.unsubscribe = undefined;
  }
}
