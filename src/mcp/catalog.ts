import { createHash } from 'node:crypto';
import { Injectable, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { PinoLogger } from 'nestjs-pino';
import { type AccessDecision, AccessPolicy, type PolicySubject } from '../auth/access-policy';
import { parseGatewayResourceUri } from '../discovery/gateway-names';
import { ClusterSignals } from '../redis/cluster-signals';
import { RegistryEvents } from '../registry/registry-events';
import { GATEWAY_META_KEY } from '../registry/server.schema';
import { CatalogRepository, type CatalogMarker } from './catalog.repository';
import { type GatewayServer, toGatewayServer } from './server-directory';

export type CatalogKind = 'tool' | 'prompt' | 'resource' | 'resource_template';

/** A tool, prompt, resource or template as `/mcp` offers it: the upstream's definition under the gateway's name. */
export interface CatalogEntry {
  server: GatewayServer;
  kind: CatalogKind;
  /** The upstream's own name (tools, prompts), URI (resources) or URI template. */
  name: string;
  gatewayName: string;
  /** The definition as `/mcp` lists it: renamed, with the origin under our `_meta` key. */
  exposed: Record<string, unknown>;
}

export interface CatalogSnapshot {
  /** Changes whenever anything a caller could see changes. */
  version: string;
  servers: GatewayServer[];
  entries: Record<CatalogKind, CatalogEntry[]>;
  byGatewayName: Map<string, CatalogEntry>;
  /** Tools by server id and upstream name (`toolKey`): what the REST bridge calls. */
  toolsByServer: Map<string, CatalogEntry>;
}

/** The key of `CatalogSnapshot.toolsByServer`. */
export function toolKey(serverId: string, name: string): string {
  return `${serverId}\0${name}`;
}

/** How often the catalog asks the database whether anything changed (other replicas, discovery, health). */
const POLL_MS = 2_000;
/** The serialized lists kept for `tools/list` and friends, across role sets: beyond this they are made again. */
const MAX_LIST_BYTES = 64 * 1024 * 1024;
/**
 * How long a `catalog:stale` signal or a registry change waits for others before the rebuild it asks for: a
 * burst (a bulk import, a sync of many servers that changed) costs one rebuild of the whole catalog, not one each.
 */
export const REBUILD_DEBOUNCE_MS = 100;
const EMPTY: CatalogSnapshot = {
  version: '',
  servers: [],
  entries: { tool: [], prompt: [], resource: [], resource_template: [] },
  byGatewayName: new Map(),
  toolsByServer: new Map(),
};

/**
 * What the aggregate endpoint offers, held in memory so that `tools/list`
 * never reaches an upstream: every active, reachable server's discovered
 * items, under their gateway names. Rebuilt when the registry, discovery or
 * health change; listeners hear when the result differs.
 */
@Injectable()
export class Catalog implements OnApplicationBootstrap, OnModuleDestroy {
  private snapshot: CatalogSnapshot = EMPTY;
  private marker?: CatalogMarker;
  private timer?: NodeJS.Timeout;
  private rebuilding?: Promise<void>;
  /** The rebuild that starts when the running one ends, shared by everyone who asked meanwhile. */
  private queued?: Promise<void>;
  private debounce?: NodeJS.Timeout;
  private stopSignals?: () => Promise<void>;
  private readonly listeners = new Set<(snapshot: CatalogSnapshot) => void>();
  private readonly listsByRoles = new Map<string, Map<CatalogKind, Record<string, unknown>[]>>();
  private readonly bodyByRoles = new Map<string, Buffer>();
  private bodyBytes = 0;
  private readonly stopListening: () => void;

  constructor(
    private readonly repository: CatalogRepository,
    private readonly policy: AccessPolicy,
    private readonly logger: PinoLogger,
    private readonly signals: ClusterSignals,
    events: RegistryEvents,
  ) {
    this.logger.setContext(Catalog.name);
    // A registry change made here reaches the other replicas' catalogs through the signal.
    this.stopListening = events.on(() => {
      this.refreshSoon();
      this.signals.raise('catalog:stale').catch((error: unknown) => this.logger.warn({ err: error }, 'signal failed'));
    });
  }

  async onApplicationBootstrap(): Promise<void> {
    this.stopSignals = await this.signals.listen('catalog:stale', () => this.refreshSoon());
    await this.refresh();
    this.timer = setInterval(() => void this.poll(), POLL_MS);
    this.timer.unref();
  }

  async onModuleDestroy(): Promise<void> {
    clearInterval(this.timer);
    clearTimeout(this.debounce);
    this.debounce = undefined;
    await this.stopSignals?.();
    this.stopListening();
    this.listeners.clear();
  }

  current(): CatalogSnapshot {
    return this.snapshot;
  }

  /** Calls `listener` after each rebuild that changed what callers could see. */
  onChange(listener: (snapshot: CatalogSnapshot) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * The exposed definitions of one kind that `subject` may see (tools: may
   * call), computed once per role set and catalog version.
   */
  listFor(subject: PolicySubject, kind: CatalogKind): Record<string, unknown>[] {
    const key = [...subject.roles].sort().join('\n');
    let lists = this.listsByRoles.get(key);
    if (!lists) {
      if (this.listsByRoles.size > 1_000) this.listsByRoles.clear();
      lists = new Map();
      this.listsByRoles.set(key, lists);
    }
    let list = lists.get(kind);
    if (!list) {
      list = this.snapshot.entries[kind].filter((entry) => this.allows(subject, entry)).map((entry) => entry.exposed);
      lists.set(kind, list);
    }
    return list;
  }

  /**
   * `listFor` as UTF-8 JSON, serialized and encoded once per role set and catalog version: the hot path of
   * `tools/list`, whose answer is written from these bytes as they are (5,000 tools are 1.5 MB; writing them as a
   * string cost about 10 ms per list, `npm run bench`). At most MAX_LIST_BYTES are kept, however many role sets.
   */
  listBodyFor(subject: PolicySubject, kind: CatalogKind): Buffer {
    const key = `${kind}\n${[...subject.roles].sort().join('\n')}`;
    let body = this.bodyByRoles.get(key);
    if (body === undefined) {
      body = Buffer.from(JSON.stringify(this.listFor(subject, kind)), 'utf8');
      if (this.bodyBytes + body.length > MAX_LIST_BYTES) this.forgetListBodies();
      this.bodyByRoles.set(key, body);
      this.bodyBytes += body.length;
    }
    return body;
  }

  private forgetListBodies(): void {
    this.bodyByRoles.clear();
    this.bodyBytes = 0;
  }

  /** Whether `subject` may see (and, for a tool, call) the entry. */
  allows(subject: PolicySubject, entry: CatalogEntry): boolean {
    return this.decide(subject, entry).allowed;
  }

  /** Whether the subject may use the entry, and the rule that says so. */
  decide(subject: PolicySubject, entry: Pick<CatalogEntry, 'kind' | 'server' | 'name'>): AccessDecision {
    return entry.kind === 'tool'
      ? this.policy.canUseTool(subject, entry.server, entry.name)
      : this.policy.canSeeServer(subject, entry.server);
  }

  /** The resource entry (or the server, for a URI under a template) a gateway resource URI stands for. */
  resolveResourceUri(uri: string): { server: GatewayServer; uri: string } | undefined {
    const parsed = parseGatewayResourceUri(uri);
    if (!parsed) return undefined;
    const server = this.snapshot.servers.find((candidate) => candidate.slug === parsed.slug);
    return server ? { server, uri: parsed.uri } : undefined;
  }

  /**
   * Rebuilds from what the database holds now: at once, or, while a rebuild
   * runs (it may have read the database before the change the caller knows
   * of), once that one ends. Callers meanwhile share that next rebuild.
   */
  refresh(): Promise<void> {
    if (!this.rebuilding) return this.startRebuild();
    this.queued ??= this.rebuilding.then(() => {
      this.queued = undefined;
      return this.startRebuild();
    });
    return this.queued;
  }

  /** `refresh` after REBUILD_DEBOUNCE_MS, for everything asked until then. */
  private refreshSoon(): void {
    if (this.debounce) return;
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      void this.refresh();
    }, REBUILD_DEBOUNCE_MS);
    this.debounce.unref();
  }

  private startRebuild(): Promise<void> {
    const rebuilding = this.rebuild().finally(() => (this.rebuilding = undefined));
    this.rebuilding = rebuilding;
    return rebuilding;
  }

  private async poll(): Promise<void> {
    try {
      const marker = await this.repository.marker();
      if (this.marker && sameMarker(marker, this.marker)) return;
      await this.refresh();
    } catch (error) {
      this.logger.warn({ err: error }, 'catalog poll failed');
    }
  }

  private async rebuild(): Promise<void> {
    try {
      const marker = await this.repository.marker();
      const servers = (await this.repository.reachableServers())
        .map(toGatewayServer)
        .filter((server): server is GatewayServer => server !== undefined);
      const byId = new Map(servers.map((server) => [server.id, server]));
      const rows = await this.repository.items([...byId.keys()]);
      const entries: CatalogSnapshot['entries'] = { tool: [], prompt: [], resource: [], resource_template: [] };
      const byGatewayName = new Map<string, CatalogEntry>();
      const toolsByServer = new Map<string, CatalogEntry>();
      const hash = createHash('sha256');
      for (const server of servers) {
        hash.update(JSON.stringify([server.id, server.slug, server.allowedRoles, server.toolRules]));
      }
      for (const row of rows) {
        const server = byId.get(row.serverId);
        if (!server || !isKind(row.kind)) continue;
        const entry: CatalogEntry = {
          server,
          kind: row.kind,
          name: row.name,
          gatewayName: row.gatewayName,
          exposed: exposedDefinition(row.kind, row.definition, row.gatewayName, server, row.name),
        };
        entries[row.kind].push(entry);
        if (row.kind === 'tool' || row.kind === 'prompt') byGatewayName.set(`${row.kind}:${row.gatewayName}`, entry);
        if (row.kind === 'tool') toolsByServer.set(toolKey(row.serverId, row.name), entry);
        hash.update(`${row.kind}\0${row.serverId}\0${row.gatewayName}\0${row.fingerprint}\n`);
      }
      const version = hash.digest('hex');
      const changed = version !== this.snapshot.version;
      this.snapshot = { version, servers, entries, byGatewayName, toolsByServer };
      this.marker = marker;
      if (!changed) return;
      this.listsByRoles.clear();
      this.forgetListBodies();
      for (const listener of this.listeners) listener(this.snapshot);
    } catch (error) {
      this.logger.warn({ err: error }, 'catalog rebuild failed; keeping the previous one');
    }
  }
}

function isKind(kind: string): kind is CatalogKind {
  return kind === 'tool' || kind === 'prompt' || kind === 'resource' || kind === 'resource_template';
}

function sameMarker(a: CatalogMarker, b: CatalogMarker): boolean {
  return (
    a.servers === b.servers &&
    a.serversUpdatedAt === b.serversUpdatedAt &&
    a.itemsChangedAt === b.itemsChangedAt &&
    a.healthChangedAt === b.healthChangedAt
  );
}

/** The upstream's definition under the gateway's name, with where it came from under our `_meta` key. */
function exposedDefinition(
  kind: CatalogKind,
  definition: Record<string, unknown>,
  gatewayName: string,
  server: GatewayServer,
  name: string,
): Record<string, unknown> {
  const meta = {
    ...(definition._meta as Record<string, unknown> | undefined),
    [GATEWAY_META_KEY]: { server: server.slug, serverName: server.name, name },
  };
  switch (kind) {
    case 'tool':
    case 'prompt':
      return { ...definition, name: gatewayName, _meta: meta };
    case 'resource':
      return { ...definition, uri: gatewayName, _meta: meta };
    case 'resource_template':
      return { ...definition, uriTemplate: gatewayName, _meta: meta };
  }
}
