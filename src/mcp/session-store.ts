import { randomBytes } from 'node:crypto';
import { DomainError } from '../common/domain-error';
import type { KeyValueStore } from '../redis/key-value-store';
import { isRedisUnreachable } from '../redis/redis-store';

/** What any replica needs to continue a client's MCP session. */
export interface McpSession {
  id: string;
  /** `tid:oid` (or `tid:clientId` for app-only callers): only this principal may use the session. */
  principalKey: string;
  /** The upstream a `/mcp/{slug}` session fronts; absent for the aggregate endpoint. */
  serverId?: string;
  protocolVersion: string;
  /** The client's initialize params, replayed when an upstream forgets its session. */
  initializeParams: Record<string, unknown>;
  /** Upstream session ids by server id. */
  upstreamSessions: Record<string, string>;
  /** The least severe upstream log message the client wants (`logging/setLevel` on `/mcp`); all when unset. */
  logLevel?: string;
  createdAt: number;
}

/**
 * The shared store (Redis) could not be reached while a session was created, read or changed: an outage, which
 * readiness reports and the Redis client logs once, not a fault of the request. Answered 503, as a database that
 * does not answer is.
 */
export class SessionStoreUnavailable extends DomainError {
  constructor(cause: unknown) {
    super('service_unavailable', 'the session store does not answer; try again shortly');
    this.name = 'SessionStoreUnavailable';
    this.cause = cause;
  }
}

/**
 * The shared store answered a command of the session store with an error (`NOPERM` for an ACL user without the
 * command, `OOM`, ...): the configuration's fault or Redis's, not the request's nor an outage. An internal fault,
 * answered -32603 with an error id, and audited as the gateway's own error.
 */
export class SessionStoreRefused extends Error {
  constructor(cause: Error) {
    super(`the session store (Redis) refused a command: ${cause.message}`);
    this.name = 'SessionStoreRefused';
    this.cause = cause;
  }
}

/**
 * A command of the shared store, failing as the session store reports it: an outage as SessionStoreUnavailable, an
 * error Redis answered as SessionStoreRefused.
 */
function shared<T>(command: Promise<T>): Promise<T> {
  return command.catch((error: unknown) => {
    if (isRedisUnreachable(error)) throw new SessionStoreUnavailable(error);
    throw error instanceof Error ? new SessionStoreRefused(error) : error;
  });
}

const KEY_PREFIX = 'mcp:session:';
const DELETED_CHANNEL = 'mcp:session:deleted';
/** A session changed (its upstream sessions were re-opened): replicas drop their cached copy. */
const SAVED_CHANNEL = 'mcp:session:saved';
/** Sessions read recently are served from memory; writes and deletions reach every replica. */
const LOCAL_TTL_MS = 5_000;

interface Cached {
  session: McpSession;
  cachedAt: number;
  touchedAt: number;
}

/**
 * MCP sessions kept in the shared store (Redis when configured) with an idle
 * expiry, so a session created on one replica continues on any other.
 */
export class McpSessionStore {
  private readonly local = new Map<string, Cached>();
  private readonly deletedListeners = new Set<(id: string) => void>();
  private readonly deletionsMissedListeners = new Set<() => void>();
  /** When this replica last created or served each session: what `openSessions` counts. */
  private readonly lastUsed = new Map<string, number>();
  private lastPrunedAt = 0;
  private unsubscribe?: () => Promise<void>;
  private unsubscribeSaved?: () => Promise<void>;

  constructor(
    private readonly store: KeyValueStore,
    private readonly idleMs: number,
  ) {}

  async start(): Promise<void> {
    this.unsubscribe = await this.store.subscribe(
      DELETED_CHANNEL,
      (id) => {
        this.local.delete(id);
        this.lastUsed.delete(id);
        for (const listener of this.deletedListeners) listener(id);
      },
      () => this.deletionsMissed(),
    );
    // A change missed leaves a stale copy cached: every copy goes, and the next read of each is from the store.
    this.unsubscribeSaved = await this.store.subscribe(
      SAVED_CHANNEL,
      (id) => this.local.delete(id),
      () => this.local.clear(),
    );
  }

  /**
   * Sessions deleted on other replicas while this one could not hear of it (its subscription interrupted): a cached
   * copy of one would be served as live, so the cache goes; `onDeletionsMissed` listeners check what they hold.
   */
  private deletionsMissed(): void {
    this.local.clear();
    for (const listener of this.deletionsMissedListeners) listener();
  }

  /** The session as the shared store has it now, bypassing this replica's cache. */
  async fresh(id: string): Promise<McpSession | undefined> {
    this.local.delete(id);
    return this.get(id);
  }

  /** Calls `listener` with the id of each session deleted on any replica, this one included. */
  onDeleted(listener: (id: string) => void): () => void {
    this.deletedListeners.add(listener);
    return () => this.deletedListeners.delete(listener);
  }

  /**
   * Calls `listener` whenever sessions may have been deleted on another replica without this one hearing of it (for
   * each, `onDeleted` listeners were not called): what it holds for a session should be checked with `exists`.
   */
  onDeletionsMissed(listener: () => void): () => void {
    this.deletionsMissedListeners.add(listener);
    return () => this.deletionsMissedListeners.delete(listener);
  }

  /** Whether the shared store still holds the session, its expiry left as it is. */
  async exists(id: string): Promise<boolean> {
    return (await shared(this.store.get(KEY_PREFIX + id))) !== null;
  }

  async stop(): Promise<void> {
    await this.unsubscribe?.();
    await this.unsubscribeSaved?.();
    this.local.clear();
    this.lastUsed.clear();
    this.deletedListeners.clear();
    this.deletionsMissedListeners.clear();
  }

  /** A new session id: 128 bits from the CSPRNG, URL-safe. */
  static newId(): string {
    return randomBytes(16).toString('base64url');
  }

  async create(session: McpSession): Promise<void> {
    await shared(this.store.set(KEY_PREFIX + session.id, JSON.stringify(session), this.idleMs));
    const now = Date.now();
    this.local.set(session.id, { session, cachedAt: now, touchedAt: now });
    this.markUsed(session.id, now);
  }

  /**
   * Sessions this replica created or served within the idle expiry and not
   * deleted since: sessions live in the shared store, so this is the
   * replica's view (one continued on several replicas counts on each).
   */
  openSessions(now = Date.now()): number {
    this.pruneIdle(now);
    return this.lastUsed.size;
  }

  /** Also prunes now and then, so the map stays bounded by the sessions live here even if nobody scrapes. */
  private markUsed(id: string, now: number): void {
    this.lastUsed.set(id, now);
    if (now - this.lastPrunedAt > this.idleMs / 4) this.pruneIdle(now);
  }

  private pruneIdle(now: number): void {
    this.lastPrunedAt = now;
    for (const [id, at] of this.lastUsed) if (now - at >= this.idleMs) this.lastUsed.delete(id);
  }

  /**
   * The session, with its idle expiry pushed back; undefined when unknown or expired. Most reads find it cached here
   * with its expiry pushed back lately, and are answered at once, not with a promise (bench/HISTORY.md, session 25).
   */
  get(id: string): McpSession | undefined | Promise<McpSession | undefined> {
    const now = Date.now();
    const cached = this.local.get(id);
    if (cached && now - cached.cachedAt < LOCAL_TTL_MS) {
      this.markUsed(id, now);
      if (now - cached.touchedAt <= this.idleMs / 4) return cached.session;
      return this.touch(cached, now).then(() => cached.session);
    }
    return this.read(id, now, cached);
  }

  /** The session as the shared store has it, cached here; `cached` is this replica's expired copy, if any. */
  private async read(id: string, now: number, cached: Cached | undefined): Promise<McpSession | undefined> {
    const raw = await shared(this.store.get(KEY_PREFIX + id));
    if (raw === null) {
      this.local.delete(id);
      this.lastUsed.delete(id);
      return undefined;
    }
    this.markUsed(id, now);
    const session = JSON.parse(raw) as McpSession;
    const entry = { session, cachedAt: now, touchedAt: cached?.touchedAt ?? 0 };
    this.local.set(id, entry);
    if (now - entry.touchedAt > this.idleMs / 4) await this.touch(entry, now);
    this.evictOld(now);
    return session;
  }

  async save(session: McpSession): Promise<void> {
    await this.create(session);
    await shared(this.store.publish(SAVED_CHANNEL, session.id));
  }

  async delete(id: string): Promise<void> {
    this.local.delete(id);
    this.lastUsed.delete(id);
    await shared(this.store.del(KEY_PREFIX + id));
    await shared(this.store.publish(DELETED_CHANNEL, id));
  }

  private async touch(entry: Cached, now: number): Promise<void> {
    entry.touchedAt = now;
    // Only the expiry moves: rewriting the value could undo another replica's newer save.
    await shared(this.store.expire(KEY_PREFIX + entry.session.id, this.idleMs));
  }

  private evictOld(now: number): void {
    if (this.local.size < 10_000) return;
    for (const [id, entry] of this.local) {
      if (now - entry.cachedAt >= LOCAL_TTL_MS) this.local.delete(id);
    }
  }
}
