import { Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { ClusterSignals } from '../redis/cluster-signals';
import { InjectPinoLogger, PinoLogger } from 'nestjs-pino';
import type { UnreadableServer } from '../registry/registry.errors';
import { parseUpstreamTarget, type UpstreamTarget } from '../registry/server.schema';
import { UnreadableServerLog } from '../registry/unreadable-server-log';
import { UpstreamConnector } from '../upstream/upstream-connector';
import { type ClassifiedError, classifyUpstreamError } from '../upstream/upstream-error';
import { DiscoveryRepository, SYNCED_STATUSES } from './discovery.repository';
import type { ItemKind } from './fingerprint';
import { itemRecords } from './item-records';
import { formatLastError } from './last-error';
import { announcesListChanges, ListChangedWatchers } from './list-changed-watchers';
import { readCatalog, type UpstreamCatalog } from './upstream-catalog';

export type SyncOutcome =
  | { status: 'synced'; serverId: string; items: number; changes: number; truncated: ItemKind[] }
  | { status: 'failed'; serverId: string; failure: ClassifiedError }
  | { status: 'unreadable'; serverId: string; server: UnreadableServer }
  | { status: 'not_found' | 'disabled' | 'stopped'; serverId: string };

/** Why a sync ran; only logged. */
export type SyncReason = 'registered' | 'updated' | 'refresh' | 'periodic' | 'list_changed';

/**
 * Syncs one server: connect, initialize, list everything its capabilities
 * advertise, store it in one transaction. A failure is recorded and the items
 * of the last good sync stay. Per server at most one sync runs and one waits:
 * asking while one runs gets the next one, which starts after it and so sees
 * whatever made the caller ask.
 */
@Injectable()
export class DiscoverySyncService implements OnModuleInit, OnModuleDestroy {
  private readonly running = new Map<string, Promise<SyncOutcome>>();
  private readonly queued = new Map<string, Promise<SyncOutcome>>();
  private readonly stopping = new AbortController();
  private readonly unreadable: UnreadableServerLog;

  constructor(
    private readonly repository: DiscoveryRepository,
    private readonly connector: UpstreamConnector,
    private readonly watchers: ListChangedWatchers,
    private readonly signals: ClusterSignals,
    @InjectPinoLogger(DiscoverySyncService.name) private readonly logger: PinoLogger,
  ) {
    this.unreadable = new UnreadableServerLog(
      logger,
      'a stored server the gateway cannot read is not synced, nor watched, until an admin repairs or deletes it',
    );
  }

  onModuleInit(): void {
    this.watchers.onListChanged((serverId) => this.syncInBackground(serverId, 'list_changed'));
  }

  /** Stops starting syncs and aborts the upstream requests of running ones; does not wait for them. */
  onModuleDestroy(): void {
    this.stopping.abort();
  }

  sync(serverId: string, reason: SyncReason): Promise<SyncOutcome> {
    const queued = this.queued.get(serverId);
    if (queued) return queued;
    const running = this.running.get(serverId);
    if (!running) return this.start(serverId, reason);
    const next = running
      .catch(() => undefined)
      .then(() => {
        this.queued.delete(serverId);
        return this.start(serverId, reason);
      });
    this.queued.set(serverId, next);
    return next;
  }

  /** For triggers nobody waits on: the outcome is logged. */
  syncInBackground(serverId: string, reason: SyncReason): void {
    this.sync(serverId, reason).catch((error: unknown) => {
      if (!this.stopping.signal.aborted) this.logger.error({ err: error, serverId, reason }, 'discovery sync failed');
    });
  }

  isSyncing(serverId: string): boolean {
    return this.running.has(serverId);
  }

  private start(serverId: string, reason: SyncReason): Promise<SyncOutcome> {
    const run = this.run(serverId, reason).finally(() => this.running.delete(serverId));
    this.running.set(serverId, run);
    return run;
  }

  private async run(serverId: string, reason: SyncReason): Promise<SyncOutcome> {
    if (this.stopping.signal.aborted) return { status: 'stopped', serverId };
    const server = await this.repository.findServer(serverId);
    if (!server) {
      this.watchers.unwatch(serverId);
      return { status: 'not_found', serverId };
    }
    // Its own fault, not the upstream's: the items of its last good sync stay, as /mcp leaves the server out.
    const parsed = parseUpstreamTarget(server);
    if ('problems' in parsed) {
      this.watchers.unwatch(serverId);
      this.unreadable.report(server, parsed.problems);
      const { id, name, slug, url, revision, createdAt } = server;
      return {
        status: 'unreadable',
        serverId,
        server: { id, name, slug, url, revision, createdAt, problems: parsed.problems },
      };
    }
    if (!(SYNCED_STATUSES as readonly string[]).includes(server.status)) {
      this.watchers.unwatch(serverId);
      return { status: 'disabled', serverId };
    }
    const { target } = parsed;
    let catalog: UpstreamCatalog;
    try {
      catalog = await this.read(target);
    } catch (error) {
      if (this.stopping.signal.aborted) return { status: 'stopped', serverId };
      const failure = classifyUpstreamError(error);
      await this.repository.recordFailure(serverId, formatLastError(failure), new Date());
      this.logger.warn({ serverId, slug: server.slug, reason, failure }, 'discovery sync failed: upstream');
      return { status: 'failed', serverId, failure };
    }
    if (this.stopping.signal.aborted) return { status: 'stopped', serverId };
    const items = itemRecords(server.slug, catalog.definitions);
    const saved = await this.repository.saveSnapshot(serverId, {
      serverInfo: catalog.serverInfo,
      protocolVersion: catalog.protocolVersion,
      capabilities: catalog.capabilities,
      instructions: catalog.instructions,
      items,
      syncedAt: new Date(),
    });
    if (!saved) {
      this.watchers.unwatch(serverId);
      return { status: 'not_found', serverId };
    }
    // Every replica's /mcp catalog reloads now instead of at its next poll; a sync that found everything as it
    // was (most periodic ones) has nothing for them to reload.
    if (saved.changed) {
      await this.signals
        .raise('catalog:stale')
        .catch((error: unknown) => this.logger.warn({ err: error }, 'signal failed'));
    }
    if (announcesListChanges(catalog.capabilities)) this.watchers.watch(target);
    else this.watchers.unwatch(serverId);
    if (catalog.truncated.length > 0 || catalog.skipped.length > 0) {
      this.logger.warn(
        { serverId, slug: server.slug, truncated: catalog.truncated, skipped: catalog.skipped.slice(0, 20) },
        'discovery left items out',
      );
    }
    this.logger.info(
      { serverId, slug: server.slug, reason, items: items.length, changes: saved.changes.length },
      'discovery synced',
    );
    return {
      status: 'synced',
      serverId,
      items: items.length,
      changes: saved.changes.length,
      truncated: catalog.truncated,
    };
  }

  /** Reads the upstream's catalog over a session of its own, closed whatever happens. */
  private async read(target: UpstreamTarget): Promise<UpstreamCatalog> {
    const session = await this.connector.connect(target);
    try {
      return await readCatalog(session, {
        timeoutMs: this.connector.requestTimeoutMs(target),
        signal: this.stopping.signal,
      });
    } finally {
      await session.close().catch(() => undefined);
    }
  }
}
