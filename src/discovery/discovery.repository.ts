import { escapeLike } from '../common/sql';
import { Injectable } from '@nestjs/common';
import { Prisma } from '../generated/prisma/client';
import type { UnreadableServer } from '../registry/registry.errors';
import { readStoredFields, serverStatusSchema } from '../registry/server.schema';
import { PrismaService } from '../database/prisma.service';
import { canonicalJson, type ItemKind } from './fingerprint';
import { diffItems, type ItemChangeRecord, type ItemChangeType, type ItemRecord } from './item-records';
import type { Definition } from './upstream-catalog';

/** Server statuses discovery syncs and search shows; `disabled` servers are neither. */
export const SYNCED_STATUSES = ['active', 'deprecated'] as const;
/** The other statuses: a search leaves their servers out by id (`searchMatches`). */
const HIDDEN_STATUSES = serverStatusSchema.options.filter(
  (status) => !(SYNCED_STATUSES as readonly string[]).includes(status),
);

/** The parts of a server row a sync needs; its JSON fields are still unchecked (readStoredFields). */
export interface ServerForSync {
  id: string;
  slug: string;
  name: string;
  url: string;
  transport: string;
  auth: unknown;
  timeouts: unknown;
  toolRules: unknown;
  status: string;
  revision: number;
  createdAt: Date;
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
        toolRules: true,
        status: true,
        revision: true,
        createdAt: true,
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
   *
   * `changed` says whether what the gateway offers of this server differs from
   * before: the first sync, any difference in the stored items (definitions
   * verbatim, not only their fingerprints: `/mcp` serves them whole, `_meta`
   * included) or in the capabilities. Only then does `changed_at` move.
   */
  async saveSnapshot(
    serverId: string,
    snapshot: SnapshotToSave,
  ): Promise<{ changes: ItemChangeRecord[]; changed: boolean } | undefined> {
    return this.prisma.$transaction(async (tx) => {
      const locked = await tx.$queryRaw<{ id: string }[]>`
        SELECT id::text FROM servers WHERE id = ${serverId}::uuid FOR NO KEY UPDATE`;
      if (locked.length === 0) return undefined;
      const previous = await tx.serverDiscovery.findUnique({
        where: { serverId },
        select: { syncedAt: true, changedAt: true, capabilities: true },
      });
      const before = await tx.serverItem.findMany({
        where: { serverId },
        select: { kind: true, name: true, gatewayName: true, definition: true, fingerprint: true, position: true },
      });
      const changes = previous?.syncedAt ? diffItems(before.map(asFingerprinted), snapshot.items) : [];
      const changed =
        !previous?.syncedAt ||
        !previous.changedAt ||
        canonicalJson(previous.capabilities) !== canonicalJson(snapshot.capabilities) ||
        !sameItems(before, snapshot.items);
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
        ...(changed ? { changedAt: snapshot.syncedAt } : {}),
        lastError: null,
        lastErrorAt: null,
      };
      await tx.serverDiscovery.upsert({ where: { serverId }, create: { serverId, ...discovery }, update: discovery });
      return { changes, changed };
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

  /**
   * What discovery keeps of the server, or what keeps its row from being read (readStoredFields, as the registry
   * judges it): the items of its last good sync are not answered for a server the gateway cannot read.
   */
  async findCapabilities(serverId: string): Promise<CapabilitiesRecord | { unreadable: UnreadableServer } | undefined> {
    // Prisma reads the server, its items and its changes in separate queries: under one snapshot, or a sync
    // committing between them would show its new items beside the changes from before it.
    const server = await this.prisma.$transaction(
      (tx) =>
        tx.server.findUnique({
          where: { id: serverId },
          select: {
            id: true,
            slug: true,
            name: true,
            url: true,
            transport: true,
            auth: true,
            status: true,
            timeouts: true,
            toolRules: true,
            revision: true,
            createdAt: true,
            discovery: true,
            items: { orderBy: [{ kind: 'asc' }, { position: 'asc' }, { name: 'asc' }], omit: { searchText: true } },
            itemChanges: { orderBy: [{ detectedAt: 'desc' }, { id: 'asc' }], take: RECENT_CHANGES },
          },
        }),
      { ...TRANSACTION, isolationLevel: Prisma.TransactionIsolationLevel.RepeatableRead },
    );
    if (!server) return undefined;
    const { discovery, items, itemChanges, id, slug, name, status, url, revision, createdAt } = server;
    const { problems } = readStoredFields(server);
    if (problems.length > 0) return { unreadable: { id, name, slug, url, revision, createdAt, problems } };
    return {
      server: { id, slug, name, status },
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
   *
   * Text matches are either dense (a common word: the first rows in page order
   * hold a page of them) or sparse (a rare word, or one whose matches all sort
   * late), and PostgreSQL's estimate of an `ILIKE '%q%'` cannot tell which:
   * walking the page order and filtering is instant for the first kind and
   * reads the whole table for the second. So a search of one kind across
   * servers first reads a bounded window of rows in page order
   * (server_items_search_order_idx); only when that window holds less than a
   * page does it collect every match (through the trigram index when q has
   * three characters or more), sort them, and take a page.
   */
  async search(search: ItemSearch): Promise<SearchRow[]> {
    const [kind, ...otherKinds] = search.kinds;
    if (kind !== undefined && otherKinds.length === 0 && search.server === undefined) {
      const windowed = await this.searchWindow(kind, search);
      if (windowed.length >= search.limit) return windowed;
      if (hasText(search)) return this.searchMatches(search);
    }
    // One server (its primary key finds its few rows), resources and templates together, or no text at all.
    return this.searchDirect(search);
  }

  /** The matches among the first searchWindowFor(limit) rows of `kind` in page order (after the cursor). */
  private searchWindow(kind: ItemKind, search: ItemSearch): Promise<SearchRow[]> {
    const windowConditions = [Prisma.sql`i.kind = ${kind}`];
    if (search.after) windowConditions.push(afterCondition(search.after, [kind]));
    return this.prisma.$queryRaw<SearchRow[]>`
      SELECT ${SEARCH_COLUMNS}
      FROM (
        SELECT ${ITEM_COLUMNS}, i.search_text FROM server_items i
        WHERE ${Prisma.join(windowConditions, ' AND ')}
        ORDER BY ${orderBy([kind])}
        LIMIT ${searchWindowFor(search.limit)}
      ) i JOIN servers s ON s.id = i.server_id
      WHERE ${Prisma.join([...textConditions(search, Prisma.sql`i.display_name`), ...serverConditions(search)], ' AND ')}
      ORDER BY ${orderBy([kind])}
      LIMIT ${search.limit}`;
  }

  /**
   * Every text match, then the page of them. `OFFSET 0` fences the innermost
   * subquery: planned on its own, for all its rows, it collects the matches (a
   * trigram bitmap scan) instead of walking the page order in the hope of an
   * early page. The servers that do not qualify are left out there, by id (a
   * search of one server never comes here), so that the sort keeps only a page
   * as it reads the matches (a top-N sort: about 1.5 ms less than sorting the 5,000
   * matches of `npm run bench:registry`'s clustered search). The matches carry
   * only their keys through it; the page's rows are read again by primary key.
   */
  private searchMatches(search: ItemSearch): Promise<SearchRow[]> {
    const conditions = [
      Prisma.sql`i.kind IN (${Prisma.join([...search.kinds])})`,
      ...textConditions(search, Prisma.sql`(i.definition->>'name')`),
      Prisma.sql`i.server_id NOT IN (SELECT s.id FROM servers s WHERE s.status IN (${Prisma.join(HIDDEN_STATUSES)}))`,
    ];
    if (search.tag !== undefined) {
      conditions.push(Prisma.sql`i.server_id IN (SELECT s.id FROM servers s WHERE ${search.tag} = ANY(s.tags))`);
    }
    if (search.after) conditions.push(afterCondition(search.after, search.kinds));
    return this.prisma.$queryRaw<SearchRow[]>`
      SELECT ${SEARCH_COLUMNS}
      FROM (
        SELECT * FROM (
          SELECT i.server_id, i.kind, i.name, i.gateway_name FROM server_items i
          WHERE ${Prisma.join(conditions, ' AND ')}
          OFFSET 0
        ) i
        ORDER BY ${orderBy(search.kinds)}
        LIMIT ${search.limit}
      ) hit
      JOIN servers s ON s.id = hit.server_id
      JOIN (SELECT ${ITEM_COLUMNS} FROM server_items i) i
        ON i.server_id = hit.server_id AND i.kind = hit.kind AND i.name = hit.name
      ORDER BY ${orderBy(search.kinds, 'hit')}`;
  }

  /** One query, planned as PostgreSQL sees fit. */
  private searchDirect(search: ItemSearch): Promise<SearchRow[]> {
    const conditions = [
      Prisma.sql`i.kind IN (${Prisma.join([...search.kinds])})`,
      ...textConditions(search, Prisma.sql`i.display_name`),
      ...serverConditions(search),
    ];
    if (search.after) conditions.push(afterCondition(search.after, search.kinds));
    return this.prisma.$queryRaw<SearchRow[]>`
      SELECT ${SEARCH_COLUMNS}
      FROM (SELECT ${ITEM_COLUMNS}, i.search_text FROM server_items i) i JOIN servers s ON s.id = i.server_id
      WHERE ${Prisma.join(conditions, ' AND ')}
      ORDER BY ${orderBy(search.kinds)}
      LIMIT ${search.limit}`;
  }
}

/**
 * Rows of one kind a search reads in page order before it collects every
 * match instead: 20 for each row asked for, so the window holds a page for any
 * q that matches one row in 20 or more. Reading 2,000 (a page of 100) costs
 * about two milliseconds.
 */
export function searchWindowFor(limit: number): number {
  return limit * 20;
}

/** What a search reads of an item: not the whole definition, which would make sorting many matches spill to disk. */
const ITEM_COLUMNS = Prisma.sql`i.server_id, i.kind, i.name, i.gateway_name, i.title, i.description, i.fingerprint,
  i.definition->>'name' AS display_name, i.definition->>'mimeType' AS mime_type`;

const SEARCH_COLUMNS = Prisma.sql`i.server_id::text AS "serverId", s.slug AS "serverSlug", s.name AS "serverName",
  i.kind, i.name, i.gateway_name AS "gatewayName", i.title, i.description, i.fingerprint,
  i.display_name AS "displayName", i.mime_type AS "mimeType"`;

function hasText(search: ItemSearch): boolean {
  return search.text !== undefined && search.text !== '';
}

/** What separates name, title and description in `server_items.search_text` (its migration says why). */
const SEARCH_TEXT_SEPARATOR = '\n';

/**
 * A case-insensitive substring of the name (or URI), title or description, or
 * of a resource's own name (`displayName`, its `definition.name`); a tool's or
 * prompt's `definition.name` is its name, already tested.
 *
 * The first three are tested at once on `search_text`, their lower-cased
 * concatenation: `lower(x) LIKE lower(p)` is how PostgreSQL answers `x ILIKE p`
 * in a multibyte database, with one lower() per row instead of three. A text
 * holding the separator could match across two fields there, so it is tested
 * on each field instead (the routes refuse control characters in q anyway).
 */
function textConditions(search: ItemSearch, displayName: Prisma.Sql): Prisma.Sql[] {
  if (!hasText(search)) return [];
  const text = search.text ?? '';
  const pattern = `%${escapeLike(text)}%`;
  const fields = text.includes(SEARCH_TEXT_SEPARATOR)
    ? Prisma.sql`i.name ILIKE ${pattern} ESCAPE '\\'
      OR i.title ILIKE ${pattern} ESCAPE '\\'
      OR i.description ILIKE ${pattern} ESCAPE '\\'`
    : Prisma.sql`i.search_text LIKE lower(${pattern}) ESCAPE '\\'`;
  const resourceName = search.kinds.some((kind) => kind === 'resource' || kind === 'resource_template')
    ? Prisma.sql`OR (i.kind IN ('resource', 'resource_template') AND ${displayName} ILIKE ${pattern} ESCAPE '\\')`
    : Prisma.empty;
  return [Prisma.sql`(${fields} ${resourceName})`];
}

function serverConditions(search: ItemSearch): Prisma.Sql[] {
  const conditions = [Prisma.sql`s.status IN (${Prisma.join([...SYNCED_STATUSES])})`];
  if (search.server && 'id' in search.server) conditions.push(Prisma.sql`s.id = ${search.server.id}::uuid`);
  if (search.server && 'slug' in search.server) conditions.push(Prisma.sql`s.slug = ${search.server.slug}`);
  if (search.tag !== undefined) conditions.push(Prisma.sql`${search.tag} = ANY(s.tags)`);
  return conditions;
}

/**
 * The page order, in `table`'s columns. With one kind, the kind is the same on
 * every row and is left out, so that the order is server_items_search_order_idx's
 * own (`kind COLLATE "C"` is not the column the equality on kind fixes, and the
 * planner would sort).
 */
function orderBy(kinds: readonly ItemKind[], table: 'i' | 'hit' = 'i'): Prisma.Sql {
  const t = Prisma.raw(table);
  return kinds.length === 1
    ? Prisma.sql`${t}.gateway_name COLLATE "C", ${t}.server_id, ${t}.name COLLATE "C"`
    : Prisma.sql`${t}.gateway_name COLLATE "C", ${t}.server_id, ${t}.kind COLLATE "C", ${t}.name COLLATE "C"`;
}

/**
 * Rows after the cursor's, in page order; for one kind (the cursor's, as
 * always with cursors this API issued), in the index's columns so that the
 * index scan starts there.
 */
function afterCondition(after: SearchPosition, kinds: readonly ItemKind[]): Prisma.Sql {
  const { gatewayName, serverId, kind, name } = after;
  if (kinds.length === 1 && kinds[0] === kind) {
    return Prisma.sql`(i.gateway_name COLLATE "C", i.server_id, i.name COLLATE "C")
      > (${gatewayName}::text, ${serverId}::uuid, ${name}::text)`;
  }
  return Prisma.sql`(i.gateway_name COLLATE "C", i.server_id, i.kind COLLATE "C", i.name COLLATE "C")
    > (${gatewayName}::text, ${serverId}::uuid, ${kind}::text, ${name}::text)`;
}

/** Whether the stored rows are the ones a sync is about to write, in any order. */
function sameItems(
  stored: readonly {
    kind: string;
    name: string;
    gatewayName: string;
    definition: Prisma.JsonValue;
    position: number;
  }[],
  next: readonly ItemRecord[],
): boolean {
  if (stored.length !== next.length) return false;
  const keyOf = (item: { kind: string; name: string }): string => `${item.kind}\u0000${item.name}`;
  const byKey = new Map(stored.map((item) => [keyOf(item), item]));
  return next.every((item) => {
    const old = byKey.get(keyOf(item));
    return (
      old !== undefined &&
      old.gatewayName === item.gatewayName &&
      old.position === item.position &&
      canonicalJson(old.definition) === canonicalJson(item.definition)
    );
  });
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
