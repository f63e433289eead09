import { Injectable, type OnModuleDestroy } from '@nestjs/common';
import { InjectPinoLogger, PinoLogger } from 'nestjs-pino';
import type { FieldError } from '../common/domain-error';
import { PrismaService } from '../database/prisma.service';
import type { PolicyServer } from '../auth/access-policy';
import { RegistryEvents } from '../registry/registry-events';
import { readStoredFields, type ServerStatus, type UpstreamTarget } from '../registry/server.schema';
import { UnreadableServerLog } from '../registry/unreadable-server-log';

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
 * An entry this old is looked up again, in the background, by the next request, which is still answered from it:
 * while requests keep coming none waits for the database, and no answer is older than CACHE_MS. A request that found
 * the entry expired waited for a round trip to PostgreSQL and for Prisma's client (0.6–1 ms of its CPU on a loaded
 * 2-core VM), once a second: at concurrency 1, one call in every 700 to 2,000, a share of the p99 (bench/HISTORY.md,
 * session 23).
 */
const REFRESH_AFTER_MS = 750;

interface Entry {
  lookup: Promise<GatewayServer | undefined>;
  /** The lookup's answer once it has come: requests are then given it at once, not a promise of it. */
  answer?: { server: GatewayServer | undefined };
  /** When its lookup started: what it says held then. */
  at: number;
  /** A lookup to replace it has been started (once per entry: one that fails is not retried before it expires). */
  refreshing?: boolean;
}

/**
 * Finds the servers `/mcp` fronts (active and deprecated; disabled ones do not
 * exist here). Cached briefly: a lookup happens on every MCP request.
 */
@Injectable()
export class ServerDirectory implements OnModuleDestroy {
  private readonly bySlugCache = new Map<string, Entry>();
  private readonly stopListening: () => void;
  private readonly unreadable: UnreadableServerLog;

  constructor(
    private readonly prisma: PrismaService,
    events: RegistryEvents,
    @InjectPinoLogger(ServerDirectory.name) logger: PinoLogger,
  ) {
    this.stopListening = events.on(() => this.bySlugCache.clear());
    this.unreadable = new UnreadableServerLog(
      logger,
      'a stored server the gateway cannot read is not served at /mcp/{slug} until an admin repairs or deletes it',
    );
  }

  onModuleDestroy(): void {
    this.stopListening();
  }

  /**
   * The server, or a promise of it while its lookup runs: most requests find the answer cached, and take it without a
   * turn of the event loop (bench/HISTORY.md, session 25).
   */
  bySlug(slug: string): GatewayServer | undefined | Promise<GatewayServer | undefined> {
    const now = Date.now();
    const cached = this.bySlugCache.get(slug);
    if (cached && now - cached.at < CACHE_MS) {
      if (now - cached.at >= REFRESH_AFTER_MS && !cached.refreshing) this.refresh(slug, cached, now);
      return cached.answer ? cached.answer.server : cached.lookup;
    }
    // The lookup itself is cached, so the requests that arrive while it runs share it: when the entry expired under
    // load, each of them used to ask the database (about 14 queries a second for one slug at concurrency 32).
    const lookup = this.lookUp(slug);
    if (this.bySlugCache.size > 10_000) this.bySlugCache.clear();
    const entry: Entry = { lookup, at: now };
    this.bySlugCache.set(slug, entry);
    lookup.then(
      (server) => {
        entry.answer = { server };
      },
      // A failed lookup is not remembered; its callers see the failure.
      () => {
        if (this.bySlugCache.get(slug) === entry) this.bySlugCache.delete(slug);
      },
    );
    return lookup;
  }

  /**
   * Looks `slug` up again while `current` answers, and puts the answer in its place once it has come, unless the
   * registry changed meanwhile (the cache was cleared: the next request asks anew). A failure leaves `current` to
   * answer until it expires; the request after that waits for the database, and sees its failure.
   */
  private refresh(slug: string, current: Entry, now: number): void {
    current.refreshing = true;
    const lookup = this.lookUp(slug);
    void lookup.then(
      (server) => {
        if (this.bySlugCache.get(slug) === current) this.bySlugCache.set(slug, { lookup, answer: { server }, at: now });
      },
      () => undefined,
    );
  }

  private lookUp(slug: string): Promise<GatewayServer | undefined> {
    return this.prisma.server.findFirst({ where: { slug, status: { in: ['active', 'deprecated'] } } }).then((row) => {
      if (!row) return undefined;
      const server = toGatewayServer(row);
      if (!('problems' in server)) return server;
      // Answered as a slug nothing is registered under: no setting of it is used half-read.
      this.unreadable.report(row, server.problems);
      return undefined;
    });
  }
}

export type ServerRow = NonNullable<Awaited<ReturnType<PrismaService['server']['findFirst']>>>;

/** The server a row describes, or each of its stored fields the gateway cannot read (readStoredFields). */
export function toGatewayServer(row: ServerRow): GatewayServer | { problems: FieldError[] } {
  const { fields, problems } = readStoredFields(row);
  if (problems.length > 0) return { problems };
  const { url, transport, auth, timeouts, status } = fields;
  return {
    id: row.id,
    slug: row.slug,
    url,
    transport,
    auth,
    timeouts,
    name: row.name,
    title: row.title,
    status,
    allowedRoles: row.allowedRoles,
    toolRules: row.toolRules,
  };
}
