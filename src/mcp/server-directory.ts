import { Injectable, type OnModuleDestroy } from '@nestjs/common';
import { PrismaService } from '../database/prisma.service';
import type { PolicyServer } from '../auth/access-policy';
import { RegistryEvents } from '../registry/registry-events';
import { parseUpstreamTarget, type ServerStatus, type UpstreamTarget } from '../registry/server.schema';

/** A registered server as the MCP endpoints need it: how to reach it and who may. */
export interface GatewayServer extends UpstreamTarget, PolicyServer {
  name: string;
  title: string | null;
  status: ServerStatus;
  allowedRoles: string[];
  toolRules: unknown;
}

/** Lookups are served from memory this long; local registry events evict sooner. */
const CACHE_MS = 1_000;

/**
 * Finds the servers `/mcp` fronts (active and deprecated; disabled ones do not
 * exist here). Cached briefly: a lookup happens on every MCP request.
 */
@Injectable()
export class ServerDirectory implements OnModuleDestroy {
  private readonly bySlugCache = new Map<string, { server: Promise<GatewayServer | undefined>; at: number }>();
  private readonly stopListening: () => void;

  constructor(
    private readonly prisma: PrismaService,
    events: RegistryEvents,
  ) {
    this.stopListening = events.on(() => this.bySlugCache.clear());
  }

  onModuleDestroy(): void {
    this.stopListening();
  }

  bySlug(slug: string): Promise<GatewayServer | undefined> {
    const now = Date.now();
    const cached = this.bySlugCache.get(slug);
    if (cached && now - cached.at < CACHE_MS) return cached.server;
    // The lookup itself is cached, so the requests that arrive while it runs share it: when the entry expired under
    // load, each of them used to ask the database (about 14 queries a second for one slug at concurrency 32).
    const server = this.prisma.server
      .findFirst({ where: { slug, status: { in: ['active', 'deprecated'] } } })
      .then((row) => (row ? toGatewayServer(row) : undefined));
    if (this.bySlugCache.size > 10_000) this.bySlugCache.clear();
    const entry = { server, at: now };
    this.bySlugCache.set(slug, entry);
    // A failed lookup is not remembered; its callers see the failure.
    server.catch(() => {
      if (this.bySlugCache.get(slug) === entry) this.bySlugCache.delete(slug);
    });
    return server;
  }
}

export type ServerRow = NonNullable<Awaited<ReturnType<PrismaService['server']['findFirst']>>>;

export function toGatewayServer(row: ServerRow): GatewayServer | undefined {
  const parsed = parseUpstreamTarget(row);
  // A row the registry would not have written is treated as absent rather than half-used.
  if ('invalid' in parsed) return undefined;
  return {
    ...parsed.target,
    name: row.name,
    title: row.title,
    status: row.status as ServerStatus,
    allowedRoles: row.allowedRoles,
    toolRules: row.toolRules,
  };
}
