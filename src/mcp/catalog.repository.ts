import { Injectable } from '@nestjs/common';
import { PrismaService } from '../database/prisma.service';
import type { ServerRow } from './server-directory';

/** One stored tool, prompt, resource or template of a server the aggregate endpoint may expose. */
export interface CatalogItemRow {
  serverId: string;
  kind: string;
  name: string;
  gatewayName: string;
  definition: Record<string, unknown>;
  fingerprint: string;
}

/**
 * Everything that changes what `/mcp` offers moves one of these numbers: a
 * registration, an update or a deletion moves the server count or their
 * latest update time (a deletion takes its items along), a sync that changed
 * a server's items or capabilities its `changed_at`, the prober a health
 * change. A sync that found everything as it was moves none of them.
 */
export interface CatalogMarker {
  servers: number;
  serversUpdatedAt: number;
  itemsChangedAt: number;
  healthChangedAt: number;
}

@Injectable()
export class CatalogRepository {
  constructor(private readonly prisma: PrismaService) {}

  /** Active and deprecated servers that are not known to be unreachable. */
  reachableServers(): Promise<ServerRow[]> {
    return this.prisma.server.findMany({
      where: {
        status: { in: ['active', 'deprecated'] },
        OR: [{ health: null }, { health: { status: { not: 'unreachable' } } }],
      },
      orderBy: { slug: 'asc' },
    });
  }

  /** When each server's items last changed (`server_discovery.changed_at`, ms); absent before its first sync. */
  async itemsChangedAt(serverIds: string[]): Promise<Map<string, number>> {
    if (serverIds.length === 0) return new Map();
    const rows = await this.prisma.serverDiscovery.findMany({
      where: { serverId: { in: serverIds }, changedAt: { not: null } },
      select: { serverId: true, changedAt: true },
    });
    return new Map(rows.map((row) => [row.serverId, row.changedAt?.getTime() ?? 0]));
  }

  /** The items of these servers, in primary-key order (what a server's digest hashes in). */
  async items(serverIds: string[]): Promise<CatalogItemRow[]> {
    if (serverIds.length === 0) return [];
    const rows = await this.prisma.serverItem.findMany({
      where: { serverId: { in: serverIds } },
      select: { serverId: true, kind: true, name: true, gatewayName: true, definition: true, fingerprint: true },
      orderBy: [{ serverId: 'asc' }, { kind: 'asc' }, { name: 'asc' }],
    });
    return rows.map((row) => ({ ...row, definition: row.definition as Record<string, unknown> }));
  }

  /** A cheap fingerprint of the tables the catalog reads, polled to notice other replicas' changes. */
  async marker(): Promise<CatalogMarker> {
    const [row] = await this.prisma.$queryRaw<
      { servers: bigint; servers_updated: Date | null; items_changed: Date | null; health: Date | null }[]
    >`SELECT
        (SELECT count(*) FROM servers) AS servers,
        (SELECT max(updated_at) FROM servers) AS servers_updated,
        (SELECT max(changed_at) FROM server_discovery) AS items_changed,
        (SELECT max(changed_at) FROM server_health) AS health`;
    return {
      servers: Number(row?.servers ?? 0),
      serversUpdatedAt: row?.servers_updated?.getTime() ?? 0,
      itemsChangedAt: row?.items_changed?.getTime() ?? 0,
      healthChangedAt: row?.health?.getTime() ?? 0,
    };
  }
}
