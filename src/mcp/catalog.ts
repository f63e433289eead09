import { createHash } from 'node:crypto';
import { Injectable, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { PinoLogger } from 'nestjs-pino';
import { type AccessDecision, AccessPolicy, type PolicySubject } from '../auth/access-policy';
import { OutageLog } from '../common/outage-log';
import { parseGatewayResourceUri } from '../discovery/gateway-names';
import { ClusterSignals } from '../redis/cluster-signals';
import { RegistryEvents } from '../registry/registry-events';
import { GATEWAY_META_KEY } from '../registry/server.schema';
import { UnreadableServerLog } from '../registry/unreadable-server-log';
import { type CatalogItemRow, CatalogRepository, type CatalogMarker } from './catalog.repository';
import { type GatewayServer, toGatewayServer } from './server-directory';

export type CatalogKind = 'tool' | 'prompt' | 'resource' | 'resource_template';

/** A tool, prompt, resource or template as `/mcp` offers it: the upstream's definition under the gateway's name. */
export interface CatalogEntry {
  server: GatewayServer;
  kind: CatalogKind;
  /** The upstream's own name (tools, prompts), URI (resources) or URI template. */
  name: string;
  gatewayName: string;
  /**
   * The definition as `/mcp` lists it (renamed, with the origin under our `_meta` key), as UTF-8 JSON: a view of
   * one buffer per server, outside the JavaScript heap. The catalog lives as long as the process, and every full
   * garbage collection marks each object in it: as objects (or as the strings `JSON.stringify` builds out of
   * pieces), the 200,000 tools of `npm run bench:registry` were millions of them, and marking them stalled that
   * bench's requests (README, Registry benchmark).
   */
  exposedJson: Buffer;
}

/** The definition `entry` offers (`exposedJson`), as a new object. */
export function definitionOf(entry: CatalogEntry): Record<string, unknown> {
  return JSON.parse(entry.exposedJson.toString('utf8')) as Record<string, unknown>;
}

export interface CatalogSnapshot {
  /** Changes whenever anything a caller could see changes. */
  version: string;
  servers: GatewayServer[];
  entries: Record<CatalogKind, CatalogEntry[]>;
  /**
   * Tools and prompts by gateway name; tools by server id, then upstream name (what the REST bridge calls). Keyed
   * by strings the entries hold already: a key joined from two (`tool:name`) is two more strings per tool, for as
   * long as the catalog lives.
   */
  byGatewayName: Record<'tool' | 'prompt', Map<string, CatalogEntry>>;
  toolsByServer: Map<string, Map<string, CatalogEntry>>;
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
const OPEN_ARRAY = Buffer.from('[');
const COMMA = Buffer.from(',');
const CLOSE_ARRAY = Buffer.from(']');
const EMPTY: CatalogSnapshot = {
  version: '',
  servers: [],
  entries: { tool: [], prompt: [], resource: [], resource_template: [] },
  byGatewayName: { tool: new Map(), prompt: new Map() },
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
  /** By server id: what the last rebuild read, reused by the next one for servers that did not change. */
  private shares = new Map<string, ServerShare>();
  private marker?: CatalogMarker;
  private timer?: NodeJS.Timeout;
  private rebuilding?: Promise<void>;
  /** The rebuild that starts when the running one ends, shared by everyone who asked meanwhile. */
  private queued?: Promise<void>;
  private debounce?: NodeJS.Timeout;
  /** The catalog's reads: the poll's every POLL_MS while the database is away. */
  private readonly reads: OutageLog;
  private stopSignals?: () => Promise<void>;
  private readonly listeners = new Set<(snapshot: CatalogSnapshot) => void>();
  private readonly bodyByRoles = new Map<string, Buffer>();
  private bodyBytes = 0;
  private readonly stopListening: () => void;
  private readonly unreadable: UnreadableServerLog;

  constructor(
    private readonly repository: CatalogRepository,
    private readonly policy: AccessPolicy,
    private readonly logger: PinoLogger,
    private readonly signals: ClusterSignals,
    events: RegistryEvents,
  ) {
    this.logger.setContext(Catalog.name);
    this.reads = new OutageLog(this.logger, 'catalog read again');
    this.unreadable = new UnreadableServerLog(
      this.logger,
      'a stored server the gateway cannot read is left out of /mcp until an admin repairs or deletes it',
    );
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
   * The exposed definitions of one kind that `subject` may see (tools: may call), as new objects: for the answers
   * built as values (a list request in a batch). A lone list request is answered from `listBodyFor`'s bytes.
   */
  listFor(subject: PolicySubject, kind: CatalogKind): Record<string, unknown>[] {
    return JSON.parse(this.listBodyFor(subject, kind).toString('utf8')) as Record<string, unknown>[];
  }

  /**
   * The exposed definitions of one kind that `subject` may see (tools: may call), as a UTF-8 JSON array, made
   * once per role set and catalog version: the hot path of `tools/list`, whose answer is written from these bytes
   * as they are (5,000 tools are 1.5 MB; writing them as a string cost about 10 ms per list, `npm run bench`). At
   * most MAX_LIST_BYTES are kept, however many role sets.
   */
  listBodyFor(subject: PolicySubject, kind: CatalogKind): Buffer {
    const key = `${kind}\n${[...subject.roles].sort().join('\n')}`;
    let body = this.bodyByRoles.get(key);
    if (body === undefined) {
      const parts: Buffer[] = [OPEN_ARRAY];
      for (const entry of this.snapshot.entries[kind]) {
        if (!this.allows(subject, entry)) continue;
        if (parts.length > 1) parts.push(COMMA);
        parts.push(entry.exposedJson);
      }
      parts.push(CLOSE_ARRAY);
      body = Buffer.concat(parts);
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
      if (this.marker && sameMarker(marker, this.marker)) return this.reads.succeeded();
      await this.refresh();
    } catch (error) {
      this.reads.failed(error, 'catalog poll failed; retried quietly until the catalog is read again');
    }
  }

  private async rebuild(): Promise<void> {
    try {
      // Read before what it stands for: a change after this read moves it again, and the next poll rebuilds.
      const marker = await this.repository.marker();
      const servers: GatewayServer[] = [];
      for (const row of await this.repository.reachableServers()) {
        const server = toGatewayServer(row);
        if ('problems' in server) this.unreadable.report(row, server.problems);
        else servers.push(server);
      }
      // Read before the items, for the same reason: a stamp never says more than the items read after it.
      const itemsChangedAt = await this.repository.itemsChangedAt(servers.map((server) => server.id));
      const shares = new Map<string, ServerShare>();
      const stale = new Map<string, Omit<ServerShare, 'entries' | 'digest'>>();
      for (const server of servers) {
        const key = JSON.stringify(server);
        const stamp = itemsChangedAt.get(server.id) ?? 0;
        const kept = this.shares.get(server.id);
        if (kept?.key === key && kept.itemsChangedAt === stamp) shares.set(server.id, kept);
        else stale.set(server.id, { server, key, itemsChangedAt: stamp });
      }
      for (const [serverId, rows] of groupByServer(await this.repository.items([...stale.keys()]), stale.keys())) {
        const share = stale.get(serverId)!;
        shares.set(serverId, { ...share, ...entriesOf(share.server, rows) });
      }
      const unchanged = stale.size === 0 && shares.size === this.shares.size;
      this.shares = shares;
      this.marker = marker;
      this.reads.succeeded();
      if (unchanged) return;

      const hash = createHash('sha256');
      for (const server of servers) {
        const share = shares.get(server.id)!;
        hash.update(JSON.stringify([server.id, server.slug, server.allowedRoles, server.toolRules, share.digest]));
      }
      const version = hash.digest('hex');
      const changed = version !== this.snapshot.version;
      const ordered = servers.map((server) => shares.get(server.id)!.server);
      this.snapshot = assemble(version, ordered, shares);
      // Made of the entries just replaced (even when the version stayed, e.g. a server's URL changed): kept, the
      // bytes would say what the entries no longer say.
      this.forgetListBodies();
      if (!changed) return;
      for (const listener of this.listeners) listener(this.snapshot);
    } catch (error) {
      this.reads.failed(
        error,
        'catalog rebuild failed; keeping the previous one; retried quietly until the catalog is read again',
      );
    }
  }
}

/**
 * One server's part of the catalog, kept from one rebuild to the next: its items are read again only when the
 * server (as `/mcp` sees it) or its items (`server_discovery.changed_at`) changed. Registering one server then
 * reads that server's items, not the whole catalog's (100 registrations of 50 tools read 250,000 rows before).
 */
interface ServerShare {
  server: GatewayServer;
  /** `server` as JSON: any difference reads its items again, since every entry refers to it. */
  key: string;
  /** The items' `changed_at` (ms, 0 before the first sync) when they were read. */
  itemsChangedAt: number;
  entries: CatalogEntry[];
  /** sha256 over the items' kinds, gateway names and fingerprints: what the catalog version hashes. */
  digest: string;
}

/** `rows` by server, every server of `serverIds` included (one whose items are gone has none). */
function groupByServer(rows: CatalogItemRow[], serverIds: Iterable<string>): Map<string, CatalogItemRow[]> {
  const groups = new Map<string, CatalogItemRow[]>();
  for (const serverId of serverIds) groups.set(serverId, []);
  for (const row of rows) groups.get(row.serverId)?.push(row);
  return groups;
}

function entriesOf(server: GatewayServer, rows: CatalogItemRow[]): Pick<ServerShare, 'entries' | 'digest'> {
  const items = rows.flatMap((row) => {
    const kind = kindOf(row.kind);
    return kind && !(kind === 'tool' && needsTasks(row.definition)) ? [{ ...row, kind }] : [];
  });
  const texts = items.map((row) =>
    JSON.stringify(renamedDefinition(row.kind, row.definition, row.gatewayName, server, row.name)),
  );
  const block = Buffer.from(texts.join(''), 'utf8');
  const entries: CatalogEntry[] = [];
  const hash = createHash('sha256');
  let offset = 0;
  items.forEach((row, index) => {
    const end = offset + Buffer.byteLength(texts[index]!, 'utf8');
    entries.push({
      server,
      kind: row.kind,
      name: row.name,
      gatewayName: row.gatewayName,
      exposedJson: block.subarray(offset, end),
    });
    offset = end;
    hash.update(`${row.kind}\0${row.gatewayName}\0${row.fingerprint}\n`);
  });
  return { entries, digest: hash.digest('hex') };
}

/** The snapshot of these shares: each kind's entries in (gateway name, server id) order, and the lookups. */
function assemble(version: string, servers: GatewayServer[], shares: Map<string, ServerShare>): CatalogSnapshot {
  const entries: CatalogSnapshot['entries'] = { tool: [], prompt: [], resource: [], resource_template: [] };
  const byGatewayName: CatalogSnapshot['byGatewayName'] = { tool: new Map(), prompt: new Map() };
  const toolsByServer = new Map<string, Map<string, CatalogEntry>>();
  for (const share of shares.values()) for (const entry of share.entries) entries[entry.kind].push(entry);
  for (const list of Object.values(entries)) list.sort(byGatewayNameThenServer);
  // The REST bridge calls a tool by its upstream name, which is never ambiguous: it keeps every tool.
  const tools = entries.tool;
  for (const kind of ['tool', 'prompt'] as const) {
    entries[kind] = withoutSharedNames(entries[kind]);
    for (const entry of entries[kind]) byGatewayName[kind].set(entry.gatewayName, entry);
  }
  for (const entry of tools) {
    let tools = toolsByServer.get(entry.server.id);
    if (!tools) {
      tools = new Map<string, CatalogEntry>();
      toolsByServer.set(entry.server.id, tools);
    }
    tools.set(entry.name, entry);
  }
  return { version, servers, entries, byGatewayName, toolsByServer };
}

/**
 * The entries but those whose gateway name another entry has too: an upstream may name a tool exactly as another of
 * its tools is named once made provider-safe (`a_b_{hash}` beside `a.b`, gateway-names.ts). `/mcp` offers neither:
 * a list naming a tool twice breaks the clients that refuse duplicate names, and a call by that name could reach
 * either. Sorted by gateway name (slugs keep servers apart), so the entries sharing one are neighbours.
 */
function withoutSharedNames(sorted: CatalogEntry[]): CatalogEntry[] {
  const shared = (index: number): boolean =>
    sorted[index - 1]?.gatewayName === sorted[index]!.gatewayName ||
    sorted[index + 1]?.gatewayName === sorted[index]!.gatewayName;
  return sorted.some((_, index) => shared(index)) ? sorted.filter((_, index) => !shared(index)) : sorted;
}

/**
 * The order the database gave when it read the whole catalog at once (`ORDER BY gateway_name, server_id` under
 * the C collation): UTF-16 code units, which differ from code points only past U+FFFF.
 */
function byGatewayNameThenServer(a: CatalogEntry, b: CatalogEntry): number {
  if (a.gatewayName !== b.gatewayName) return a.gatewayName < b.gatewayName ? -1 : 1;
  if (a.server.id !== b.server.id) return a.server.id < b.server.id ? -1 : 1;
  return 0;
}

const KINDS: readonly CatalogKind[] = ['tool', 'prompt', 'resource', 'resource_template'];

/** The kind as this module's own string: the database's copy would be one more string per item, for good. */
function kindOf(kind: string): CatalogKind | undefined {
  return KINDS.find((candidate) => candidate === kind);
}

function sameMarker(a: CatalogMarker, b: CatalogMarker): boolean {
  return (
    a.servers === b.servers &&
    a.serversUpdatedAt === b.serversUpdatedAt &&
    a.itemsChangedAt === b.itemsChangedAt &&
    a.healthChangedAt === b.healthChangedAt
  );
}

/**
 * A tool that may only be called as a task (`execution.taskSupport: required`): the gateway declares no tasks, so
 * neither `/mcp` nor the REST bridge can call it, and they do not offer it.
 */
function needsTasks(definition: Record<string, unknown>): boolean {
  return (definition.execution as { taskSupport?: unknown } | undefined)?.taskSupport === 'required';
}

/** A tool's `execution` without `taskSupport`: calls through the gateway are never tasks. */
function withoutTasks(definition: Record<string, unknown>): Record<string, unknown> {
  const execution = definition.execution as Record<string, unknown> | undefined;
  if (execution?.taskSupport === undefined) return definition;
  const { taskSupport: _taskSupport, ...rest } = execution;
  return { ...definition, execution: rest };
}

/** The upstream's definition under the gateway's name, with where it came from under our `_meta` key. */
function renamedDefinition(
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
      return { ...withoutTasks(definition), name: gatewayName, _meta: meta };
    case 'prompt':
      return { ...definition, name: gatewayName, _meta: meta };
    case 'resource':
      return { ...definition, uri: gatewayName, _meta: meta };
    case 'resource_template':
      return { ...definition, uriTemplate: gatewayName, _meta: meta };
  }
}
