import type { Logger } from 'pino';
import type { KeyValueStore } from './key-value-store';
import { MemoryStore } from './memory-store';
import { RedisStore } from './redis-store';

export async function openStore(redisUrl: string | undefined, logger: Logger): Promise<KeyValueStore> {
  if (redisUrl) return RedisStore.connect(redisUrl, logger);
  logger.warn(
    'REDIS_URL is not set: rate limits, sessions and caches are kept in this process; run a single instance only',
  );
  return new MemoryStore();
}
