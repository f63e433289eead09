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
 * including the one at start). Timers are unref'd and nothing here is waited
 * on at shutdown.
 */
@Injectable()
export class DiscoveryScheduler implements OnApplicationBootstrap, OnModuleDestroy, BeforeApplicationShutdown {
  private unsubscribe?: () => void;
  private timer?: NodeJS.Timeout;
  private stopped = false;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly events: RegistryEvents,
    private readonly syncs: DiscoverySyncService,
    private readonly watchers: ListChangedWatchers,
    private readonly repository: DiscoveryRepository,
    @InjectPinoLogger(DiscoveryScheduler.name) private readonly logger: PinoLogger,
  ) {}

  onApplicationBootstrap(): void {
    this.unsubscribe = this.events.on((event) => this.onRegistryEvent(event));
    if (this.config.discoveryIntervalMs > 0) {
      this.scheduleSweep(Math.min(FIRST_SWEEP_DELAY_MS, this.config.discoveryIntervalMs));
    }
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
    const synced = new Set(ids);
    // Servers disabled or deleted by another instance: their watchers go too.
    for (const id of this.watchers.watchedServerIds()) if (!synced.has(id)) this.watchers.unwatch(id);
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
      void this.sweep()
        .catch((error: unknown) => {
          if (!this.stopped) this.logger.error({ err: error }, 'discovery sweep failed');
        })
        .finally(() => this.scheduleSweep(this.config.discoveryIntervalMs));
    }, delayMs).unref();
  }

  private stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.unsubscribe?.();
    this.unsubscribe = undefined;
  }
}
