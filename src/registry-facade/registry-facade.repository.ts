import { escapeLike } from '../common/sql';
import { Injectable } from '@nestjs/common';
import { PrismaService } from '../database/prisma.service';
import { Prisma } from '../generated/prisma/client';
import type { ListPosition } from './facade-cursor';

/** How a published version looks to registry clients, after the server's current state is applied. */
export type EffectiveStatus = 'active' | 'deprecated' | 'deleted';

/** One published version of a server with what the gateway knows of the server now. */
export interface FacadeVersionRow {
  serverId: string;
  name: string;
  version: string;
  status: EffectiveStatus;
  isLatest: boolean;
  publishedAt: Date;
  updatedAt: Date;
  /** Published with the version. */
  title: string | null;
  description: string | null;
  /** The server's current slug, or the one published with the version once the server is gone. */
  slug: string | null;
  /** The server's current roles, or the ones published with the version once the server is gone. */
  allowedRoles: string[];
  /** The server's current message when it is deprecated, else the one published with the version. */
  statusMessage: string | null;
  /** The prober's status; null when the server is gone or was never probed. */
  health: string | null;
  toolCount: number;
}

export interface FacadeListFilter {
  after?: ListPosition;
  /** Rows to fetch (the service asks for one more than a page, to know whether another follows). */
  take: number;
  search?: string;
  /** A sync: every version updated after it, deleted or not shown (includeDeleted aside). */
  updatedSince?: Date;
  latestOnly: boolean;
  version?: string;
  includeDeleted: boolean;
}

interface RawRow {
  server_id: string;
  server_exists: boolean;
  name: string;
  version: string;
  status: EffectiveStatus;
  is_latest: boolean;
  published_at: Date;
  updated_at: Date;
  title: string | null;
  description: string | null;
  slug: string | null;
  allowed_roles: unknown;
  status_message: string | null;
  health: string | null;
}

/**
 * A version's status as clients see it: the server's current status, whatever
 * it was while that version was latest (the row's own status, which
 * /api/v1's history shows), except that a row marked `deleted` and every row
 * of a deleted server (its row gone) are deleted. A disabled server (or an
 * unknown status) hides every version; only a sync with `updated_since` sees
 * them, as deleted, so that a mirror drops what it copied while they showed.
 * The registry touches every version of a server whose status, message,
 * slug or roles change (server.repository.ts), so such a sync finds them.
 */
const EFFECTIVE_STATUS = Prisma.sql`
  CASE
    WHEN s.id IS NULL OR v.status = 'deleted' THEN 'deleted'
    WHEN s.status = 'active' THEN 'active'
    WHEN s.status = 'deprecated' THEN 'deprecated'
    ELSE 'deleted'
  END`;

/**
 * The same rule as plain conditions, which the planner can estimate: behind
 * a CASE it guesses that few rows pass, and then joins and sorts the whole
 * table instead of walking the (name, version) index up to the LIMIT.
 */
const SHOWN = Prisma.sql`(s.id IS NOT NULL AND v.status <> 'deleted' AND s.status IN ('active', 'deprecated'))`;
const DELETED = Prisma.sql`(s.id IS NULL OR v.status = 'deleted')`;

/**
 * Only the published fields a registry answer shows are read from `record`:
 * the upstream's URL, auth and timeouts in it never leave the database.
 */
const SELECT_VERSIONS = Prisma.sql`
  SELECT v.server_id::text AS server_id, s.id IS NOT NULL AS server_exists,
         v.name, v.version, v.is_latest, v.published_at, v.updated_at,
         ${EFFECTIVE_STATUS} AS status,
         v.record->>'title' AS title,
         v.record->>'description' AS description,
         COALESCE(s.slug, v.record->>'slug') AS slug,
         COALESCE(to_jsonb(s.allowed_roles), v.record->'allowedRoles') AS allowed_roles,
         COALESCE(CASE WHEN s.status = 'deprecated' THEN s.status_message END, v.record->>'statusMessage')
           AS status_message,
         h.status AS health
  FROM server_versions v
  LEFT JOIN servers s ON s.id = v.server_id
  LEFT JOIN server_health h ON h.server_id = s.id`;

/** Reads the version history for the official registry API; only repositories touch Prisma. */
@Injectable()
export class RegistryFacadeRepository {
  constructor(private readonly prisma: PrismaService) {}

  /**
   * A page of versions ordered by (name, version), which the unique index on
   * those columns serves, so a page reads about `take` index entries whatever
   * the size of the registry (filters aside).
   */
  async list(filter: FacadeListFilter): Promise<FacadeVersionRow[]> {
    // A sync sees every row updated since: a disabled server's as deleted (EFFECTIVE_STATUS).
    const conditions = filter.updatedSince
      ? [Prisma.sql`v.updated_at > ${filter.updatedSince}`]
      : [visibleSql(filter.includeDeleted)];
    if (filter.latestOnly) conditions.push(Prisma.sql`v.is_latest`);
    if (filter.version !== undefined) conditions.push(Prisma.sql`v.version = ${filter.version}`);
    if (filter.search !== undefined) conditions.push(nameContainsSql(filter.search));
    if (filter.after) {
      conditions.push(Prisma.sql`(v.name, v.version) > (${filter.after.name}, ${filter.after.version})`);
    }
    const rows = await this.prisma.$queryRaw<RawRow[]>`
      ${SELECT_VERSIONS}
      WHERE ${Prisma.join(conditions, ' AND ')}
      ORDER BY v.name, v.version
      LIMIT ${filter.take}`;
    return this.withToolCounts(rows);
  }

  /** Every visible version of one server, newest publication first. */
  async versionsOf(name: string, includeDeleted: boolean): Promise<FacadeVersionRow[]> {
    const rows = await this.prisma.$queryRaw<RawRow[]>`
      ${SELECT_VERSIONS}
      WHERE v.name = ${name} AND ${visibleSql(includeDeleted)}
      ORDER BY v.published_at DESC, v.version DESC`;
    return this.withToolCounts(rows);
  }

  /** One visible version of a server; `latest` names the latest one. */
  async versionOf(name: string, version: string, includeDeleted: boolean): Promise<FacadeVersionRow | undefined> {
    const which = version === 'latest' ? Prisma.sql`v.is_latest` : Prisma.sql`v.version = ${version}`;
    const rows = await this.prisma.$queryRaw<RawRow[]>`
      ${SELECT_VERSIONS}
      WHERE v.name = ${name} AND ${which} AND ${visibleSql(includeDeleted)}
      ORDER BY v.published_at DESC
      LIMIT 1`;
    const [row] = await this.withToolCounts(rows);
    return row;
  }

  /** Whether the server has any version a client may see. */
  async hasVersions(name: string, includeDeleted: boolean): Promise<boolean> {
    const [row] = await this.prisma.$queryRaw<{ found: boolean }[]>`
      SELECT EXISTS (
        SELECT 1 FROM server_versions v LEFT JOIN servers s ON s.id = v.server_id
        WHERE v.name = ${name} AND ${visibleSql(includeDeleted)}
      ) AS found`;
    return row?.found === true;
  }

  /** Tool counts of the servers on a page, in one query. */
  private async withToolCounts(rows: RawRow[]): Promise<FacadeVersionRow[]> {
    const ids = [
      ...new Set(rows.filter((row) => row.server_exists && row.status !== 'deleted').map((row) => row.server_id)),
    ];
    const counts = new Map<string, number>();
    if (ids.length > 0) {
      const tools = await this.prisma.$queryRaw<{ server_id: string; tools: number }[]>`
        SELECT server_id::text AS server_id, count(*)::int AS tools
        FROM server_items
        WHERE kind = 'tool' AND server_id = ANY(${ids}::uuid[])
        GROUP BY server_id`;
      for (const { server_id, tools: count } of tools) counts.set(server_id, count);
    }
    return rows.map((row) => ({
      serverId: row.server_id,
      name: row.name,
      version: row.version,
      status: row.status,
      isLatest: row.is_latest,
      publishedAt: row.published_at,
      updatedAt: row.updated_at,
      title: row.title,
      description: row.description,
      slug: row.slug,
      allowedRoles: Array.isArray(row.allowed_roles)
        ? row.allowed_roles.filter((role): role is string => typeof role === 'string')
        : [],
      statusMessage: row.status_message,
      // A version shown deleted (a disabled server's, in a sync) says nothing of the upstream behind it.
      health: row.server_exists && row.status !== 'deleted' ? row.health : null,
      toolCount: counts.get(row.server_id) ?? 0,
    }));
  }
}

function visibleSql(includeDeleted: boolean): Prisma.Sql {
  return includeDeleted ? Prisma.sql`(${SHOWN} OR ${DELETED})` : SHOWN;
}

/**
 * Case-insensitive substring of the name, the wildcards of LIKE taken
 * literally. Names are ASCII (server.json's pattern), so the "C" collation
 * folds their case exactly, and several times faster than a locale does.
 */
function nameContainsSql(search: string): Prisma.Sql {
  const pattern = `%${escapeLike(search)}%`;
  return Prisma.sql`(v.name COLLATE "C") ILIKE ${pattern} ESCAPE '\\'`;
}
