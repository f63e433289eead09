import { Injectable } from '@nestjs/common';
import { DomainError } from '../common/domain-error';
import { RegistryErrors, UnreadableServerError } from '../registry/registry.errors';
import { RegistryService } from '../registry/registry.service';
import type { ClassifiedError } from '../upstream/upstream-error';
import { type CapabilitiesRecord, DiscoveryRepository, type SearchRow, type StoredItem } from './discovery.repository';
import {
  type CapabilitiesView,
  type ResourceHit,
  type ResourceTemplateView,
  type ResourceView,
  type SearchPage,
  type SearchQuery,
  type ToolHit,
  type ToolView,
  UUID,
} from './discovery.dto';
import { DiscoverySyncService } from './discovery-sync.service';
import type { ItemKind } from './fingerprint';
import { findNameCollisions } from './gateway-names';
import { parseLastError } from './last-error';
import { ListChangedWatchers } from './list-changed-watchers';
import { decodeSearchCursor, encodeSearchCursor } from './search-cursor';

/** What the discovery routes answer: a server's capabilities, a refresh, and search across servers. */
@Injectable()
export class DiscoveryService {
  constructor(
    private readonly repository: DiscoveryRepository,
    private readonly syncs: DiscoverySyncService,
    private readonly watchers: ListChangedWatchers,
    private readonly registry: RegistryService,
  ) {}

  /** `ref`: the server's id, slug or name, as `/servers/{ref}` takes it. */
  async capabilities(ref: string): Promise<CapabilitiesView> {
    return this.capabilitiesOf(await this.registry.idOf(ref), ref);
  }

  /** Syncs now (or joins the sync about to run) and answers the result. */
  async refresh(ref: string): Promise<CapabilitiesView> {
    const id = await this.registry.idOf(ref);
    const outcome = await this.syncs.sync(id, 'refresh');
    switch (outcome.status) {
      case 'synced':
        return this.capabilitiesOf(id, ref);
      case 'failed':
        throw upstreamError(outcome.failure);
      case 'unreadable':
        throw new UnreadableServerError(outcome.server);
      case 'not_found':
        throw RegistryErrors.notFound(ref);
      case 'disabled':
        throw new DomainError('conflict', 'the server is disabled; discovery does not sync disabled servers');
      case 'stopped':
        throw new DomainError('service_unavailable', 'the gateway is shutting down');
    }
  }

  async searchTools(query: SearchQuery): Promise<SearchPage<ToolHit>> {
    return this.searchNamed('tool', query);
  }

  async searchPrompts(query: SearchQuery): Promise<SearchPage<ToolHit>> {
    return this.searchNamed('prompt', query);
  }

  async searchResources(query: SearchQuery): Promise<SearchPage<ResourceHit>> {
    const page = await this.search(['resource', 'resource_template'], query);
    return {
      nextCursor: page.nextCursor,
      items: page.rows.map((row) => ({
        kind: row.kind === 'resource' ? 'resource' : 'resource_template',
        ...(row.kind === 'resource' ? { uri: row.name } : { uriTemplate: row.name }),
        name: row.displayName,
        ...hitOf(row),
        mimeType: row.mimeType,
      })),
    };
  }

  private async searchNamed(kind: ItemKind, query: SearchQuery): Promise<SearchPage<ToolHit>> {
    const page = await this.search([kind], query);
    return { nextCursor: page.nextCursor, items: page.rows.map((row) => ({ name: row.name, ...hitOf(row) })) };
  }

  private async search(
    kinds: ItemKind[],
    query: SearchQuery,
  ): Promise<{ rows: SearchRow[]; nextCursor: string | null }> {
    const after = query.cursor === undefined ? undefined : decodeSearchCursor(query.cursor);
    if (query.cursor !== undefined && !after) {
      throw new DomainError('validation_error', 'the request is not valid', [
        { field: 'cursor', message: 'is not a cursor this API issued' },
      ]);
    }
    const server = query.server === undefined ? undefined : serverFilter(query.server);
    const rows = await this.repository.search({
      kinds,
      text: query.q || undefined,
      server,
      tag: query.tag,
      after,
      limit: query.limit + 1,
    });
    const more = rows.length > query.limit;
    const shown = more ? rows.slice(0, query.limit) : rows;
    const last = shown[shown.length - 1];
    return {
      rows: shown,
      nextCursor:
        more && last
          ? encodeSearchCursor({
              gatewayName: last.gatewayName,
              serverId: last.serverId,
              kind: last.kind,
              name: last.name,
            })
          : null,
    };
  }

  private async capabilitiesOf(id: string, ref: string): Promise<CapabilitiesView> {
    const record = await this.repository.findCapabilities(id);
    if (!record) throw RegistryErrors.notFound(ref);
    if ('unreadable' in record) throw new UnreadableServerError(record.unreadable);
    return this.viewOf(record);
  }

  private viewOf(record: CapabilitiesRecord): CapabilitiesView {
    const { server, discovery, items, changes } = record;
    const ofKind = (kind: ItemKind): StoredItem[] => items.filter((item) => item.kind === kind);
    return {
      server,
      serverInfo: discovery?.serverInfo ?? null,
      protocolVersion: discovery?.protocolVersion ?? null,
      capabilities: discovery?.capabilities ?? null,
      instructions: discovery?.instructions ?? null,
      syncedAt: discovery?.syncedAt?.toISOString() ?? null,
      lastError:
        discovery?.lastError && discovery.lastErrorAt
          ? { ...parseLastError(discovery.lastError), at: discovery.lastErrorAt.toISOString() }
          : null,
      watch: this.watchers.stateOf(server.id),
      tools: ofKind('tool').map(namedView),
      prompts: ofKind('prompt').map(namedView),
      resources: ofKind('resource').map(resourceView),
      resourceTemplates: ofKind('resource_template').map(resourceTemplateView),
      changes: changes.map((change) => ({ ...change, detectedAt: change.detectedAt.toISOString() })),
      nameCollisions: findNameCollisions(items),
    };
  }
}

function namedView(item: StoredItem): ToolView {
  return {
    name: item.name,
    gatewayName: item.gatewayName,
    title: item.title,
    description: item.description,
    fingerprint: item.fingerprint,
    definition: item.definition,
  };
}

function resourceView(item: StoredItem): ResourceView {
  return {
    uri: item.name,
    name: stringOrNull(item.definition.name),
    gatewayName: item.gatewayName,
    title: item.title,
    description: item.description,
    mimeType: stringOrNull(item.definition.mimeType),
    fingerprint: item.fingerprint,
    definition: item.definition,
  };
}

function resourceTemplateView(item: StoredItem): ResourceTemplateView {
  const { uri, ...rest } = resourceView(item);
  return { uriTemplate: uri, ...rest };
}

function hitOf(row: SearchRow): Omit<ToolHit, 'name'> {
  return {
    server: { id: row.serverId, slug: row.serverSlug, name: row.serverName },
    gatewayName: row.gatewayName,
    title: row.title,
    description: row.description,
    fingerprint: row.fingerprint,
  };
}

/** The query DTO has checked that `ref` is an id or a slug. */
function serverFilter(ref: string): { id: string } | { slug: string } {
  return UUID.test(ref) ? { id: ref.toLowerCase() } : { slug: ref };
}

function stringOrNull(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

/**
 * 502 naming the classified reason. The message of an unclassified failure is
 * left out: it may come from anywhere, and 5xx bodies carry no internals.
 */
function upstreamError(failure: ClassifiedError): DomainError {
  const detail =
    failure.kind === 'other'
      ? 'the upstream could not be synced (other)'
      : `the upstream could not be synced (${failure.kind}): ${failure.message}`;
  return new DomainError('upstream_error', detail);
}
