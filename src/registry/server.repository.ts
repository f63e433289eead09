import { Injectable } from '@nestjs/common';
import { InjectPinoLogger, PinoLogger } from 'nestjs-pino';
import type { FieldError } from '../common/domain-error';
import { escapeLike } from '../common/sql';
import { PrismaService } from '../database/prisma.service';
import { Prisma, type Server as ServerRow, type ServerVersion as ServerVersionRow } from '../generated/prisma/client';
import type { ListPosition } from './cursor';
import {
  DuplicateServerError,
  PublishedVersionError,
  type UnreadableServer,
  UnreadableServerError,
} from './registry.errors';
import {
  type ReadVersion,
  type ServerFields,
  type ServerRecord,
  sameFields,
  fieldsOf,
  toServerView,
} from './server-record';
import type { ServerRef } from './server-ref';
import { UnreadableServerLog } from './unreadable-server-log';
import { readStoredFields } from './server.schema';
import { readStoredVersion } from './stored-version';

export interface ServerListFilter {
  after?: ListPosition;
  limit: number;
  tag?: string;
  status?: ServerFields['status'];
  q?: string;
}

/** A stored server as a list or a lookup reads it: its record, or what keeps the gateway from reading it. */
export type ReadServer = ServerRecord | UnreadableServer;

export function isUnreadable(server: ReadServer): server is UnreadableServer {
  return 'problems' in server;
}

/** What a delete took away. */
export type DeletedServer = Pick<ServerRecord, 'id' | 'name' | 'slug'>;

/** What an update did: nothing (the fields were already so) or a new revision. */
export interface UpdateOutcome {
  changed: boolean;
  server: ServerRecord;
}

type Tx = Prisma.TransactionClient;

/**
 * Servers and their version history. Every write runs in one transaction
 * with the version row it implies, so history never disagrees with the server.
 */
@Injectable()
export class ServerRepository {
  /** Each unreadable row logged once, again only once it changed and is still unreadable. */
  private readonly unreadable: UnreadableServerLog;
  private readonly unreadableVersions: UnreadableServerLog;

  constructor(
    private readonly prisma: PrismaService,
    @InjectPinoLogger(ServerRepository.name) logger: PinoLogger,
  ) {
    this.unreadable = new UnreadableServerLog(
      logger,
      'a stored server cannot be read: it is left out of lists and answered 409 until an admin repairs or deletes it',
    );
    this.unreadableVersions = new UnreadableServerLog(
      logger,
      'a stored server version cannot be read: it is left out of its version list and answered 409',
    );
  }

  /** The server `ref` names; an UnreadableServerError (409) when its row cannot be read. */
  async findByRef(ref: ServerRef): Promise<ServerRecord | undefined> {
    const found = await this.readByRef(ref);
    if (found && isUnreadable(found)) throw new UnreadableServerError(found);
    return found;
  }

  /** The server `ref` names, or what keeps its row from being read: what a repair or a delete starts from. */
  async readByRef(ref: ServerRef): Promise<ReadServer | undefined> {
    const row = await this.prisma.server.findUnique({ where: whereRef(ref) });
    return row ? this.read(row) : undefined;
  }

  /** The name of the server `ref` names, without reading the rest of its row. */
  async nameByRef(ref: ServerRef): Promise<string | undefined> {
    const row = await this.prisma.server.findUnique({ where: whereRef(ref), select: { name: true } });
    return row?.name;
  }

  /** The id of the server `ref` names, without the rest of its row. */
  async idByRef(ref: ServerRef): Promise<string | undefined> {
    const row = await this.prisma.server.findUnique({ where: whereRef(ref), select: { id: true } });
    return row?.id;
  }

  /** A page of servers; a row the gateway cannot read is in it as such, for the caller to leave out or show so. */
  async list(filter: ServerListFilter): Promise<ReadServer[]> {
    const and: Prisma.ServerWhereInput[] = [];
    if (filter.tag) and.push({ tags: { has: filter.tag } });
    if (filter.status) and.push({ status: filter.status });
    if (filter.q) {
      const contains = escapeLike(filter.q);
      and.push({
        OR: ['name', 'title', 'description'].map((field) => ({ [field]: { contains, mode: 'insensitive' } })),
      });
    }
    if (filter.after) {
      const { createdAt, id } = filter.after;
      // The OR alone is no index condition; `created_at >= …` beside it lets (created_at, id) start at the cursor.
      and.push(
        { createdAt: { gte: createdAt } },
        { OR: [{ createdAt: { gt: createdAt } }, { createdAt, id: { gt: id } }] },
      );
    }
    const rows = await this.prisma.server.findMany({
      where: { AND: and },
      orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
      take: filter.limit,
    });
    return rows.map((row) => this.read(row));
  }

  /** Slugs in use that start with `prefix`, to pick a free derived one. */
  async slugsStartingWith(prefix: string): Promise<Set<string>> {
    const rows = await this.prisma.server.findMany({
      where: { slug: { startsWith: escapeLike(prefix) } },
      select: { slug: true },
    });
    return new Set(rows.map((row) => row.slug));
  }

  async create(fields: ServerFields): Promise<ServerRecord> {
    return this.writing(() =>
      this.prisma.$transaction(async (tx) => {
        const server = recordOf(await tx.server.create({ data: fields }));
        await writeVersion(tx, server);
        return server;
      }),
    );
  }

  /**
   * Applies `change` to the current fields under a row lock. `change` may
   * throw (a failed precondition); returning equal fields writes nothing.
   * A change of version to one already in the history throws
   * PublishedVersionError: a published version's record never changes.
   *
   * A row the gateway cannot read is repaired by a change that `replaces`
   * every field it cannot read (a PUT, a PATCH giving each of them); any
   * other change of it throws UnreadableServerError, as a read does.
   */
  async update(
    id: string,
    change: (current: ServerRecord) => ServerFields,
    replaces: readonly (keyof ServerFields)[] = [],
  ): Promise<UpdateOutcome | undefined> {
    return this.writing(() =>
      this.prisma.$transaction(async (tx) => {
        const stored = await lockedRow(tx, id);
        if (!stored) return undefined;
        const { record: current, problems } = parseRow(stored);
        const repairing = problems.length > 0;
        if (repairing && !problems.every(({ field }) => replaces.some((key) => field.split('.')[0] === key))) {
          throw new UnreadableServerError(unreadableOf(stored, problems));
        }
        // Repairing, `current` holds the raw value of each field it cannot read, which the change replaces unread.
        const next = change(current);
        if (!repairing && sameFields(next, fieldsOf(current))) return { changed: false, server: current };
        if (next.version !== current.version && (await publishedVersion(tx, current.name, next.version))) {
          throw new PublishedVersionError(next.version);
        }
        const row = await tx.server.update({
          where: { id },
          data: { ...next, revision: { increment: 1 } },
        });
        const server = recordOf(row);
        await writeVersion(tx, server);
        if (showsDifferently(current, server)) await touchVersions(tx, id, new Date());
        return { changed: true, server };
      }),
    );
  }

  /**
   * Deletes the server; its latest version stays, marked `deleted`. Every
   * version of it reads as deleted from now on, so every one is touched.
   * A row the gateway cannot read is deleted too: `check` sees its id and
   * revision only.
   */
  async delete(
    id: string,
    check: (current: Pick<ServerRecord, 'id' | 'revision'>) => void,
  ): Promise<DeletedServer | undefined> {
    return this.prisma.$transaction(async (tx) => {
      const current = await lockedRow(tx, id);
      if (!current) return undefined;
      check(current);
      await tx.server.delete({ where: { id } });
      await tx.serverVersion.updateMany({
        where: { name: current.name, isLatest: true },
        data: { status: 'deleted' },
      });
      await touchVersions(tx, id, new Date());
      return { id: current.id, name: current.name, slug: current.slug };
    });
  }

  /** The name a server id had, also after the server was deleted. */
  async nameOfServerId(id: string): Promise<string | undefined> {
    const row = await this.prisma.serverVersion.findFirst({
      where: { serverId: id },
      orderBy: { updatedAt: 'desc' },
      select: { name: true },
    });
    return row?.name;
  }

  /** Every version of the name's history; one the gateway cannot read is in it as such, for the caller to name. */
  async versionsOf(name: string): Promise<ReadVersion[]> {
    const rows = await this.prisma.serverVersion.findMany({
      where: { name },
      orderBy: [{ isLatest: 'desc' }, { publishedAt: 'desc' }, { version: 'desc' }],
    });
    return rows.map((row) => this.readVersion(row));
  }

  async versionOf(name: string, version: string): Promise<ReadVersion | undefined> {
    const row = await this.prisma.serverVersion.findUnique({ where: { name_version: { name, version } } });
    return row ? this.readVersion(row) : undefined;
  }

  /** The row's record, or what keeps it from being read, logged once per row and revision with the fields at fault. */
  private read(row: ServerRow): ReadServer {
    const { record, problems } = parseRow(row);
    if (problems.length === 0) return record;
    this.unreadable.report(row, problems);
    return unreadableOf(row, problems);
  }

  /** The version row's record, or what keeps it from being read, logged once per row and write of it. */
  private readVersion(row: ServerVersionRow): ReadVersion {
    const read = readStoredVersion(row);
    if ('problems' in read) {
      this.unreadableVersions.reportVersion(row, read.problems);
      return { name: row.name, version: row.version, problems: read.problems };
    }
    return {
      serverId: row.serverId,
      name: row.name,
      version: row.version,
      record: read.record,
      status: read.status,
      isLatest: row.isLatest,
      publishedAt: row.publishedAt,
      updatedAt: row.updatedAt,
    };
  }

  /** Turns a unique violation into a DuplicateServerError naming the field. */
  private async writing<T>(write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } catch (error) {
      const field = duplicateFieldOf(error);
      if (field) throw new DuplicateServerError(field);
      throw error;
    }
  }
}

async function lockedRow(tx: Tx, id: string): Promise<ServerRow | undefined> {
  await tx.$queryRaw`SELECT id FROM servers WHERE id = ${id}::uuid FOR UPDATE`;
  return (await tx.server.findUnique({ where: { id } })) ?? undefined;
}

async function publishedVersion(tx: Tx, name: string, version: string): Promise<boolean> {
  const row = await tx.serverVersion.findUnique({ where: { name_version: { name, version } }, select: { id: true } });
  return row !== null;
}

/**
 * Records the server as the latest version of its name: a new version
 * demotes the previous latest row; the same version rewrites its row (an
 * update never moves to a version already in the history). A name
 * re-registered after deletion takes its old (name, version) row over.
 */
async function writeVersion(tx: Tx, server: ServerRecord): Promise<void> {
  const record = toServerView(server) as unknown as Prisma.InputJsonValue;
  await tx.serverVersion.updateMany({
    where: { name: server.name, isLatest: true, NOT: { version: server.version } },
    data: { isLatest: false },
  });
  await tx.serverVersion.upsert({
    where: { name_version: { name: server.name, version: server.version } },
    create: {
      serverId: server.id,
      name: server.name,
      version: server.version,
      record,
      status: server.status,
      isLatest: true,
    },
    update: { serverId: server.id, record, status: server.status, isLatest: true },
  });
}

/**
 * Whether the official registry API (registry-facade.repository.ts) shows
 * the server differently on its versions: it takes the status, the message
 * of a deprecation, the slug (the remote's URL) and the roles from the
 * server as it is now, on every version, not from the version's record.
 */
function showsDifferently(before: ServerRecord, after: ServerRecord): boolean {
  return (
    before.status !== after.status ||
    before.statusMessage !== after.statusMessage ||
    before.slug !== after.slug ||
    before.allowedRoles.length !== after.allowedRoles.length ||
    before.allowedRoles.some((role, i) => role !== after.allowedRoles[i])
  );
}

/**
 * Marks every version of a server as updated at `now`, so that a registry
 * client syncing with `updated_since` learns of a change shown on versions
 * other than the latest (the latest one's row is rewritten anyway).
 */
async function touchVersions(tx: Tx, serverId: string, now: Date): Promise<void> {
  await tx.serverVersion.updateMany({ where: { serverId }, data: { updatedAt: now } });
}

function whereRef(ref: ServerRef): Prisma.ServerWhereUniqueInput {
  return ref.kind === 'id' ? { id: ref.id } : ref.kind === 'slug' ? { slug: ref.slug } : { name: ref.name };
}

/** The row's record; an UnreadableServerError when it cannot be read (a row the gateway has just written can). */
function recordOf(row: ServerRow): ServerRecord {
  const { record, problems } = parseRow(row);
  if (problems.length > 0) throw new UnreadableServerError(unreadableOf(row, problems));
  return record;
}

/**
 * The row read as a record, and each of its fields that is not what its schema allows (readStoredFields, as every
 * reader of the table decides). While there are problems, the record holds such a field's raw value and is no record
 * to use.
 */
function parseRow(row: ServerRow): { record: ServerRecord; problems: FieldError[] } {
  const { fields, problems } = readStoredFields(row);
  const record: ServerRecord = {
    id: row.id,
    name: row.name,
    slug: row.slug,
    title: row.title,
    description: row.description,
    version: row.version,
    url: fields.url,
    transport: fields.transport,
    auth: fields.auth,
    tags: row.tags,
    status: fields.status,
    statusMessage: row.statusMessage,
    allowedRoles: row.allowedRoles,
    timeouts: fields.timeouts,
    toolRules: fields.toolRules,
    revision: row.revision,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
  return { record, problems };
}

function unreadableOf(row: ServerRow, problems: FieldError[]): UnreadableServer {
  const { id, name, slug, url, revision, createdAt } = row;
  return { id, name, slug, url, revision, createdAt, problems };
}

/** The unique field a Prisma P2002 names, across the pg and PGlite adapters. */
function duplicateFieldOf(error: unknown): 'name' | 'slug' | 'version' | undefined {
  if (!(error instanceof Prisma.PrismaClientKnownRequestError) || error.code !== 'P2002') return undefined;
  const text = JSON.stringify(error.meta ?? {}) + error.message;
  if (/servers_slug_key|"slug"/.test(text)) return 'slug';
  if (/servers_name_key|"name"\]|servers_name/.test(text)) return 'name';
  if (/server_versions_name_version_key/.test(text)) return 'version';
  return undefined;
}
