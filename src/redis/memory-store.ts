import type { KeyValueStore, MessageHandler } from './key-value-store';

interface Entry {
  value: string;
  expiresAt: number;
}

/** The fewest entries at which expired ones are swept (see `remember`). */
const SWEEP_FLOOR = 1024;

/** In-process stand-in for Redis: correct for one process, shared with nobody. */
export class MemoryStore implements KeyValueStore {
  readonly kind = 'memory';
  private readonly entries = new Map<string, Entry>();
  private readonly channels = new Map<string, Set<MessageHandler>>();
  private sweepAt = SWEEP_FLOOR;

  /** Entries held, expired ones not yet let go of included. */
  get size(): number {
    return this.entries.size;
  }

  get(key: string): Promise<string | null> {
    return Promise.resolve(this.live(key)?.value ?? null);
  }

  set(key: string, value: string, ttlMs?: number): Promise<void> {
    this.remember(key, { value, expiresAt: ttlMs ? Date.now() + ttlMs : Infinity });
    return Promise.resolve();
  }

  del(key: string): Promise<void> {
    this.entries.delete(key);
    return Promise.resolve();
  }

  expire(key: string, ttlMs: number): Promise<boolean> {
    const entry = this.live(key);
    if (entry) entry.expiresAt = Date.now() + ttlMs;
    return Promise.resolve(entry !== undefined);
  }

  incrBy(key: string, by: number, ttlMs?: number): Promise<number> {
    const entry = this.live(key);
    if (entry) {
      const next = Number(entry.value) + by;
      if (!Number.isSafeInteger(next)) {
        return Promise.reject(new Error(`value of ${key} is not an integer`));
      }
      entry.value = String(next);
      return Promise.resolve(next);
    }
    this.remember(key, { value: String(by), expiresAt: ttlMs ? Date.now() + ttlMs : Infinity });
    return Promise.resolve(by);
  }

  publish(channel: string, message: string): Promise<void> {
    for (const handler of this.channels.get(channel) ?? []) {
      // Delivered asynchronously, as Redis would, so a publisher never runs subscriber code inline.
      queueMicrotask(() => handler(message));
    }
    return Promise.resolve();
  }

  subscribe(channel: string, handler: MessageHandler): Promise<() => Promise<void>> {
    let handlers = this.channels.get(channel);
    if (!handlers) {
      handlers = new Set();
      this.channels.set(channel, handlers);
    }
    handlers.add(handler);
    return Promise.resolve(() => {
      handlers.delete(handler);
      if (handlers.size === 0) this.channels.delete(channel);
      return Promise.resolve();
    });
  }

  ping(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.entries.clear();
    this.channels.clear();
    return Promise.resolve();
  }

  /**
   * Stores an entry and, once the entries have doubled since the last sweep, lets go of the expired ones. Reading
   * an expired entry removes it, but most are never read again (a session its client left without DELETE, a rate
   * limit's window): without the sweep they stayed, and a gateway without Redis grew by every session it ever had.
   */
  private remember(key: string, entry: Entry): void {
    this.entries.set(key, entry);
    if (this.entries.size < this.sweepAt) return;
    const now = Date.now();
    for (const [held, { expiresAt }] of this.entries) if (expiresAt <= now) this.entries.delete(held);
    this.sweepAt = Math.max(SWEEP_FLOOR, this.entries.size * 2);
  }

  private live(key: string): Entry | undefined {
    const entry = this.entries.get(key);
    if (entry && entry.expiresAt <= Date.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry;
  }
}
