import { Inject, Injectable } from '@nestjs/common';
import { DomainError } from '../common/domain-error';
import type { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { SERVER_NAME } from '../registry/server.schema';
import { isUnreadableVersion, type UnreadableVersion } from '../registry/stored-version';
import { encodeListCursor } from './facade-cursor';
import { DEFAULT_PAGE_SIZE, type ServerList, type ServerResponse } from './official-registry.types';
import type { ListServersQueryDto, VersionsQueryDto } from './registry-facade.query';
import { type FacadeVersionRead, type FacadeVersionRow, RegistryFacadeRepository } from './registry-facade.repository';
import { type GatewayAddress, toServerResponse } from './server-response';

const MAX_NAME = 200;
const MAX_VERSION = 255;

/** The official registry read API over the version history the registry publishes. */
@Injectable()
export class RegistryFacadeService {
  private readonly gateway: GatewayAddress;

  constructor(
    private readonly repository: RegistryFacadeRepository,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.gateway = { publicUrl: config.publicUrl, mcpPrefix: config.mcpPrefix };
  }

  async list(query: ListServersQueryDto): Promise<ServerList> {
    const limit = query.limit ?? DEFAULT_PAGE_SIZE;
    const latestOnly = query.version === 'latest';
    const rows = await this.repository.list({
      after: query.cursor,
      take: limit + 1,
      search: query.search,
      updatedSince: query.updated_since,
      latestOnly,
      version: latestOnly ? undefined : query.version,
      // The spec: deleted entries are always included with updated_since, so that a sync learns of deletions.
      includeDeleted: query.updated_since !== undefined || query.include_deleted === true,
    });
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    const nextCursor = rows.length > limit && last ? encodeListCursor(last) : undefined;
    // A version the gateway cannot read is left out (the repository logged it): a page may be short, the cursor
    // still moves past it.
    const servers = readable(page).map((row) => toServerResponse(row, this.gateway));
    return { servers, metadata: { ...(nextCursor ? { nextCursor } : {}), count: servers.length } };
  }

  async versions(serverName: string, query: VersionsQueryDto): Promise<ServerList> {
    const name = asServerName(serverName);
    const rows = name ? await this.repository.versionsOf(name, query.include_deleted === true) : [];
    if (rows.length === 0) throw serverNotFound();
    const servers = readable(rows).map((row) => toServerResponse(row, this.gateway));
    return { servers, metadata: { count: servers.length } };
  }

  /** One version; `latest` is the server's latest version. */
  async version(serverName: string, version: string, query: VersionsQueryDto): Promise<ServerResponse> {
    const name = asServerName(serverName);
    if (!name) throw serverNotFound();
    const includeDeleted = query.include_deleted === true;
    const row = isVersionText(version) ? await this.repository.versionOf(name, version, includeDeleted) : undefined;
    if (row && isUnreadableVersion(row)) throw unreadableVersion(row);
    if (row) return toServerResponse(row, this.gateway);
    const known = await this.repository.hasVersions(name, includeDeleted);
    throw known ? new DomainError('not_found', 'Server version not found') : serverNotFound();
  }
}

/** The name when the (decoded) path segment can name a server at all. */
function asServerName(text: string): string | undefined {
  return text.length >= 3 && text.length <= MAX_NAME && SERVER_NAME.test(text) ? text : undefined;
}

function isVersionText(text: string): boolean {
  // Control characters (NUL above all, which PostgreSQL refuses in text) cannot be in a stored version.
  return text.length >= 1 && text.length <= MAX_VERSION && ![...text].some((char) => char.charCodeAt(0) < 0x20);
}

function readable(rows: FacadeVersionRead[]): FacadeVersionRow[] {
  return rows.filter((row): row is FacadeVersionRow => !isUnreadableVersion(row));
}

/** 409 naming the version and each field at fault in `error` itself: this API's errors carry no field list of it. */
function unreadableVersion({ name, version, problems }: UnreadableVersion): DomainError {
  const fields = problems.map((problem) => `${problem.field} (${problem.message})`).join(', ');
  return new DomainError(
    'conflict',
    `Version ${JSON.stringify(version)} of server ${name} is stored with fields the registry cannot read: ${fields}`,
  );
}

function serverNotFound(): DomainError {
  return new DomainError('not_found', 'Server not found');
}
