import Redis from 'ioredis';
import type { Logger } from 'pino';
import type { KeyValueStore, MessageHandler } from './key-value-store';

const CONNECT_TIMEOUT_MS = 5_000;
const PING_TIMEOUT_MS = 2_000;

// INCRBY and the first expiry in one round trip, so a counter never lives forever.
const INCR_WITH_TTL = `
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
if tonumber(ARGV[2]) > 0 and redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return value`;

/** The one ioredis client of the process, plus a subscriber connection made on first use. */
export class RedisStore implements KeyValueStore {
  readonly kind = 'redis';
  private subscriber?: Promise<Redis>;
  private readonly handlers = new Map<string, Set<MessageHandler>>();

  private constructor(
    readonly client: Redis,
    private readonly logger: Logger,
  ) {}

  /** Connects, failing with a clear message (and no retry loop left behind) if Redis does not answer. */
  static async connect(url: string, logger: Logger): Promise<RedisStore> {
    const client = createClient(url, logger);
    try {
      await client.connect();
      await client.ping();
    } catch (error) {
      client.disconnect();
      throw new Error(`Redis at ${redactUrl(url)} did not answer: ${(error as Error).message}`);
    }
    return new RedisStore(client, logger);
  }

  get(key: string): Promise<string | null> {
    return this.client.get(key);
  }

  async set(key: string, value: string, ttlMs?: number): Promise<void> {
    if (ttlMs) await this.client.set(key, value, 'PX', ttlMs);
    else await this.client.set(key, value);
  }

  async del(key: string): Promise<void> {
    await this.client.del(key);
  }

  async expire(key: string, ttlMs: number): Promise<boolean> {
    return (await this.client.pexpire(key, ttlMs)) === 1;
  }

  async incrBy(key: string, by: number, ttlMs?: number): Promise<number> {
    const result = await this.client.eval(INCR_WITH_TTL, 1, key, by, ttlMs ?? 0);
    return Number(result);
  }

  async publish(channel: string, message: string): Promise<void> {
    await this.client.publish(channel, message);
  }

  async subscribe(channel: string, handler: MessageHandler): Promise<() => Promise<void>> {
    this.subscriber ??= this.startSubscriber().catch((error: unknown) => {
      this.subscriber = undefined;
      throw error;
    });
    const subscriber = await this.subscriber;
    let handlers = this.handlers.get(channel);
    if (!handlers) {
      handlers = new Set();
      this.handlers.set(channel, handlers);
      await subscriber.subscribe(channel);
    }
    handlers.add(handler);
    return async () => {
      handlers.delete(handler);
      if (handlers.size === 0 && this.handlers.get(channel) === handlers) {
        this.handlers.delete(channel);
        await subscriber.unsubscribe(channel);
      }
    };
  }

  async ping(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${PING_TIMEOUT_MS} ms`)), PING_TIMEOUT_MS);
    });
    try {
      await Promise.race([this.client.ping(), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    this.handlers.clear();
    const subscriber = await this.subscriber?.catch(() => undefined);
    await Promise.all([quit(this.client), subscriber ? quit(subscriber) : undefined]);
  }

  private async startSubscriber(): Promise<Redis> {
    // A connection in subscriber mode can run no other command, hence its own.
    const subscriber = this.client.duplicate();
    watchErrors(subscriber, this.logger);
    subscriber.on('message', (channel: string, message: string) => {
      for (const handler of this.handlers.get(channel) ?? []) handler(message);
    });
    await subscriber.connect();
    return subscriber;
  }
}

function createClient(url: string, logger: Logger): Redis {
  let connectedOnce = false;
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: CONNECT_TIMEOUT_MS,
    // Commands fail at once while disconnected instead of queueing: health
    // checks and rate limits need an answer, not a wait.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    // Reconnect forever after a first success; before it, give up so start-up fails cleanly.
    retryStrategy: (attempt) => (connectedOnce ? Math.min(attempt * 200, 2_000) : null),
  });
  client.once('ready', () => (connectedOnce = true));
  watchErrors(client, logger);
  return client;
}

/** Logs connection trouble once per outage rather than once per retry. */
function watchErrors(client: Redis, logger: Logger): void {
  let down = false;
  client.on('error', (error: Error) => {
    if (down) return;
    down = true;
    logger.warn({ err: error }, 'Redis connection lost; retrying');
  });
  client.on('ready', () => {
    if (!down) return;
    down = false;
    logger.info('Redis connection restored');
  });
}

async function quit(client: Redis): Promise<void> {
  if (client.status === 'end') return;
  try {
    await client.quit();
  } catch {
    client.disconnect();
  }
}

function redactUrl(url: string): string {
  const parsed = new URL(url);
  return `${parsed.protocol}//${parsed.host}`;
}
