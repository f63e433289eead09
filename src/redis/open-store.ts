import type { AppConfig } from '../config/config';
import type { Logger } from 'pino';
import type { KeyValueStore } from './key-value-store';
import { MemoryStore } from './memory-store';
import { RedisStore } from './redis-store';

export async function openStore(
  config: Pick<AppConfig, 'redisUrl' | 'redisCommandTimeoutMs'>,
  logger: Logger,
): Promise<KeyValueStore> {
  if (config.redisUrl) {
    return RedisStore.connect(config.redisUrl, logger, { commandTimeoutMs: config.redisCommandTimeoutMs });
  }
  logger.warn(
    'REDIS_URL is not set: rate limits, sessions and caches are kept in this process; run a single instance only',
  );
  return new MemoryStore();
}
