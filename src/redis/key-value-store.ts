import type Redis from 'ioredis';

export type MessageHandler = (message: string) => void;

/**
 * The small slice of Redis the gateway relies on (rate limits, sessions,
 * caches, pub/sub). `RedisStore` speaks to a real Redis; `MemoryStore` keeps
 * the same semantics in this process for single-instance use.
 */
export interface KeyValueStore {
  readonly kind: 'redis' | 'memory';
  /** The ioredis client, for libraries that take one (absent in memory mode). */
  readonly client?: Redis;
  get(key: string): Promise<string | null>;
  /** Sets a value, expiring after `ttlMs` when given. */
  set(key: string, value: string, ttlMs?: number): Promise<void>;
  del(key: string): Promise<void>;
  /** Sets a new expiry on an existing key; false when there is no such key. */
  expire(key: string, ttlMs: number): Promise<boolean>;
  /** Adds `by` and returns the new value; `ttlMs` applies when the key is created. */
  incrBy(key: string, by: number, ttlMs?: number): Promise<number>;
  publish(channel: string, message: string): Promise<void>;
  /**
   * Resolves, once the store takes the subscription, with a function that ends it. `missed`, when given, is called
   * whenever messages published to the channel may not have reached `handler`: the connection that held the
   * subscription was lost, or went silent and was replaced, and now holds it again. Nobody can tell which messages
   * went by (Redis keeps none for a subscriber), so a listener catches up on what they would have said (drops a
   * cache, rereads what it knows).
   */
  subscribe(channel: string, handler: MessageHandler, missed?: () => void): Promise<() => Promise<void>>;
  /** Resolves when the store answers; rejects (within a bounded time) when it does not. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export const KEY_VALUE_STORE = Symbol('KEY_VALUE_STORE');
