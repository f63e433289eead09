import { Injectable } from '@nestjs/common';
import type { z } from 'zod';
import { UrlGuard } from '../upstream/url-guard';
import { decodeCursor, encodeCursor, type ListPosition } from './cursor';
import { etagOf, ifMatchHolds } from './etag';
import { DuplicateServerError, PublishedVersionError, RegistryErrors, UnreadableVersionError } from './registry.errors';
import { RegistryEvents } from './registry-events';
import {
  fieldsOf,
  type ServerFields,
  type ServerRecord,
  type ServerVersionRecord,
  toServerView,
  toVersionDetail,
  toVersionSummary,
} from './server-record';
import type { VersionDetail, VersionSummary, UnreadableVersionView } from './server-version.dto';
import { parseServerRef } from './server-ref';
import { isUnreadableVersion } from './stored-version';
import { isUnreadable, type ReadServer, ServerRepository } from './server.repository';
import {
  type ServerInput,
  type ServerPatch,
  type ServerView,
  type UnreadableServerView,
  serverVersionSchema,
  listServersQuerySchema,
} from './server.dto';
import { deriveSlug, firstFreeSlug } from './slug';

const DERIVED_SLUG_ATTEMPTS = 5;

export type ListServersQuery = z.output<typeof listServersQuerySchema>;

export interface ServerPage {
  servers: ServerView[];
  nextCursor: string | null;
  /** The page's servers whose rows cannot be read, left out of `servers`; only when there are some. */
  unreadable?: UnreadableServerView[];
}

export interface WriteResult {
  server: ServerView;
  /** False when the write asked for what was already stored: no new revision, no event. */
  changed: boolean;
}

/** Computes a server's next fields from its current ones (under a row lock); may throw a DomainError. */
export type ServerChange = (current: ServerRecord) => ServerFields;

/** Registration of upstream servers: validation beyond shape, URL policy, preconditions, history, events. */
@Injectable()
export class RegistryService {
  constructor(
    private readonly servers: ServerRepository,
    private readonly urlGuard: UrlGuard,
    private readonly events: RegistryEvents,
  ) {}

  async get(ref: string): Promise<ServerView> {
    return toServerView(await this.resolve(ref));
  }

  /**
   * The id of the server `ref` (id, slug or URL-decoded name) names, for the routes of other features that take a
   * server `{ref}` as `/servers/{ref}` does: 400 for a ref that cannot name a server, 404 for a slug or name that names
   * none. An id is given back as it is (lowercased), unlooked-up: the caller reads the server by it and answers
   * `RegistryErrors.notFound(ref)` when there is none.
   */
  async idOf(ref: string): Promise<string> {
    const parsed = parseServerRef(ref);
    if (!parsed) throw RegistryErrors.badRef();
    if (parsed.kind === 'id') return parsed.id;
    const id = await this.servers.idByRef(parsed);
    if (!id) throw RegistryErrors.notFound(ref);
    return id;
  }

  async findByName(name: string): Promise<ServerRecord | undefined> {
    return this.servers.findByRef({ kind: 'name', name });
  }

  async list(query: ListServersQuery): Promise<ServerPage> {
    let after: ListPosition | undefined;
    if (query.cursor !== undefined) {
      after = decodeCursor(query.cursor);
      if (!after) throw RegistryErrors.badCursor();
    }
    const { limit } = query;
    const rows = await this.servers.list({
      after,
      limit: limit + 1,
      tag: query.tag,
      status: query.status,
      q: query.q || undefined,
    });
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    // A row the gateway cannot read is left out and named apart (the repository logged it); the cursor moves past it.
    const unreadable = page.filter(isUnreadable).map(({ id, name, slug, problems }) => ({ id, name, slug, problems }));
    return {
      servers: page.filter((row): row is ServerRecord => !isUnreadable(row)).map(toServerView),
      nextCursor: rows.length > limit && last ? encodeCursor(last) : null,
      ...(unreadable.length > 0 ? { unreadable } : {}),
    };
  }

  async create(input: ServerInput): Promise<ServerView> {
    await this.checkUrl(input.url);
    for (let attempt = 1; ; attempt++) {
      const slug = input.slug ?? (await this.freeSlugFor(input.name));
      try {
        const server = await this.servers.create(fieldsFromInput(input, slug));
        this.events.emit({ type: 'created', serverId: server.id, slug: server.slug });
        return toServerView(server);
      } catch (error) {
        if (!(error instanceof DuplicateServerError)) throw error;
        // A derived slug taken in the meantime by a concurrent registration: derive again.
        if (error.field === 'slug' && input.slug === undefined && attempt < DERIVED_SLUG_ATTEMPTS) continue;
        throw RegistryErrors.duplicate(error.field, error.field === 'slug' ? slug : input.name);
      }
    }
  }

  /** PUT: every writable field from `input`; an omitted slug keeps the current one. Repairs an unreadable row. */
  async replace(ref: string, input: ServerInput, ifMatch?: string): Promise<ServerView> {
    const fields = fieldsFromInput(input, '');
    const replaces = (Object.keys(fields) as (keyof ServerFields)[]).filter((key) => key !== 'slug');
    const result = await this.update(
      ref,
      input.url,
      ifMatch,
      (current) => {
        if (input.name !== current.name) throw RegistryErrors.nameChange();
        return { ...fields, slug: input.slug ?? current.slug };
      },
      replaces,
    );
    return result.server;
  }

  /** PATCH: the fields present replace the stored ones; it repairs an unreadable row when it gives each bad field. */
  async patch(ref: string, patch: ServerPatch, ifMatch?: string): Promise<ServerView> {
    const given = Object.entries(patch).filter(([key, value]) => value !== undefined && key !== 'name');
    const result = await this.update(
      ref,
      patch.url,
      ifMatch,
      (current) => {
        if (patch.name !== undefined && patch.name !== current.name) throw RegistryErrors.nameChange();
        const next: ServerFields = { ...fieldsOf(current) };
        for (const [key, value] of given) Object.assign(next, { [key]: value });
        return next;
      },
      given.map(([key]) => key as keyof ServerFields),
    );
    return result.server;
  }

  /**
   * The one way a stored server changes. `url` is the URL the change writes
   * (checked against the URL policy when it differs from the stored one).
   * `replaces` names the fields the change sets whatever they were: a row
   * the gateway cannot read is changed only when they include each of its
   * unreadable fields.
   */
  async update(
    ref: string,
    url: string | undefined,
    ifMatch: string | undefined,
    change: ServerChange,
    replaces: readonly (keyof ServerFields)[] = [],
  ): Promise<WriteResult> {
    const found = await this.resolveForWrite(ref);
    if (url !== undefined && url !== found.url) await this.checkUrl(url);
    let outcome;
    try {
      outcome = await this.servers.update(
        found.id,
        (current) => {
          if (!ifMatchHolds(ifMatch, etagOf(current.id, current.revision))) throw RegistryErrors.preconditionFailed();
          return change(current);
        },
        replaces,
      );
    } catch (error) {
      if (error instanceof DuplicateServerError) throw RegistryErrors.duplicate(error.field);
      if (error instanceof PublishedVersionError) throw RegistryErrors.versionPublished(error.version);
      throw error;
    }
    if (!outcome) throw RegistryErrors.notFound(ref);
    const { server, changed } = outcome;
    if (changed) this.events.emit({ type: 'updated', serverId: server.id, slug: server.slug });
    return { server: toServerView(server), changed };
  }

  async remove(ref: string, ifMatch?: string): Promise<void> {
    const found = await this.resolveForWrite(ref);
    const deleted = await this.servers.delete(found.id, (current) => {
      if (!ifMatchHolds(ifMatch, etagOf(current.id, current.revision))) throw RegistryErrors.preconditionFailed();
    });
    if (!deleted) throw RegistryErrors.notFound(ref);
    this.events.emit({ type: 'deleted', serverId: deleted.id, slug: deleted.slug });
  }

  /** A version the gateway cannot read is left out of `versions` and named in `unreadable` (the repository logged it). */
  async versions(
    ref: string,
  ): Promise<{ name: string; versions: VersionSummary[]; unreadable?: UnreadableVersionView[] }> {
    const name = await this.historyName(ref);
    const read = await this.servers.versionsOf(name);
    if (read.length === 0) throw RegistryErrors.notFound(ref);
    const unreadable = read.filter(isUnreadableVersion).map(({ version, problems }) => ({ version, problems }));
    return {
      name,
      versions: read.filter((row): row is ServerVersionRecord => !isUnreadableVersion(row)).map(toVersionSummary),
      ...(unreadable.length > 0 ? { unreadable } : {}),
    };
  }

  async version(ref: string, version: string): Promise<VersionDetail> {
    if (!serverVersionSchema.safeParse(version).success) throw RegistryErrors.badVersion();
    const name = await this.historyName(ref);
    const found = await this.servers.versionOf(name, version);
    if (!found) throw RegistryErrors.versionNotFound(name, version);
    if (isUnreadableVersion(found)) throw new UnreadableVersionError(found);
    return toVersionDetail(found);
  }

  private async resolve(ref: string): Promise<ServerRecord> {
    const parsed = parseServerRef(ref);
    if (!parsed) throw RegistryErrors.badRef();
    const server = await this.servers.findByRef(parsed);
    if (!server) throw RegistryErrors.notFound(ref);
    return server;
  }

  /** The server `ref` names, also one whose row cannot be read: what a repair or a delete starts from. */
  private async resolveForWrite(ref: string): Promise<ReadServer> {
    const parsed = parseServerRef(ref);
    if (!parsed) throw RegistryErrors.badRef();
    const server = await this.servers.readByRef(parsed);
    if (!server) throw RegistryErrors.notFound(ref);
    return server;
  }

  /** The name whose history a ref reaches: a live server's, or (by id or name) a deleted one's. */
  private async historyName(ref: string): Promise<string> {
    const parsed = parseServerRef(ref);
    if (!parsed) throw RegistryErrors.badRef();
    const live = await this.servers.nameByRef(parsed);
    if (live) return live;
    if (parsed.kind === 'name') return parsed.name;
    const name = parsed.kind === 'id' ? await this.servers.nameOfServerId(parsed.id) : undefined;
    if (!name) throw RegistryErrors.notFound(ref);
    return name;
  }

  private async freeSlugFor(name: string): Promise<string> {
    const base = deriveSlug(name);
    return firstFreeSlug(base, await this.servers.slugsStartingWith(base));
  }

  private async checkUrl(url: string): Promise<void> {
    const verdict = await this.urlGuard.check(url);
    if (!verdict.allowed) throw RegistryErrors.urlRefused(verdict.reason);
  }
}

function fieldsFromInput(input: ServerInput, slug: string): ServerFields {
  return {
    name: input.name,
    slug,
    title: input.title ?? null,
    description: input.description ?? null,
    version: input.version,
    url: input.url,
    transport: input.transport,
    auth: input.auth,
    tags: input.tags,
    status: input.status,
    statusMessage: input.statusMessage ?? null,
    allowedRoles: input.allowedRoles,
    timeouts: input.timeouts,
    toolRules: input.toolRules,
  };
}
