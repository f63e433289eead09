import { randomBytes, randomUUID } from 'node:crypto';
import type { PrismaClient } from '../../src/generated/prisma/client';

type ServerStatus = 'active' | 'deprecated' | 'disabled';
type VersionStatus = ServerStatus | 'deleted';

export interface VersionSeed {
  version: string;
  /** The status the row was written with; by default the server's. */
  status?: VersionStatus;
  publishedAt?: Date;
  updatedAt?: Date;
}

export interface ServerSeed {
  /** Last part of the name; the namespace is the factory's own. */
  last?: string;
  slug?: string;
  title?: string | null;
  description?: string | null;
  status?: ServerStatus;
  statusMessage?: string | null;
  allowedRoles?: string[];
  /** In order of publication; the last one is the latest. */
  versions?: VersionSeed[];
  health?: 'unknown' | 'healthy' | 'degraded' | 'unreachable';
  tools?: number;
  /** Deleted as the registry deletes: the server row gone, its latest version marked `deleted`. */
  deleted?: boolean;
}

export interface SeededServer {
  id: string;
  name: string;
  slug: string;
  /** The upstream address, which no registry answer may carry. */
  upstreamUrl: string;
  /** The environment variable named by the upstream auth, which no answer may carry either. */
  secretEnv: string;
}

/**
 * Seeds servers and their version history straight through Prisma, the way
 * the registry writes them (record = the server's public JSON), under a
 * namespace of its own so tests find their rows with `search` and remove them.
 */
export class ServerVersionFactory {
  /** Appears in every name this factory makes: search for it to see only this factory's servers. */
  readonly namespace = `com.fac${randomBytes(4).toString('hex')}`;
  private count = 0;

  constructor(private readonly prisma: PrismaClient) {}

  async server(seed: ServerSeed = {}): Promise<SeededServer> {
    const n = ++this.count;
    const id = randomUUID();
    const name = `${this.namespace}/${seed.last ?? `server-${n}`}`;
    const slug = seed.slug ?? `${this.namespace.slice(4)}-${n}`;
    const token = randomBytes(4).toString('hex');
    const upstreamUrl = `https://upstream-${token}.internal.example/mcp`;
    const secretEnv = `UPSTREAM_SECRET_${token.toUpperCase()}`;
    const status = seed.status ?? 'active';
    const versions = seed.versions ?? [{ version: '1.0.0' }];
    const base = Date.now() - versions.length * 60_000;
    const fields = {
      name,
      slug,
      title: seed.title === undefined ? `Server ${n}` : seed.title,
      description: seed.description === undefined ? `Test server ${n}` : seed.description,
      url: upstreamUrl,
      transport: 'streamable-http',
      auth: { type: 'headers', headers: { 'X-Api-Key': { env: secretEnv } } },
      tags: ['test'],
      status,
      statusMessage: seed.statusMessage ?? null,
      allowedRoles: seed.allowedRoles ?? [],
      timeouts: {},
    };
    const createdAt = new Date(base);
    const latest = versions.at(-1)?.version ?? '1.0.0';
    if (!seed.deleted) {
      await this.prisma.server.create({ data: { id, ...fields, version: latest, createdAt } });
      if (seed.health) await this.prisma.serverHealth.create({ data: { serverId: id, status: seed.health } });
      if (seed.tools) {
        await this.prisma.serverItem.createMany({
          data: [
            ...Array.from({ length: seed.tools }, (_, i) => item(id, 'tool', `tool_${i}`, i)),
            item(id, 'prompt', 'a_prompt', 0),
          ],
        });
      }
    }
    for (const [i, seedVersion] of versions.entries()) {
      const isLatest = i === versions.length - 1;
      const publishedAt = seedVersion.publishedAt ?? new Date(base + i * 60_000);
      const record = {
        id,
        ...fields,
        version: seedVersion.version,
        revision: i + 1,
        createdAt: createdAt.toISOString(),
        updatedAt: publishedAt.toISOString(),
      };
      await this.prisma.serverVersion.create({
        data: {
          serverId: id,
          name,
          version: seedVersion.version,
          record,
          status: seedVersion.status ?? (seed.deleted && isLatest ? 'deleted' : status),
          isLatest,
          publishedAt,
          updatedAt: seedVersion.updatedAt ?? publishedAt,
        },
      });
    }
    return { id, name, slug, upstreamUrl, secretEnv };
  }

  /** Sets a version row's updated_at, as a later write by the registry would. */
  async touch(name: string, version: string, updatedAt: Date): Promise<void> {
    await this.prisma.$executeRaw`
      UPDATE server_versions SET updated_at = ${updatedAt} WHERE name = ${name} AND version = ${version}`;
  }

  /** Removes every row this factory wrote (health and items go with their server). */
  async cleanup(): Promise<void> {
    const pattern = `${this.namespace}/%`;
    await this.prisma.$executeRaw`DELETE FROM server_versions WHERE name LIKE ${pattern}`;
    await this.prisma.$executeRaw`DELETE FROM servers WHERE name LIKE ${pattern}`;
  }
}

function item(serverId: string, kind: string, name: string, position: number) {
  return {
    serverId,
    kind,
    name,
    gatewayName: `${serverId.slice(0, 8)}_${name}`,
    definition: { name },
    fingerprint: randomBytes(16).toString('hex'),
    position,
  };
}
