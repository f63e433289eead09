import { escapeLike } from '../common/sql';
import { Injectable } from '@nestjs/common';
import { Prisma } from '../generated/prisma/client';
import { PrismaService } from '../database/prisma.service';
import type { ItemKind } from './fingerprint';
import { diffItems, type ItemChangeRecord, type ItemChangeType, type ItemRecord } from './item-records';
import type { Definition } from './upstream-catalog';

/** Server statuses discovery syncs and search shows; `disabled` servers are neither. */
export const SYNCED_STATUSES = ['active', 'deprecated'] as const;

/** The parts of a server row a sync needs; `auth` and `timeouts` are still unparsed JSON. */
export interface ServerForSync {
  id: string;
  slug: string;
  name: string;
  url: string;
  transport: string;
  auth: unknown;
  timeouts: unknown;
  status: string;
}

export interface DiscoveryRecord {
  serverInfo: Definition | null;
  protocolVersion: string | null;
  capabilities: Definition | null;
  instructions: string | null;
  syncedAt: Date | null;
  lastError: string | null;
  lastErrorAt: Date | null;
}

export interface StoredItem extends Omit<ItemRecord, 'kind'> {
  kind: ItemKind;
}

export interface StoredChange extends ItemChangeRecord {
  detectedAt: Date;
}

export interface CapabilitiesRecord {
  server: { id: string; slug: string; name: string; status: string };
  discovery: DiscoveryRecord | null;
  items: StoredItem[];
  changes: StoredChange[];
}

export interface SnapshotToSave {
  serverInfo: Definition | null;
  protocolVersion: string | null;
  capabilities: Definition;
  instructions: string | null;
  items: ItemRecord[];
  syncedAt: Date;
}

/** Where a search page ends: the sort key of its last row. */
export interface SearchPosition {
  gatewayName: string;
  serverId: string;
  kind: ItemKind;
  name: string;
}

export interface ItemSearch {
  kinds: readonly ItemKind[];
  /** Case-insensitive substring of name (or URI), title, description, or a resource's own name. */
  text?: string;
  server?: { id: string } | { slug: string };
  tag?: string;
  after?: SearchPosition;
  limit: number;
}

export interface SearchRow {
  serverId: string;
  serverSlug: string;
  serverName: string;
  kind: ItemKind;
  name: string;
  gatewayName: string;
  title: string | null;
  description: string | null;
  fingerprint: string;
  /** `definition.name` (a resource's human-readable name) and `definition.mimeType`. */
  displayName: string | null;
  mimeType: string | null;
}

const RECENT_CHANGES = 50;
// A sync of 10,000 items writes them all in one transaction; Prisma's default 5 s is too short for that.
const TRANSACTION = { maxWait: 10_000, timeout: 60_000 };

/** Discovery's rows: server_discovery, server_items, server_item_changes; servers read only. */
@Injectable()
export class DiscoveryRepository {
  constructor(private readonly prisma: PrismaService) {}

  async findServer(id: string): Promise<ServerForSync | undefined> {
    const server = await this.prisma.server.findUnique({
      where: { id },
      select: {
        id: true,
        slug: true,
        name: true,
        url: true,
        transport: true,
        auth: true,
        timeouts: true,
        status: true,
      },
    });
    return server ?? undefined;
  }

  /** Ids of the servers discovery keeps in sync, oldest first. */
  async listSyncedServerIds(): Promise<string[]> {
    const rows = await this.prisma.server.findMany({
      where: { status: { in: [...SYNCED_STATUSES] } },
      select: { id: true },
      orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
    });
    return rows.map((row) => row.id);
  }

  /**
   * Replaces the server's items and discovery record in one transaction and
   * records what changed since the previous successful sync (nothing on the
   * first one: that sync is the baseline). Concurrent syncs of one server, in
   * this process or another, serialise on the server's row. Undefined when the
   * server no longer exists.
   */
  async saveSnapshot(serverId: string, snapshot: SnapshotToSave): Promise<{ changes: ItemChangeRecord[] } | undefined> {
    return this.prisma.$transaction(async (tx) => {
      const locked = await tx.$queryRaw<{ id: string }[]>`
        SELECT id::text FROM servers WHERE id = ${serverId}::uuid FOR NO KEY UPDATE`;
      if (locked.length === 0) return undefined;
      const previous = await tx.serverDiscovery.findUnique({ where: { serverId }, select: { syncedAt: true } });
      const before = await tx.serverItem.findMany({
        where: { serverId },
        select: { kind: true, name: true, fingerprint: true },
      });
      const changes = previous?.syncedAt ? diffItems(before.map(asFingerprinted), snapshot.items) : [];
      await tx.serverItem.deleteMany({ where: { serverId } });
      if (snapshot.items.length > 0) {
        await tx.serverItem.createMany({
          data: snapshot.items.map((item) => ({
            serverId,
            kind: item.kind,
            name: item.name,
            gatewayName: item.gatewayName,
            title: item.title,
            description: item.description,
            definition: item.definition as Prisma.InputJsonObject,
            fingerprint: item.fingerprint,
            position: item.position,
          })),
        });
      }
      if (changes.length > 0) {
        await tx.serverItemChange.createMany({
          data: changes.map((change) => ({ serverId, ...change, detectedAt: snapshot.syncedAt })),
        });
      }
      const discovery = {
        serverInfo: jsonOrNull(snapshot.serverInfo),
        protocolVersion: snapshot.protocolVersion,
        capabilities: snapshot.capabilities as Prisma.InputJsonObject,
        instructions: snapshot.instructions,
        syncedAt: snapshot.syncedAt,
        lastError: null,
        lastErrorAt: null,
      };
      await tx.serverDiscovery.upsert({ where: { serverId }, create: { serverId, ...discovery }, update: discovery });
      return { changes };
    }, TRANSACTION);
  }

  /** Notes a failed sync; the items of the last good one stay. Nothing when the server is gone. */
  async recordFailure(serverId: string, lastError: string, at: Date): Promise<void> {
    try {
      await this.prisma.serverDiscovery.upsert({
        where: { serverId },
        create: { serverId, lastError, lastErrorAt: at },
        update: { lastError, lastErrorAt: at },
      });
    } catch (error) {
      if (isPrismaError(error, 'P2003')) return; // the server was deleted meanwhile
      throw error;
    }
  }

  async findCapabilities(serverId: string): Promise<CapabilitiesRecord | undefined> {
    const server = await this.prisma.server.findUnique({
      where: { id: serverId },
      select: {
        id: true,
        slug: true,
        name: true,
        status: true,
        discovery: true,
        items: { orderBy: [{ kind: 'asc' }, { position: 'asc' }, { name: 'asc' }] },
        itemChanges: { orderBy: [{ detectedAt: 'desc' }, { id: 'asc' }], take: RECENT_CHANGES },
      },
    });
    if (!server) return undefined;
    const { discovery, items, itemChanges, ...identity } = server;
    return {
      server: identity,
      discovery: discovery && {
        serverInfo: asDefinition(discovery.serverInfo),
        protocolVersion: discovery.protocolVersion,
        capabilities: asDefinition(discovery.capabilities),
        instructions: discovery.instructions,
        syncedAt: discovery.syncedAt,
        lastError: discovery.lastError,
        lastErrorAt: discovery.lastErrorAt,
      },
      items: items.map((item) => ({
        kind: item.kind as ItemKind,
        name: item.name,
        gatewayName: item.gatewayName,
        title: item.title,
        description: item.description,
        definition: asDefinition(item.definition) ?? {},
        fingerprint: item.fingerprint,
        position: item.position,
      })),
      changes: itemChanges.map((change) => ({
        kind: change.kind as ItemKind,
        name: change.name,
        change: change.change as ItemChangeType,
        beforeFingerprint: change.beforeFingerprint,
        afterFingerprint: change.afterFingerprint,
        detectedAt: change.detectedAt,
      })),
    };
  }

  /**
   * Items of servers that are not disabled, ordered by (gatewayName, serverId,
   * kind, name) — a total order, so keyset pages never skip or repeat a row.
   * Byte order ("C"), so the order is the same whatever the database's locale.
   */
  async search(search: ItemSearch): Promise<SearchRow[]> {
    const conditions: Prisma.Sql[] = [
      Prisma.sql`i.kind IN (${Prisma.join([...search.kinds])})`,
      Prisma.sql`s.status IN (${Prisma.join([...SYNCED_STATUSES])})`,
    ];
    if (search.server && 'id' in search.server) conditions.push(Prisma.sql`s.id = ${search.server.id}::uuid`);
    if (search.server && 'slug' in search.server) conditions.push(Prisma.sql`s.slug = ${search.server.slug}`);
    if (search.tag !== undefined) conditions.push(Prisma.sql`${search.tag} = ANY(s.tags)`);
    if (search.text !== undefined && search.text !== '') {
      const pattern = `%${escapeLike(search.text)}%`;
      conditions.push(Prisma.sql`(
        i.name ILIKE ${pattern} ESCAPE '\\'
        OR i.title ILIKE ${pattern} ESCAPE '\\'
        OR i.description ILIKE ${pattern} ESCAPE '\\'
        OR (i.definition->>'name') ILIKE ${pattern} ESCAPE '\\')`);
    }
    if (search.after) {
      const { gatewayName, serverId, kind, name } = search.after;
      conditions.push(
        Prisma.sql`(i.gateway_name COLLATE "C", i.server_id, i.kind COLLATE "C", i.name COLLATE "C")
          > (${gatewayName}::text, ${serverId}::uuid, ${kind}::text, ${name}::text)`,
      );
    }
    return this.prisma.$queryRaw<SearchRow[]>`
      SELECT i.server_id::text AS "serverId", s.slug AS "serverSlug", s.name AS "serverName",
             i.kind, i.name, i.gateway_name AS "gatewayName", i.title, i.description, i.fingerprint,
             i.definition->>'name' AS "displayName", i.definition->>'mimeType' AS "mimeType"
      FROM server_items i JOIN servers s ON s.id = i.server_id
      WHERE ${Prisma.join(conditions, ' AND ')}
      ORDER BY i.gateway_name COLLATE "C", i.server_id, i.kind COLLATE "C", i.name COLLATE "C"
      LIMIT ${search.limit}`;
  }
}

function asFingerprinted(row: { kind: string; name: string; fingerprint: string }): {
  kind: ItemKind;
  name: string;
  fingerprint: string;
} {
  return { kind: row.kind as ItemKind, name: row.name, fingerprint: row.fingerprint };
}

function asDefinition(value: Prisma.JsonValue | null): Definition | null {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? value : null;
}

function jsonOrNull(value: Definition | null): Prisma.InputJsonObject | typeof Prisma.DbNull {
  return value === null ? Prisma.DbNull : (value as Prisma.InputJsonObject);
}

function isPrismaError(error: unknown, code: string): boolean {
  return (
    typeof error === 'object' &&
    error !== null &&
    (error as { name?: unknown }).name === 'PrismaClientKnownRequestError' &&
    (error as { code?: unknown }).code === code
  );
}
