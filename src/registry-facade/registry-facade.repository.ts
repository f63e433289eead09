import { escapeLike } from '../common/sql';
import { Injectable } from '@nestjs/common';
import { InjectPinoLogger, PinoLogger } from 'nestjs-pino';
import { PrismaService } from '../database/prisma.service';
import { Prisma } from '../generated/prisma/client';
import { isUnreadableVersion, readPublishedVersion, type UnreadableVersion } from '../registry/stored-version';
import { UnreadableServerLog } from '../registry/unreadable-server-log';
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

/** A version of the history as the official registry API reads it: the row, or what keeps it from being read. */
export type FacadeVersionRead = FacadeVersionRow | UnreadableVersion;

interface RawRow {
  id: string;
  server_id: string;
  server_exists: boolean;
  name: string;
  version: string;
  /** As stored; what the row says of the version's status (`deleted` aside) is the server's (EFFECTIVE_STATUS). */
  stored_status: string;
  status: EffectiveStatus;
  is_latest: boolean;
  published_at: Date;
  updated_at: Date;
  /** The record's published fields (the record itself when it is no object), unchecked. */
  published: unknown;
  server_slug: string | null;
  server_roles: unknown;
  server_status_message: string | null;
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
 * the upstream's URL, auth and timeouts in it never leave the database. A
 * record that is no object is read whole, for the problem to name it.
 */
const SELECT_VERSIONS = Prisma.sql`
  SELECT v.id::text AS id, v.server_id::text AS server_id, s.id IS NOT NULL AS server_exists,
         v.name, v.version, v.is_latest, v.published_at, v.updated_at,
         v.status AS stored_status, ${EFFECTIVE_STATUS} AS status,
         CASE WHEN jsonb_typeof(v.record) = 'object' THEN jsonb_build_object(
           'title', v.record->'title',
           'description', v.record->'description',
           'slug', v.record->'slug',
           'allowedRoles', v.record->'allowedRoles',
           'statusMessage', v.record->'statusMessage'
         ) ELSE v.record END AS published,
         s.slug AS server_slug,
         to_jsonb(s.allowed_roles) AS server_roles,
         CASE WHEN s.status = 'deprecated' THEN s.status_message END AS server_status_message,
         h.status AS health
  FROM server_versions v
  LEFT JOIN servers s ON s.id = v.server_id
  LEFT JOIN server_health h ON h.server_id = s.id`;

/** Reads the version history for the official registry API; only repositories touch Prisma. */
@Injectable()
export class RegistryFacadeRepository {
  /** Each version it cannot read logged once, again only once it is written again and still unreadable. */
  private readonly unreadable: UnreadableServerLog;

  constructor(
    private readonly prisma: PrismaService,
    @InjectPinoLogger(RegistryFacadeRepository.name) logger: PinoLogger,
  ) {
    this.unreadable = new UnreadableServerLog(
      logger,
      'a stored server version cannot be read: the official registry API leaves it out of lists and answers it 409',
    );
  }

  /**
   * A page of versions ordered by (name, version), which the unique index on
   * those columns serves, so a page reads about `take` index entries whatever
   * the size of the registry (filters aside).
   */
  async list(filter: FacadeListFilter): Promise<FacadeVersionRead[]> {
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
  async versionsOf(name: string, includeDeleted: boolean): Promise<FacadeVersionRead[]> {
    const rows = await this.prisma.$queryRaw<RawRow[]>`
      ${SELECT_VERSIONS}
      WHERE v.name = ${name} AND ${visibleSql(includeDeleted)}
      ORDER BY v.published_at DESC, v.version DESC`;
    return this.withToolCounts(rows);
  }

  /** One visible version of a server; `latest` names the latest one. */
  async versionOf(name: string, version: string, includeDeleted: boolean): Promise<FacadeVersionRead | undefined> {
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

  /** The rows read (readPublishedVersion), with the tool counts of their servers, in one query. */
  private async withToolCounts(rows: RawRow[]): Promise<FacadeVersionRead[]> {
    const read = rows.map((row) => this.read(row));
    const ids = [
      ...new Set(
        read
          .filter((row): row is Counted => !isUnreadableVersion(row) && row.serverExists && row.status !== 'deleted')
          .map((row) => row.serverId),
      ),
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
    return read.map((row) => {
      if (isUnreadableVersion(row)) return row;
      const { serverExists: _serverExists, ...shown } = row;
      return { ...shown, toolCount: counts.get(row.serverId) ?? 0 };
    });
  }

  /** The row as the API shows it (its tool count aside), or what keeps it from being read, logged once. */
  private read(row: RawRow): Counted | UnreadableVersion {
    const read = readPublishedVersion({ status: row.stored_status, published: row.published });
    if ('problems' in read) {
      this.unreadable.reportVersion(
        { id: row.id, name: row.name, version: row.version, updatedAt: row.updated_at },
        read.problems,
      );
      return { name: row.name, version: row.version, problems: read.problems };
    }
    const { published } = read;
    return {
      serverId: row.server_id,
      serverExists: row.server_exists,
      name: row.name,
      version: row.version,
      status: row.status,
      isLatest: row.is_latest,
      publishedAt: row.published_at,
      updatedAt: row.updated_at,
      title: published.title,
      description: published.description,
      // The server's current slug and roles, or the ones published with the version once the server is gone.
      slug: row.server_exists ? row.server_slug : published.slug,
      allowedRoles: Array.isArray(row.server_roles)
        ? row.server_roles.filter((role): role is string => typeof role === 'string')
        : published.allowedRoles,
      statusMessage: row.server_status_message ?? published.statusMessage,
      // A version shown deleted (a disabled server's, in a sync) says nothing of the upstream behind it.
      health: row.server_exists && row.status !== 'deleted' ? row.health : null,
    };
  }
}

/** A row read, before its server's tools are counted. */
type Counted = Omit<FacadeVersionRow, 'toolCount'> & { serverExists: boolean };

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
